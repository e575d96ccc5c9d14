// The browser half of the dashboard test (run.sh starts the relay, the deferring SMTP sink and
// sends the messages first). Drives Debian's Chromium through playwright-core and checks what
// the page shows against what happened. Settings come from the environment:
//   ADMIN_URL   the admin listener, e.g. http://127.0.0.1:8025/
//   TOKEN       the admin bearer token ("" when none is required)
//   CONTROL_URL the sink's control server (POST /accept, GET /state)
//   SINK_PORT   the sink's SMTP port (the smarthost destination ends with it)
//   COUNT       how many messages run.sh sent
//   ARTIFACTS   where screenshots go
//   CHROMIUM    the browser (default /usr/bin/chromium)
//   STEP_TIMEOUT_MS  how long one check may wait for the page (default 30000)
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const env = (name, fallback) => {
  const v = process.env[name] ?? fallback;
  if (v === undefined) throw new Error(`${name} is not set`);
  return v;
};
const ADMIN_URL = env('ADMIN_URL').replace(/\/?$/, '/');
const TOKEN = env('TOKEN', '');
const CONTROL_URL = env('CONTROL_URL').replace(/\/$/, '');
const SINK_PORT = env('SINK_PORT');
const COUNT = Number(env('COUNT', '5'));
const ARTIFACTS = env('ARTIFACTS');
const CHROMIUM = env('CHROMIUM', '/usr/bin/chromium');
const STEP_TIMEOUT_MS = Number(env('STEP_TIMEOUT_MS', '30000'));

const say = (...a) => console.log(new Date().toISOString().slice(11, 19), 'e2e:', ...a);
let passed = 0;
let failed = 0;

// Polls fn until it returns something truthy; the last value it saw goes into the error.
async function until(what, fn, timeoutMs = STEP_TIMEOUT_MS) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      last = await fn();
      if (last && last.ok !== false) return last;
    } catch (e) {
      last = e.message;
    }
    if (Date.now() > deadline) throw new Error(`${what}: not so within ${timeoutMs / 1000}s (last seen: ${JSON.stringify(last)})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function check(name, fn) {
  try {
    await fn();
    passed++;
    say(`ok   ${name}`);
  } catch (e) {
    failed++;
    say(`FAIL ${name}: ${e.message}`);
    throw e;
  }
}

// A full-page screenshot, taken from the top (the header is sticky, so a scrolled page would
// show it half-way down the picture).
async function screenshot(page, file) {
  await page.mouse.move(0, 0); // no hover highlight in the picture
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: file, fullPage: true });
  say(`screenshot ${file}`);
}

async function sink(pathname, method = 'GET') {
  const res = await fetch(CONTROL_URL + pathname, { method, signal: AbortSignal.timeout(5000) });
  if (!res.ok) throw new Error(`sink ${method} ${pathname}: ${res.status}`);
  return res.json();
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'relaymta-chromium-'));
fs.mkdirSync(ARTIFACTS, { recursive: true });
let context;
let page;
const problems = [];
// run.sh's overall time-out ends us with SIGTERM: stop at once, close the browser, say so.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, async () => {
    say(`${signal}: time is up, stopping`);
    await context?.close().catch(() => {});
    fs.rmSync(userDataDir, { recursive: true, force: true });
    console.log(`browser: ${passed} passed, ${failed + 1} failed`);
    process.exit(1);
  });
}

try {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--no-first-run', '--disable-dev-shm-usage'],
    viewport: { width: 1400, height: 1000 },
    timeout: 60000,
  });
  say(`chromium ${context.browser()?.version() ?? ''} started`);
  // Anything the page fetches must stay on the admin listener: no CDN, no external URL.
  const origin = new URL(ADMIN_URL).origin;
  context.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(origin) && !u.startsWith('data:') && !u.startsWith('about:')) problems.push(`request to ${u}`);
  });

  // 1. Without a token the page asks for one; a token typed in is used.
  if (TOKEN) {
    await check('without a token the page asks for it, refuses a wrong one, and uses the right one', async () => {
      const p = await context.newPage();
      await p.goto(ADMIN_URL);
      await p.locator('[data-testid="token-form"]').waitFor({ state: 'visible', timeout: STEP_TIMEOUT_MS });
      await until('connection state "token"', () => p.locator('[data-testid="connection-state"]').getAttribute('data-state').then((s) => s === 'token'));
      await p.getByLabel('Admin token').fill(TOKEN + 'x');
      await p.getByRole('button', { name: 'Use token' }).click();
      await until('the wrong token refused', async () => /refused/.test(await p.locator('[data-testid="token-reason"]').textContent())
        && (await p.locator('[data-testid="token-form"]').isVisible()));
      await p.getByLabel('Admin token').fill(TOKEN);
      await p.getByRole('button', { name: 'Use token' }).click();
      await until(`queue total ${COUNT}`, async () => (await p.locator('[data-testid="queue-total"]').textContent()) === String(COUNT));
      if (!(await p.locator('[data-testid="token-form"]').isHidden())) throw new Error('the token form is still shown');
      await p.close();
    });
  }

  // 2. The token from the URL fragment: kept in sessionStorage, taken out of the address bar.
  page = context.pages()[0] || (await context.newPage());
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console error: ${m.text()}`); });
  await page.goto(TOKEN ? `${ADMIN_URL}#token=${encodeURIComponent(TOKEN)}` : ADMIN_URL);
  if (TOKEN) {
    await check('the #token= fragment is stored and removed from the address bar', async () => {
      const { href, stored } = await page.evaluate(() => ({ href: location.href, stored: sessionStorage.getItem('relaymta.admin.token') }));
      if (href.includes('token')) throw new Error(`address still holds the token: ${href}`);
      if (stored !== TOKEN) throw new Error('the token is not in sessionStorage');
    });
  }

  const text = (testid, scope = page) => scope.locator(`[data-testid="${testid}"]`).first().textContent().then((t) => (t ?? '').trim());
  const num = async (testid) => Number((await text(testid)).replace(/[^\d]/g, ''));
  const destRow = page.locator(`[data-testid="destination-row"][data-destination$=":${SINK_PORT}"]`);
  const messageRows = page.locator('[data-testid="message-row"]');

  // 3. The deferred queue as the page shows it.
  await check(`header: queue total is ${COUNT}`, () => until('queue-total', async () => (await text('queue-total')) === String(COUNT)));
  await check(`the smarthost destination row shows ${COUNT} messages`, () =>
    until('destination-messages', async () => (await destRow.count()) === 1
      && (await text('destination-messages', destRow)) === String(COUNT)));
  await check(`the message list shows ${COUNT} deferred messages`, () =>
    until('deferred message rows', async () => (await page.locator('[data-testid="message-row"][data-state="deferred"]').count()) === COUNT
      && (await messageRows.count()) === COUNT));
  await check('the destination row shows the remote reply as its last error', () =>
    until('destination-last-error', async () => /451|try later/.test(await text('destination-last-error', destRow))));
  await check(`recent deliveries show ${COUNT} deferrals with the 451 reply`, () =>
    until('recent deferred rows', async () => {
      const rows = page.locator('[data-testid="recent-row"][data-result="deferred"]');
      if ((await rows.count()) < COUNT) return false;
      return (await rows.locator('[data-testid="recent-reply"]').allTextContents()).every((r) => r.includes('451 4.3.0 try later'));
    }));
  await check(`the chart counts ${COUNT} accepted and ${COUNT} deferred`, () =>
    until('chart totals', async () => {
      const deferred = Number(await page.locator('[data-testid="chart-series"][data-series="deferred"]').getAttribute('data-total'));
      const accepted = Number(await page.locator('[data-testid="chart-series"][data-series="accepted"]').getAttribute('data-total'));
      const bars = await page.locator('[data-testid="chart-series"][data-series="deferred"] [data-testid="chart-bar"]').count();
      return deferred >= COUNT && accepted >= COUNT && bars >= 1 && (await num('stats-total-deferred')) >= COUNT
        && (await num('stats-total-accepted')) >= COUNT;
    }));
  await check('the chart has a legend and axis labels', async () => {
    const legend = await page.locator('[data-testid="chart-legend"]').textContent();
    for (const s of ['Accepted', 'Delivered', 'Deferred', 'Bounced']) if (!legend.includes(s)) throw new Error(`legend lacks ${s}`);
    const labels = await page.locator('[data-testid="stats-chart"] .axis-label').allTextContents();
    if (labels.length < 2) throw new Error(`axis labels: ${JSON.stringify(labels)}`);
  });
  await check('the page refreshes by itself', async () => {
    const first = await page.locator('[data-testid="last-refresh"]').getAttribute('datetime');
    await until('a newer last-refresh', async () => (await page.locator('[data-testid="last-refresh"]').getAttribute('datetime')) !== first, 8000);
  });
  await check('no error banner', async () => {
    if (await page.locator('[data-testid="error-banner"]').isVisible()) throw new Error(await text('error-text'));
  });

  // 4. Per-message buttons: Hold, the state filter, Release, and Delete's confirmation (cancelled).
  const firstId = await messageRows.first().getAttribute('data-id');
  const row = page.locator(`[data-testid="message-row"][data-id="${firstId}"]`);
  await check(`Hold ${firstId} shows it held, and the "held" filter lists it alone`, async () => {
    await row.locator('[data-testid="hold-button"]').click();
    await until('held state', async () => (await row.getAttribute('data-state')) === 'held');
    await page.getByLabel('State', { exact: true }).selectOption('held');
    await until('one held row', async () => (await messageRows.count()) === 1 && (await messageRows.first().getAttribute('data-id')) === firstId);
    await page.getByLabel('State', { exact: true }).selectOption('');
    await until(`${COUNT} rows again`, async () => (await messageRows.count()) === COUNT);
  });
  await check(`Release ${firstId} takes it out of held`, async () => {
    await row.locator('[data-testid="release-button"]').click();
    await until('not held', async () => (await row.getAttribute('data-state')) !== 'held'
      && (await row.locator('[data-testid="hold-button"]').count()) === 1);
  });
  await check('Delete asks for confirmation, offers a bounce, and Cancel keeps the message', async () => {
    await row.locator('[data-testid="delete-button"]').click();
    const dialog = page.locator('[data-testid="delete-dialog"]');
    await dialog.waitFor({ state: 'visible', timeout: 5000 });
    if ((await text('delete-id')) !== firstId) throw new Error(`dialog names ${await text('delete-id')}`);
    await dialog.getByLabel(/bounce/i).check();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'hidden', timeout: 5000 });
    await page.waitForTimeout(2500);
    if ((await row.count()) !== 1) throw new Error('the message went away');
  });
  await check('Suspend marks the destination suspended, Resume clears it', async () => {
    await destRow.locator('[data-testid="suspend-button"]').click();
    await until('suspended mark', async () => (await destRow.getAttribute('data-suspended')) === 'true'
      && (await destRow.locator('[data-testid="destination-suspended"]').isVisible())
      && (await destRow.locator('[data-testid="resume-button"]').count()) === 1);
    await destRow.locator('[data-testid="resume-button"]').click();
    await until('no suspended mark', async () => (await destRow.getAttribute('data-suspended')) === 'false'
      && (await destRow.locator('[data-testid="destination-suspended"]').isHidden())
      && (await destRow.locator('[data-testid="suspend-button"]').count()) === 1);
  });
  await check(`still ${COUNT} messages queued and deferred`, () =>
    until('queue total', async () => (await text('queue-total')) === String(COUNT)
      && (await page.locator('[data-testid="message-row"][data-state="deferred"]').count()) === COUNT));

  const before = path.join(ARTIFACTS, 'dashboard-deferred.png');
  await screenshot(page, before);

  // 5. The sink now accepts; "Retry destination" empties the queue.
  const sinkBefore = await sink('/state');
  say(`sink before: ${JSON.stringify(sinkBefore)}`);
  await sink('/accept', 'POST');
  await check('Retry destination delivers everything: the queue drains to 0 on the page', async () => {
    await destRow.locator('[data-testid="retry-destination-button"]').click();
    await until('the status line reports the retry', async () => {
      const status = await text('action-status');
      const affected = await page.locator('[data-testid="action-status"]').getAttribute('data-affected');
      return /retry/i.test(status) && affected === String(COUNT);
    }, 5000);
    await until('queue total 0', async () => (await text('queue-total')) === '0');
    await until('no message rows', async () => (await messageRows.count()) === 0
      && (await page.locator('[data-testid="messages-empty"]').isVisible()));
    await until('no destination row', async () => (await destRow.count()) === 0);
  });
  await check(`the sink received ${COUNT} messages`, () => until('sink count', async () => (await sink('/state')).messages === COUNT));
  await check(`recent deliveries and the chart show ${COUNT} sent`, () =>
    until('sent rows', async () => (await page.locator('[data-testid="recent-row"][data-result="sent"]').count()) >= COUNT
      && (await num('stats-total-delivered')) >= COUNT));
  // Let the messages-empty text and the chart settle, then the second screenshot.
  await page.waitForTimeout(2200);
  const after = path.join(ARTIFACTS, 'dashboard-delivered.png');
  await screenshot(page, after);

  await check('an API error shows in the banner, and the banner goes once the API answers again', async () => {
    await page.route('**/api/stats', (route) => route.fulfill({
      status: 503, contentType: 'application/json', body: JSON.stringify({ error: 'injected by the test' }) }));
    await until('banner shown', async () => (await page.locator('[data-testid="error-banner"]').isVisible())
      && /api\/stats.*503.*injected by the test/.test(await text('error-text')), 8000);
    await page.unroute('**/api/stats');
    await until('banner gone', () => page.locator('[data-testid="error-banner"]').isHidden(), 8000);
  });
  // The injected 503 is logged by Chromium as a failed resource: not a problem of the page.
  for (let i = problems.length - 1; i >= 0; i--) if (/status of 503/.test(problems[i])) problems.splice(i, 1);
  await check('no page errors, console errors or outside requests', async () => {
    if (problems.length) throw new Error(problems.join('; '));
  });
} catch (e) {
  if (failed === 0) { failed++; say(`FAIL ${e.message}`); }
  if (page) {
    const shot = path.join(ARTIFACTS, 'dashboard-failure.png');
    await screenshot(page, shot).catch(() => {});
    fs.writeFileSync(path.join(ARTIFACTS, 'dashboard-failure.html'), await page.content().catch(() => ''));
  }
  if (problems.length) say(`browser problems: ${problems.join('; ')}`);
} finally {
  await context?.close().catch(() => {});
  fs.rmSync(userDataDir, { recursive: true, force: true });
}

console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
