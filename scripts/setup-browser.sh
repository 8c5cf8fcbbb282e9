#!/usr/bin/env bash
# The browser tests' Chromium (test/browser.test.ts drives it with playwright-core, whose own browser
# downloads are not used): Debian's package at /usr/bin/chromium. Only the browser tests need it; a
# user of the library in Node does not. On Debian/Ubuntu as root it installs it; elsewhere it says how.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo "Chromium: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
  exit 0
fi
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends chromium
  echo "Chromium: $(/usr/bin/chromium --version)"
else
  echo "The browser tests need Chromium at /usr/bin/chromium (or VITCATS_CHROMIUM=/path/to/chrome):" >&2
  echo "  Debian/Ubuntu: sudo apt-get update && sudo apt-get install -y chromium" >&2
  exit 1
fi
