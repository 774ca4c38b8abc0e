// End to end in headless Chromium: the pathologist opens a frozen section's whole slide; the
// slide viewer draws the coarsest level's tiles (the colour at the centre is the tile there),
// zooms in to the full-resolution level, measures a length in µm from the pixel spacing, and
// shows the slide's label.
//
// Environment: YILIAN_URL, YILIAN_SHOTS, YILIAN_PASSWORD, YILIAN_DOCTOR, YILIAN_SLIDE
// (study/series), YILIAN_EXPECT (JSON: {"slideId", "centre": {level: [r, g, b]}}, the colour
// each level shows at the slide's centre).
// Prints one JSON line with the level reached and the length measured.
import { env, fail, run, WAIT } from './lib.mjs';

const expect = JSON.parse(env('YILIAN_EXPECT'));

// The canvas colour at its centre.
async function centre(page) {
  return page.locator('canvas.slide-canvas').evaluate((c) => {
    const g = c.getContext('2d');
    const d = g.getImageData(Math.floor(c.width / 2), Math.floor(c.height / 2), 1, 1).data;
    return [d[0], d[1], d[2]];
  });
}

async function waitForColour(page, want, what) {
  let got = [];
  for (let i = 0; i < 100; i++) {
    got = await centre(page);
    if (got.every((v, k) => Math.abs(v - want[k]) <= 8)) return;
    await page.waitForTimeout(100);
  }
  fail(`${what}: centre ${got} instead of ${want}`);
}

await run(async ({ context, shot, login }) => {
  const page = await login(await context(), env('YILIAN_DOCTOR'));
  await page.goto(`${env('YILIAN_URL')}/#/slide/${env('YILIAN_SLIDE')}`);
  const canvas = page.locator('canvas.slide-canvas');
  await canvas.waitFor(WAIT);
  await page.locator('.slide-status[data-level]').waitFor(WAIT);
  const fitLevel = await page.locator('.slide-status').getAttribute('data-level');
  await waitForColour(page, expect.centre[fitLevel], `whole slide at level ${fitLevel}`);
  const label = page.locator('figure.slide-image img[alt="玻片标签"]');
  await label.waitFor(WAIT);
  const id = await page.locator('dd.slide-id').textContent();
  if (id !== expect.slideId) fail(`slide id "${id}"`);

  // Zoom in until the full-resolution level is drawn.
  for (let i = 0; i < 8; i++) {
    if ((await page.locator('.slide-status').getAttribute('data-level')) === '0') break;
    await page.getByRole('button', { name: '放大' }).click();
  }
  const level = await page.locator('.slide-status').getAttribute('data-level');
  if (level !== '0') fail(`level ${level} after zooming in`);
  await waitForColour(page, expect.centre['0'], 'full resolution');

  // A 100-pixel line measured in µm.
  const umPerPx = Number(await canvas.getAttribute('data-um-per-px'));
  await page.getByRole('button', { name: '测距' }).click();
  const box = await canvas.boundingBox();
  const y = box.y + box.height / 2;
  await page.mouse.click(box.x + 100, y);
  await page.mouse.click(box.x + 200, y);
  const item = page.locator('ul.slide-measures li');
  await item.waitFor(WAIT);
  const um = Number(await item.getAttribute('data-um'));
  if (Math.abs(um - 100 * umPerPx) > 0.02 * 100 * umPerPx) fail(`measured ${um} µm, ${umPerPx}/px`);
  await shot(page, 'slide.png');
  return { level: Number(level), um, umPerPx };
});
