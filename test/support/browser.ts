// Browser harness for web UI tests: Debian's headless Chromium (/usr/bin/chromium, installed by test/setup/global.ts)
// driven by playwright-core, pages of a chosen viewport, full-page screenshots under test-output/screenshots/ (the
// `postgres` project's in its postgres/ folder, so the two projects running one file side by side never share a file), and
// the page's console errors and uncaught exceptions collected so a test can assert there were none.
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll } from 'vitest';
import { testDatabaseKind } from './postgres.js';

export type { Browser, Page } from 'playwright-core';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * As the machine notes say: no sandbox (we run as root), no GPU, and none of Chromium's own traffic to Google,
 * which this machine's closed network refuses. Playwright adds --headless and a fresh --user-data-dir itself.
 */
export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'test-output', 'screenshots', ...(testDatabaseKind() === 'postgres' ? ['postgres'] : []));

/** Launches headless Chromium; fails within `timeoutMs` (default 30 s) rather than Playwright's 3 minutes. */
export async function launchBrowser(options: { timeoutMs?: number } = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [...CHROMIUM_ARGS],
    timeout: options.timeoutMs ?? 30_000,
  });
}

export interface NewPageOptions {
  /** Viewport width in CSS pixels; default 1280 (use 375 for a phone). */
  width?: number;
  /** Viewport height in CSS pixels; default 900. */
  height?: number;
  /**
   * Playwright's timeout for each action and wait on this page (click, fill, waitFor…); default 10 s, so a missing
   * element fails with Playwright's message well before vitest's 30 s test timeout.
   */
  actionTimeoutMs?: number;
}

/** A page in its own fresh context (no cookies or storage shared with other pages); closing the page closes it. */
export async function newPage(browser: Browser, options: NewPageOptions = {}): Promise<Page> {
  const page = await browser.newPage({ viewport: { width: options.width ?? 1280, height: options.height ?? 900 } });
  page.setDefaultTimeout(options.actionTimeoutMs ?? 10_000);
  return page;
}

/** Saves a full-page PNG as `<SCREENSHOT_DIR>/<name>.png` and returns its absolute path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  if (!/^[\w.-]+$/.test(name) || name.startsWith('.')) {
    throw new Error(`screenshot name ${JSON.stringify(name)}: use letters, digits, '_', '-' and '.' only (no path, no leading dot)`);
  }
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * From now on, every console.error message and every uncaught exception of `page` is pushed onto the returned array
 * (as "console.error: <text> (<url>:<line>)" or "pageerror: <message>"). Call it before `page.goto`, then
 * `expect(errors).toEqual([])`.
 */
export function collectPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    const { url, lineNumber } = msg.location();
    errors.push(`console.error: ${msg.text()}${url ? ` (${url}:${lineNumber})` : ''}`);
  });
  page.on('pageerror', (err) => errors.push(`pageerror: ${err.message}`));
  page.on('crash', () => errors.push('crash: the page crashed'));
  return errors;
}

/**
 * Vitest wiring: launches one browser in beforeAll and closes it in afterAll, whatever the tests did (Chromium and
 * every page and context in it end there). Read `.browser` inside a test or hook.
 */
export function useBrowser(options: { timeoutMs?: number } = {}): { readonly browser: Browser } {
  let browser: Browser | undefined;
  beforeAll(async () => {
    browser = await launchBrowser(options);
  });
  afterAll(async () => {
    await browser?.close();
    browser = undefined;
  });
  return {
    get browser() {
      if (!browser) throw new Error('the browser is not launched yet (read it inside a test or hook)');
      return browser;
    },
  };
}
