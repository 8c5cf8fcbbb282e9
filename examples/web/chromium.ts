// Headless Chromium for the browser tests and bench/web.ts: Debian's package (scripts/setup-browser.sh)
// driven by playwright-core, WebGPU on Chromium's software adapter (SwiftShader). --no-sandbox because CI
// runs as root; playwright gives each launch a fresh profile in a temporary --user-data-dir.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.VITCATS_CHROMIUM ?? '/usr/bin/chromium';
export const CHROMIUM_ARGS = [
  '--no-sandbox', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-dev-shm-usage',
];

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run \`bash scripts/setup-browser.sh\` (or set VITCATS_CHROMIUM)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}
