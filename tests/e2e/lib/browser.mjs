// Debian's chromium through playwright-core (never a browser download).
import { chromium } from 'playwright-core';
import { mkdtempSync, mkdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run'];

/** A browser with a fresh profile; `close()` removes the profile. */
export async function launch() {
  const profile = mkdtempSync(join(tmpdir(), 'hub-e2e-profile-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM, headless: true, args: ARGS, viewport: { width: 1280, height: 900 },
  });
  return {
    context,
    async page() { return context.pages()[0] ?? context.newPage(); },
    async close() { await context.close().catch(() => {}); rmSync(profile, { recursive: true, force: true }); },
  };
}

/** Where screenshots go ($E2E_SCREENSHOT_DIR, default tests/e2e/screenshots). */
export function screenshotDir() {
  const dir = process.env.E2E_SCREENSHOT_DIR ?? resolve(new URL('..', import.meta.url).pathname, 'screenshots');
  mkdirSync(dir, { recursive: true });
  return dir;
}

/** Save a full-page screenshot and return its path. */
export async function shot(page, name) {
  const path = join(screenshotDir(), `${name}.png`);
  await page.screenshot({ path, fullPage: false });
  return path;
}

/** Collects console errors and CSP violations of a page. */
export function watchConsole(page) {
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  return problems;
}
