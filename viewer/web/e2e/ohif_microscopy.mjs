// OHIF's microscopy mode end to end in headless Chromium against a running `yilian serve`
// holding one whole-slide study: the pathologist opens it from the worklist in the advanced
// viewer, which picks the microscopy mode for a slide; dicom-microscopy-viewer reads the
// slide's metadata and its tiles as stored (JPEG frames) from the hub's DICOMweb and draws it.
//
// Environment: YILIAN_URL, YILIAN_SHOTS, YILIAN_PASSWORD, YILIAN_READER, YILIAN_STUDY,
// YILIAN_COLOURS (JSON: the [r, g, b] colours the slide's tiles have, on every level).
// Prints one JSON line with what was seen.
import { env, fail, run, until, WAIT } from './lib.mjs';

const base = new URL(env('YILIAN_URL'));
const study = env('YILIAN_STUDY');
const colours = JSON.parse(env('YILIAN_COLOURS'));
const LONG = { timeout: 60000 };

// The colours on the screen, sampled on a 24 x 24 grid, and those of them that are tile colours
// of the slide (within JPEG's error). The viewer draws with WebGL, whose canvas a script cannot
// read back: the screenshot is decoded by the browser on a blank page of its own.
async function tileColoursDrawn(page, scratch) {
  const png = (await page.screenshot()).toString('base64');
  const samples = await scratch.evaluate(async (b64) => {
    const img = new Image();
    img.src = `data:image/png;base64,${b64}`;
    await img.decode();
    const c = document.createElement('canvas');
    c.width = img.width;
    c.height = img.height;
    const g = c.getContext('2d');
    g.drawImage(img, 0, 0);
    const out = [];
    for (let y = 1; y < 24; ++y)
      for (let x = 1; x < 24; ++x) {
        const d = g.getImageData(
          Math.floor((c.width * x) / 24),
          Math.floor((c.height * y) / 24),
          1,
          1,
        ).data;
        out.push([d[0], d[1], d[2]]);
      }
    return out;
  }, png);
  const near = (a, b) => a.every((v, k) => Math.abs(v - b[k]) <= 10);
  const tiles = new Set();
  let hits = 0;
  for (const s of samples) {
    const i = colours.findIndex((c) => near(s, c));
    if (i >= 0) {
      ++hits;
      tiles.add(i);
    }
  }
  return { samples: samples.length, hits, tiles: tiles.size };
}

await run(
  async ({ context, shot, login }) => {
    const ctx = await context();
    const reader = await login(ctx, env('YILIAN_READER'));
    const button = reader.locator(`table.tasks button.advanced-viewer[data-study="${study}"]`);
    await button.waitFor(WAIT);
    const mode = await button.getAttribute('data-mode');
    if (mode !== 'microscopy') fail(`the slide's advanced viewer button opens "${mode}"`);
    const [ohif] = await Promise.all([ctx.waitForEvent('page', LONG), button.click()]);
    const seen = { foreign: [], dicomweb: [], blocked: [], console: [], failed: [] };
    ohif.on('console', (m) => {
      if (/Content Security Policy/i.test(m.text())) seen.blocked.push(m.text());
      if (m.type() === 'error') seen.console.push(m.text());
    });
    ohif.on('request', (r) => {
      const u = new URL(r.url());
      if ((u.protocol === 'http:' || u.protocol === 'https:') && u.origin !== base.origin)
        seen.foreign.push(r.url());
    });
    ohif.on('response', (r) => {
      const u = new URL(r.url());
      if (r.status() >= 400) seen.failed.push(`${r.status()} ${u.pathname}`);
      if (u.pathname.startsWith('/dicom-web/'))
        seen.dicomweb.push({
          path: u.pathname + u.search,
          accept: r.request().headers()['accept'] ?? '',
          status: r.status(),
          type: r.headers()['content-type'] ?? '',
        });
    });
    await ohif.waitForURL(/\/ohif\/microscopy\?StudyInstanceUIDs=/, LONG);
    const scratch = await ctx.newPage();
    let drawn = { samples: 0, hits: 0, tiles: 0 };
    try {
      drawn = await until(
        ohif,
        async () => {
          drawn = await tileColoursDrawn(ohif, scratch);
          return drawn.hits >= 100 && drawn.tiles >= 6 ? drawn : null;
        },
        240,
        'the slide drawn in the microscopy viewer',
      );
    } finally {
      await shot(ohif, 'ohif-microscopy.png');
      console.error(JSON.stringify({ drawn, failed: seen.failed, console: seen.console }));
    }
    const frames = seen.dicomweb.filter((r) => /\/frames\//.test(r.path));
    return {
      drawn,
      frames: frames.length,
      framesOk: frames.filter((r) => r.status === 200).length,
      failed: seen.failed,
      foreign: seen.foreign,
      blockedByPolicy: seen.blocked,
    };
  },
  { webgl: true },
);
