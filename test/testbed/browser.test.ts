// Proves the browser harness (test/support/browser.ts) on this machine: Debian's Chromium starts headless, clicks a
// button, submits a script-free form, reports page errors, and leaves a non-empty PNG under test-output/screenshots/.
import { readFile, stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { collectPageErrors, newPage, screenshot, SCREENSHOT_DIR, useBrowser } from '../support/browser.js';

const HOME = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Harness check</title></head>
<body>
  <h1>Harness check</h1>
  <button id="count" type="button">Clicked 0 times</button>
  <form method="post" action="/greet">
    <label>Name <input name="name" required></label>
    <button type="submit">Greet</button>
  </form>
  <script>
    let clicks = 0;
    document.getElementById('count').addEventListener('click', (e) => { e.target.textContent = 'Clicked ' + ++clicks + ' times'; });
  </script>
</body></html>`;

const BROKEN = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Broken</title></head>
<body><p>broken</p><script>console.error('something went wrong'); null.boom();</script></body></html>`;

function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Answers like a small server-rendered app: GET / and /broken, POST /greet (form-encoded), 204 for the favicon. */
function startSite(): Promise<{ server: Server; url: string }> {
  const server = createServer((req, res) => {
    const html = (status: number, body: string) => res.writeHead(status, { 'content-type': 'text/html; charset=utf-8' }).end(body);
    if (req.method === 'GET' && req.url === '/') return html(200, HOME);
    if (req.method === 'GET' && req.url === '/broken') return html(200, BROKEN);
    if (req.method === 'GET' && req.url === '/favicon.ico') return res.writeHead(204).end();
    if (req.method === 'POST' && req.url === '/greet') {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        const name = new URLSearchParams(body).get('name') ?? '';
        html(200, `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Greeted</title></head><body><p id="greeting">Hello, ${escapeHtml(name)}!</p></body></html>`);
      });
      return;
    }
    html(404, '<!doctype html><title>Not found</title><p>not found</p>');
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` }));
  });
}

const bed = useBrowser();
let site: { server: Server; url: string } | undefined;

beforeAll(async () => {
  site = await startSite();
});

afterAll(async () => {
  site?.server.closeAllConnections();
  await new Promise<void>((resolve) => (site ? site.server.close(() => resolve()) : resolve()));
});

describe('the browser harness', () => {
  it('clicks a button, submits a script-free form and screenshots the page, with no page errors', async () => {
    const page = await newPage(bed.browser);
    try {
      const errors = collectPageErrors(page);
      await page.goto(`${site!.url}/`);
      expect(page.viewportSize()).toEqual({ width: 1280, height: 900 });

      await page.getByRole('button', { name: 'Clicked 0 times' }).click();
      await page.locator('#count').click();
      expect(await page.locator('#count').textContent()).toBe('Clicked 2 times');

      const file = await screenshot(page, 'harness-selftest');
      expect(file).toBe(join(SCREENSHOT_DIR, 'harness-selftest.png'));
      expect((await stat(file)).size).toBeGreaterThan(0);
      expect((await readFile(file)).subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));

      await page.getByLabel('Name').fill('Ada <Lovelace>');
      await Promise.all([page.waitForURL(`${site!.url}/greet`), page.getByRole('button', { name: 'Greet' }).click()]);
      expect(await page.locator('#greeting').textContent()).toBe('Hello, Ada <Lovelace>!');

      expect(errors).toEqual([]);
    } finally {
      await page.close();
    }
  });

  it('opens a phone-sized page (375 wide) whose screenshot has that width', async () => {
    const page = await newPage(bed.browser, { width: 375 });
    try {
      await page.goto(`${site!.url}/`);
      expect(await page.evaluate('window.innerWidth')).toBe(375); // a string: tsconfig has no DOM lib
      const png = await readFile(await screenshot(page, 'harness-selftest-375'));
      expect(png.readUInt32BE(16)).toBe(375); // IHDR width (device scale factor 1)
    } finally {
      await page.close();
    }
  });

  it('collects console errors and uncaught exceptions, so an empty list means something', async () => {
    const page = await newPage(bed.browser);
    try {
      const errors = collectPageErrors(page);
      await page.goto(`${site!.url}/broken`);
      await expect.poll(() => errors.length).toBe(2);
      expect(errors[0]).toMatch(/^console\.error: something went wrong \(http:\/\/127\.0\.0\.1:\d+\/broken:\d+\)$/);
      expect(errors[1]).toMatch(/^pageerror: .*null/);
    } finally {
      await page.close();
    }
  });

  it('refuses a screenshot name that is a path', async () => {
    const page = await newPage(bed.browser);
    try {
      await expect(screenshot(page, '../escape')).rejects.toThrow(/screenshot name/);
    } finally {
      await page.close();
    }
  });
});
