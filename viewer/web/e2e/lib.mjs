// What the end-to-end scenarios share: settings from the environment, Chromium, logging in.
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { chromium } from 'playwright-core';

export const WAIT = { timeout: 20000 };

export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

export function fail(msg) {
  throw new Error(msg);
}

// Polls `f` until it returns a truthy value, which it returns (bounded: `tries` × 250 ms).
export async function until(page, f, tries, what) {
  for (let i = 0; i < tries; ++i) {
    const v = await f();
    if (v) return v;
    await page.waitForTimeout(250);
  }
  fail(`gave up waiting for ${what}`);
}

// Runs `scenario(browser, tools)` in headless Chromium; page errors fail the run.
// `options.webgl`: WebGL through the software renderer (SwiftShader), for pages that need it
// (the advanced viewer's MPR).
export async function run(scenario, options = {}) {
  const shots = env('YILIAN_SHOTS');
  mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox',
      ...(options.webgl
        ? ['--use-angle=swiftshader', '--enable-unsafe-swiftshader', '--ignore-gpu-blocklist']
        : ['--disable-gpu']),
      // Consult calls: a generated camera and microphone, permission granted.
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
    ],
  });
  const errors = [];
  const contexts = [];
  try {
    const context = async () => {
      const ctx = await browser.newContext({
        viewport: { width: 1400, height: 900 },
        deviceScaleFactor: 1,
        // As the consortium's users' browsers are: date and time pickers read yyyy/mm/dd.
        locale: 'zh-CN',
      });
      ctx.on('page', (p) =>
        p.on('pageerror', (e) => {
          errors.push(String(e));
          console.error('page error:', e);
        }),
      );
      contexts.push(ctx);
      return ctx;
    };
    const shot = (page, name) => page.screenshot({ path: join(shots, name) });
    let result;
    try {
      result = await scenario({ context, shot, login });
    } catch (e) {
      // What each page showed when the scenario failed, for the one reading the log.
      let n = 0;
      for (const ctx of contexts) {
        for (const page of ctx.pages()) await shot(page, `failed-${++n}.png`).catch(() => {});
      }
      throw e;
    }
    if (errors.length) fail(`errors in the pages: ${errors.join('; ')}`);
    console.log(JSON.stringify(result));
  } finally {
    await browser.close();
  }
}

// Logs `username` in (the UI starts in Chinese) and waits for the live connection.
export async function login(ctx, username, onLoginPage) {
  const page = await ctx.newPage();
  page.on('dialog', (d) => d.accept());
  await page.goto(env('YILIAN_URL'));
  await page.getByRole('button', { name: '登录' }).waitFor(WAIT);
  if (onLoginPage) await onLoginPage(page);
  await page.getByLabel('用户名').fill(username);
  await page.getByLabel('密码').fill(env('YILIAN_PASSWORD'));
  await page.getByRole('button', { name: '登录' }).click();
  await page.locator('header.top .live.on').waitFor(WAIT);
  return page;
}
