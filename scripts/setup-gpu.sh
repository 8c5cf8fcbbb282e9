#!/usr/bin/env bash
# Makes a WebGPU adapter available to Dawn (npm package `webgpu`).
# If Dawn already finds an adapter, does nothing. Otherwise, on Debian/Ubuntu as root, installs
# Mesa's lavapipe (software Vulkan). Debian 12's Mesa 22 is too old for Dawn, so there it comes
# from bookworm-backports. Elsewhere it prints the commands to run.
set -euo pipefail
cd "$(dirname "$0")/.."
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/xdg-runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR" || true

probe() { node scripts/probe-adapter.mjs >/dev/null 2>&1; }

if [ -d node_modules/webgpu ] && probe; then
  echo "setup-gpu: a WebGPU adapter is already available: $(node scripts/probe-adapter.mjs 2>/dev/null)"
  exit 0
fi

. /etc/os-release 2>/dev/null || true
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  cat <<TXT
setup-gpu: no WebGPU adapter found, and this script can only install one as root on Debian/Ubuntu.
Install Mesa's software Vulkan driver (lavapipe) >= 24, e.g.
  Debian 12:  echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/backports.list
              apt-get update && apt-get install -y -t bookworm-backports mesa-vulkan-drivers libvulkan1
  Ubuntu:     apt-get install -y mesa-vulkan-drivers libvulkan1
  Fedora:     dnf install mesa-vulkan-drivers vulkan-loader
and set XDG_RUNTIME_DIR if it is unset.
TXT
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
if [ "${ID:-}" = debian ] && [ "${VERSION_CODENAME:-}" = bookworm ]; then
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/bookworm-backports.list
  fi
  apt-get update -qq
  apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  apt-get update -qq
  apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

if [ -d node_modules/webgpu ]; then
  probe || { echo "setup-gpu: installed lavapipe, but Dawn still finds no adapter" >&2; node scripts/probe-adapter.mjs; exit 1; }
  echo "setup-gpu: adapter: $(node scripts/probe-adapter.mjs)"
fi
