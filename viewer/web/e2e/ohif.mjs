// The advanced viewer end to end in headless Chromium against a running `yilian serve` holding
// one routed CT series of township A: the radiologist opens it from the worklist in OHIF
// (served by the hub at /ohif/, signed in by the viewer cookie, no second login), the image is
// drawn (pixels checked), the MPR layout loads with its three views; the viewer's page cannot
// read the cookie, and the cookie writes nothing; a township doctor of another institution
// opening the same study in OHIF gets nothing of it. No request leaves the hub's origin.
//
// Environment: YILIAN_URL, YILIAN_SHOTS, YILIAN_PASSWORD, YILIAN_READER, YILIAN_OTHER (a user of
// another institution), YILIAN_STUDY (the CT's Study Instance UID).
// Prints one JSON line with what was seen; exits non-zero with the reason on any failure.
import { env, fail, run, until, WAIT } from './lib.mjs';

const base = new URL(env('YILIAN_URL'));
const study = env('YILIAN_STUDY');
const LONG = { timeout: 60000 };

// Every request a page makes outside the hub's origin, and what /dicom-web answered it.
function watch(page) {
  const seen = { foreign: [], dicomweb: [], blocked: [] };
  // What the page's Content-Security-Policy refused (the viewer must work within it).
  page.on('console', (m) => {
    if (/Content Security Policy/i.test(m.text())) seen.blocked.push(m.text());
  });
  page.on('request', (r) => {
    const u = new URL(r.url());
    if ((u.protocol === 'http:' || u.protocol === 'https:') && u.origin !== base.origin) {
      seen.foreign.push(r.url());
    }
  });
  page.on('response', (r) => {
    const u = new URL(r.url());
    if (u.pathname.startsWith('/dicom-web/')) {
      seen.dicomweb.push({
        method: r.request().method(),
        path: u.pathname + u.search,
        status: r.status(),
      });
    }
  });
  return seen;
}

// What a viewport's canvas shows: its size and, along its middle row, the grey levels.
async function canvasRows(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('canvas.cornerstone-canvas')].map((c) => {
      const ctx = c.getContext('2d');
      if (!ctx || c.width === 0 || c.height === 0)
        return { width: c.width, height: c.height, row: [] };
      const y = Math.floor(c.height / 2);
      const d = ctx.getImageData(0, y, c.width, 1).data;
      const row = [];
      for (let x = 0; x < c.width; ++x) row.push(d[x * 4]);
      return { width: c.width, height: c.height, row };
    }),
  );
}

// The synthetic CT in its own window (40/80): HU below 0 black, above 80 white. Along a middle
// row the left of the image is black and its right white: dark and bright both there, the
// bright ones to the right of the dark ones.
function showsTheCt(v) {
  if (!v || v.row.length === 0) return false;
  const firstBright = v.row.findIndex((g) => g >= 200);
  const lastDarkBefore = v.row.slice(0, Math.max(firstBright, 0)).some((g) => g <= 40);
  return firstBright > 0 && lastDarkBefore && v.row.slice(firstBright).some((g) => g >= 200);
}

await run(
  async ({ context, shot, login }) => {
    // The radiologist opens the study from the worklist in the advanced viewer.
    const readerCtx = await context();
    const reader = await login(readerCtx, env('YILIAN_READER'));
    const button = reader.locator(`table.tasks button.advanced-viewer[data-study="${study}"]`);
    await button.waitFor(WAIT);
    await shot(reader, 'ohif-worklist.png');
    const [ohif] = await Promise.all([readerCtx.waitForEvent('page', LONG), button.click()]);
    const seen = watch(ohif);
    await ohif.waitForURL(/\/ohif\/viewer\?StudyInstanceUIDs=/, LONG);
    await ohif.locator('canvas.cornerstone-canvas').first().waitFor(LONG);
    const stack = await until(
      ohif,
      async () => (await canvasRows(ohif)).find(showsTheCt),
      240,
      'the CT image in the viewer',
    );
    await shot(ohif, 'ohif-viewer.png');

    // The viewer's page cannot read the viewer cookie, and the cookie stores nothing.
    const pageCookies = await ohif.evaluate(() => document.cookie);
    if (pageCookies.includes('yilian_viewer')) fail('the viewer cookie is readable by scripts');
    const stow = await ohif.evaluate(async () => {
      const r = await fetch('/dicom-web/studies', {
        method: 'POST',
        headers: { 'Content-Type': 'multipart/related; type="application/dicom"; boundary=x' },
        body: '--x--',
      });
      return r.status;
    });
    const api = await ohif.evaluate(async () => (await fetch('/api/worklist')).status);

    // The MPR layout: three views of the volume.
    const mpr = await readerCtx.newPage();
    const mprSeen = watch(mpr);
    await mpr.goto(
      `${base.origin}/ohif/viewer?StudyInstanceUIDs=${encodeURIComponent(study)}&hangingProtocolId=mpr`,
    );
    const views = await until(
      mpr,
      async () => {
        const v = await canvasRows(mpr);
        return v.length >= 3 && v.filter(showsTheCt).length >= 1 ? v : null;
      },
      240,
      'the three MPR views',
    );
    await shot(mpr, 'ohif-mpr.png');

    // A township doctor of another institution, in their own browser, opens the same study.
    const otherCtx = await context();
    const other = await login(otherCtx, env('YILIAN_OTHER'));
    const pass = await other.evaluate(async () => {
      const r = await fetch('/api/auth/viewer', {
        method: 'POST',
        headers: { Authorization: `Bearer ${sessionStorage.getItem('yilian.token')}` },
      });
      return r.status;
    });
    const stranger = await otherCtx.newPage();
    const strangerSeen = watch(stranger);
    await stranger.goto(
      `${base.origin}/ohif/viewer?StudyInstanceUIDs=${encodeURIComponent(study)}`,
    );
    // OHIF asks for the study's series first; wait for its answer and for OHIF to give up.
    await until(stranger, async () => strangerSeen.dicomweb.length > 0, 240, 'the viewer to ask');
    await until(
      stranger,
      async () =>
        /notfoundstudy/.test(stranger.url()) ||
        (await stranger.getByText(/not found|No Studies|找不到|没有/i).count()) > 0,
      240,
      'the viewer to report the study missing',
    );
    await shot(stranger, 'ohif-other-institution.png');
    const strangerData = strangerSeen.dicomweb.filter(
      (r) => r.status === 200 && /\/(metadata|frames|rendered|thumbnail)/.test(r.path),
    );
    const strangerPixels = (await canvasRows(stranger)).filter(showsTheCt).length;

    return {
      stack: { width: stack.width, height: stack.height },
      views: views.length,
      viewsShowingTheCt: views.filter(showsTheCt).length,
      dicomwebRequests: seen.dicomweb.length + mprSeen.dicomweb.length,
      // The viewer's own reads (the refused store above is not one).
      unauthorised: [...seen.dicomweb, ...mprSeen.dicomweb].filter(
        (r) => r.method === 'GET' && r.status === 401,
      ),
      foreign: [...seen.foreign, ...mprSeen.foreign, ...strangerSeen.foreign],
      blockedByPolicy: [...seen.blocked, ...mprSeen.blocked],
      stowWithCookie: stow,
      apiWithCookie: api,
      otherPass: pass,
      otherRequests: strangerSeen.dicomweb,
      otherData: strangerData.length,
      otherPixels: strangerPixels,
    };
  },
  { webgl: true },
);
