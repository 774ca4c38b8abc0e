// End to end in headless Chromium: a stroke CT on its way from a township edge node to the hub.
// The test has cut the link with part of the CT at the hub. The edge's page (no login) shows
// the link down and the study on its way; the radiologist's worklist shows the STAT task still
// arriving, with its count; the reader opens it and sees the slices there. Then this script
// asks for the link back (by writing YILIAN_SIGNAL) and, in the same open viewer, sees new
// slices appear until the task is whole; the edge's page then shows the study complete.
//
// Environment: YILIAN_URL (the hub), YILIAN_EDGE_URL, YILIAN_SHOTS, YILIAN_READER,
// YILIAN_PASSWORD, YILIAN_STUDY, YILIAN_TOTAL (the CT's slices), YILIAN_SIGNAL (a file path).
// Prints one JSON line with what was seen; exits non-zero with the reason on any failure.
import { writeFileSync } from 'node:fs';
import { env, fail, run, WAIT } from './lib.mjs';

const study = env('YILIAN_STUDY');
const total = Number(env('YILIAN_TOTAL'));
const LONG = { timeout: 120000 };

// The frame count the viewer shows ("帧 3 / 17" in the canvas label).
async function frames(page) {
  const label = (await page.locator('canvas.image').getAttribute('aria-label')) ?? '';
  const m = label.match(/\/\s*(\d+)\s*$/);
  return m ? Number(m[1]) : 0;
}

await run(async ({ context, shot, login }) => {
  // The edge's page: Chinese, the link down, the study on its way.
  const edgeCtx = await context();
  const edge = await edgeCtx.newPage();
  await edge.goto(env('YILIAN_EDGE_URL'));
  await edge.locator('#link.down').filter({ hasText: '链路中断' }).waitFor(WAIT);
  const row = edge.locator(`tr[data-study="${study}"]`);
  await row.waitFor(WAIT);
  const waitingText = await row.innerText();
  if (!/正在发送|等待发送/.test(waitingText)) fail(`edge row while cut: ${waitingText}`);
  await shot(edge, 'edge-page.png');

  // The worklist: the STAT task, still arriving, with the count at the hub.
  const reader = await login(await context(), env('YILIAN_READER'));
  const arriving = reader.locator('table.tasks tr[data-task] small.arriving');
  await arriving.first().waitFor(WAIT);
  const listed = Number(await arriving.first().getAttribute('data-arriving'));
  if (!(listed >= 1 && listed < total)) fail(`worklist count ${listed} of ${total}`);
  await shot(reader, 'worklist-arriving.png');

  // The reader opens it: the slices at the hub are there to scroll.
  await reader.locator('table.tasks tr[data-task] a').first().click();
  await reader.waitForURL(/#\/read\/\d+$/, WAIT);
  await reader.locator('.task-bar .arriving').waitFor(WAIT);
  await reader.locator('canvas.image[data-state="ready"]').waitFor(WAIT);
  const before = await frames(reader);
  if (!(before >= 1 && before < total)) fail(`viewer shows ${before} of ${total} slices`);
  await shot(reader, 'reading-arriving.png');

  // The link comes back: new slices appear in the open viewer, then the task is whole.
  writeFileSync(env('YILIAN_SIGNAL'), 'restore\n');
  await reader.waitForFunction(
    (n) => {
      const m = (document.querySelector('canvas.image')?.getAttribute('aria-label') ?? '').match(
        /\/\s*(\d+)\s*$/,
      );
      return m !== null && Number(m[1]) > n;
    },
    before,
    LONG,
  );
  const grown = await frames(reader);
  await reader.locator('.task-bar .arriving').waitFor({ state: 'detached', ...LONG });
  await reader.waitForFunction(
    (n) => {
      const m = (document.querySelector('canvas.image')?.getAttribute('aria-label') ?? '').match(
        /\/\s*(\d+)\s*$/,
      );
      return m !== null && Number(m[1]) === n;
    },
    total,
    LONG,
  );
  await shot(reader, 'reading-arrived.png');

  // The edge's page: the study complete at the hub.
  await edge
    .locator(`tr[data-study="${study}"]`)
    .filter({ hasText: '已完整到达中心' })
    .waitFor(LONG);
  await edge.locator('#link.up').waitFor(WAIT);
  await shot(edge, 'edge-page-complete.png');
  return { listed, before, grown, after: await frames(reader) };
});
