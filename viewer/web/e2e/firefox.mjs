// The same pages in Firefox (Debian's firefox-esr), driven over WebDriver BiDi, the browser's
// own remote protocol: log in, see the worklist, open the task, see the image rendered
// (pixel-checked as in reading.mjs), switch to English.
//
// Environment: YILIAN_URL, YILIAN_SHOTS, YILIAN_PASSWORD, YILIAN_READER, YILIAN_EXPECT.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import WebSocket from 'ws';
import { env, fail } from './lib.mjs';

const expect = JSON.parse(env('YILIAN_EXPECT'));
const port = 20000 + Math.floor(Math.random() * 20000);
const profile = mkdtempSync(join(tmpdir(), 'yilian-firefox-'));
const firefox = spawn(
  process.env.FIREFOX ?? '/usr/bin/firefox-esr',
  ['--headless', '--no-remote', '--profile', profile, `--remote-debugging-port=${port}`],
  { stdio: ['ignore', 'ignore', 'pipe'] },
);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// One BiDi connection: commands by id, answers matched back.
async function connect() {
  for (let i = 0; i < 100; ++i) {
    try {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/session`);
      await new Promise((ok, err) => {
        ws.once('open', ok);
        ws.once('error', err);
      });
      return ws;
    } catch {
      await sleep(200);
    }
  }
  fail('Firefox did not open its WebDriver BiDi port');
}

try {
  const ws = await connect();
  let next = 0;
  const waiting = new Map();
  ws.on('message', (data) => {
    const m = JSON.parse(String(data));
    if (m.id !== undefined && waiting.has(m.id)) {
      waiting.get(m.id)(m);
      waiting.delete(m.id);
    }
  });
  const send = (method, params) =>
    new Promise((ok, err) => {
      const id = ++next;
      waiting.set(id, (m) =>
        m.type === 'error' ? err(new Error(`${method}: ${m.message}`)) : ok(m.result),
      );
      ws.send(JSON.stringify({ id, method, params }));
    });
  await send('session.new', { capabilities: {} });
  const tree = await send('browsingContext.getTree', {});
  const context = tree.contexts[0].context;
  await send('browsingContext.setViewport', { context, viewport: { width: 1400, height: 900 } });
  const run = async (expression) => {
    const r = await send('script.evaluate', {
      expression,
      target: { context },
      awaitPromise: true,
      resultOwnership: 'none',
    });
    if (r.type === 'exception') fail(`in the page: ${r.exceptionDetails.text}`);
    return r.result.value;
  };
  // Waits (bounded: 20 s) until `expression` is true in the page.
  const until = async (expression, what) => {
    for (let i = 0; i < 100; ++i) {
      if (await run(`Boolean(${expression})`)) return;
      await sleep(200);
    }
    fail(`Firefox: ${what} did not happen`);
  };
  const shot = async (name) => {
    const r = await send('browsingContext.captureScreenshot', { context });
    writeFileSync(join(env('YILIAN_SHOTS'), name), Buffer.from(r.data, 'base64'));
  };

  await send('browsingContext.navigate', { context, url: env('YILIAN_URL'), wait: 'complete' });
  await until(`document.querySelector('.login button[type=submit]')`, 'the login form');
  // Typing as a user would: the value, then the input event the page listens to.
  const type = (selector, value) =>
    run(`(() => { const e = document.querySelector(${JSON.stringify(selector)});
      e.value = ${JSON.stringify(value)}; e.dispatchEvent(new Event('input', { bubbles: true })); })()`);
  await type('input[name=username]', env('YILIAN_READER'));
  await type('input[name=password]', env('YILIAN_PASSWORD'));
  await run(`document.querySelector('.login button[type=submit]').click()`);
  await until(`document.querySelector('header .live.on')`, 'logging in and the live connection');
  await until(`document.querySelector('table.tasks tr[data-task] a')`, 'the worklist');
  await shot('firefox-worklist.png');

  await run(`document.querySelector('table.tasks tr[data-task] a').click()`);
  await until(`document.querySelector('canvas.image[data-state=ready]')`, 'the image');
  await run(`window.dispatchEvent(new KeyboardEvent('keydown', { key: '4', bubbles: true }))`);
  await until(
    `document.querySelector('canvas.image[data-state=ready][data-window=${expect.window}]')`,
    'the lung window',
  );
  const samples = await run(`(() => {
    const e = ${JSON.stringify(expect)};
    const c = document.querySelector('canvas.image');
    const ctx = c.getContext('2d');
    const s = Math.min(c.width / e.columns, c.height / e.rows);
    const ox = c.width / 2 - (e.columns * s) / 2;
    const oy = c.height / 2 - (e.rows * s) / 2;
    return JSON.stringify(e.points.map((p) => {
      const d = ctx.getImageData(Math.floor(ox + (p.x + 0.5) * s), Math.floor(oy + (p.y + 0.5) * s), 1, 1).data;
      return { ...p, r: d[0], g: d[1], b: d[2] };
    }));
  })()`);
  for (const p of JSON.parse(samples)) {
    if (Math.abs(p.r - p.value) > 10 || p.r !== p.g || p.g !== p.b) {
      fail(`Firefox pixel (${p.x},${p.y}): shown ${p.r},${p.g},${p.b}, expected grey ${p.value}`);
    }
  }
  await shot('firefox-viewer.png');

  // English on request.
  await run(
    `[...document.querySelectorAll('header button')].find((b) => b.textContent === 'English').click()`,
  );
  await until(`document.querySelector('#report-title')?.textContent === 'Report'`, 'English');
  console.log(JSON.stringify({ browser: 'firefox', samples: JSON.parse(samples) }));
  ws.close();
} finally {
  firefox.kill();
  await sleep(300);
  rmSync(profile, { recursive: true, force: true });
}
