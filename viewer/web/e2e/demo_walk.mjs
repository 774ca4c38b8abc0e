// A walk through every screen as each user of the demo consortium (`yilian demo`), in headless
// Chromium: each screen must show data, and is kept as a screenshot (demo-<user>-<screen>.png).
//
// Environment: YILIAN_URL, YILIAN_SHOTS, YILIAN_PASSWORD (the demo users' password).
// Prints one JSON line: for each user and screen, the count of items it showed.
import { env, fail, run, until, WAIT } from './lib.mjs';

// Goes to `hash`, waits for `selector` to show at least `min` items, keeps a screenshot.
async function screen(page, shot, seen, user, name, hash, selector, min = 1) {
  await page.goto(`${env('YILIAN_URL')}/${hash}`);
  await page
    .locator(selector)
    .nth(min - 1)
    .waitFor(WAIT);
  const n = await page.locator(selector).count();
  if (n < min) fail(`${user} ${name}: ${n} items of ${selector}`);
  (seen[user] ??= {})[name] = n;
  await shot(page, `demo-${user}-${name}.png`);
}

await run(async ({ context, shot, login }) => {
  const seen = {};

  // The consortium office.
  const office = await login(await context(), 'office');
  const s = (...a) => screen(office, shot, seen, 'office', ...a);
  await s('system', '#/admin/system', '.system[data-loaded] .figure');
  const stored = Number(await office.locator('[data-figure="stored"] .value').textContent());
  if (!(stored > 0)) fail(`the system page shows ${stored} stored instances`);
  await s('institutions', '#/admin/institutions', 'tr[data-institution]', 4);
  await s('users', '#/admin/users', 'tr[data-user]', 5);
  await s('services', '#/admin/services', 'tr[data-service]', 4);
  await s('rules', '#/admin/rules', 'tr[data-setting]', 8);
  await s('recognition', '#/admin/recognition', 'tr[data-rule]', 4);
  // A rule's test by the name the laboratory's results gave it.
  const troponin = await office.locator('tr[data-rule="10839-9"]').textContent();
  if (!troponin.includes('肌钙蛋白I')) fail(`the troponin rule shows ${troponin}`);
  await s('audit', '#/admin/audit', 'tr[data-audit]', 10);
  await s('dashboard', '#/dashboard', 'table.stats tr[data-group]');

  // The lead hospital's radiologist: worklist, the stroke CT in the viewer, emergencies,
  // consults, statistics.
  const rad = await login(await context(), 'dr-wang');
  const r = (...a) => screen(rad, shot, seen, 'dr-wang', ...a);
  await r('worklist', '#/worklist', 'table.tasks tr[data-task]', 3);
  const stat = rad.locator('table.tasks tr[data-task]', { has: rad.locator('.badge.stat') });
  await stat.first().locator('a').click();
  await rad.locator('canvas.image[data-state="ready"]').waitFor(WAIT);
  await shot(rad, 'demo-dr-wang-viewer.png');
  await r('emergency', '#/emergency', 'article.case', 2);
  await r('consults', '#/consults', 'tr[data-consult]');
  await r('referrals', '#/referrals', 'tr[data-referral]');
  await r('dashboard', '#/dashboard', 'table.stats tr[data-group]');

  // The cardiologist, on call: the STEMI alert covers the screen until acknowledged with one
  // tap; then the STEMI ECG first in the list, on its grid.
  const cardio = await login(await context(), 'dr-zhao');
  const c = (...a) => screen(cardio, shot, seen, 'dr-zhao', ...a);
  const alert = cardio.locator('.alert-overlay .alert-card');
  await alert.first().waitFor(WAIT);
  await shot(cardio, 'demo-dr-zhao-alert.png');
  (seen['dr-zhao'] ??= {}).alert = await alert.count();
  for (let n = await alert.count(); n > 0; n = await alert.count()) {
    await alert.first().getByRole('button', { name: '确认接收' }).click();
    await cardio.waitForFunction(
      (before) => document.querySelectorAll('.alert-overlay .alert-card').length < before,
      n,
      WAIT,
    );
  }
  await cardio.locator('.alert-overlay').waitFor({ state: 'detached', ...WAIT });
  await c('worklist', '#/worklist', 'table.tasks tr[data-task]', 2);
  const stemi = cardio.locator('table.tasks tr[data-task]', {
    has: cardio.locator('.badge.stemi'),
  });
  await stemi.first().locator('a').click();
  await cardio.locator('canvas.ecg[data-state="ready"]').waitFor(WAIT);
  await cardio.locator('li.flag[data-code="suspected_stemi"]').waitFor(WAIT);
  await shot(cardio, 'demo-dr-zhao-ecg.png');
  await c('emergency', '#/emergency', 'article.case.chest_pain');
  // The STEMI patient's record: Qingshan's bloods (two recognised, the troponin not), the ECG,
  // the chest-pain case and the referral, in time.
  await c('record', '#/lab/QS-0002', '.timeline li.entry', 4);
  await c('results', '#/lab/QS-0002', 'tr[data-result]', 3);

  // The township doctors: their studies in progress and reported, their consult, referrals.
  const li = await login(await context(), 'dr-li');
  const l = (...a) => screen(li, shot, seen, 'dr-li', ...a);
  await l('township', '#/township', 'tr[data-task]', 4);
  await l('consults', '#/consults', 'tr[data-consult]');
  await l('emergency', '#/emergency', 'article.case', 2);
  await l('referrals', '#/referrals', 'tr[data-referral]');

  // The lead's emergency physician: the chest-pain case is on the board they start on.
  const sun = await login(await context(), 'dr-sun');
  await sun.locator('article.case.chest_pain').waitFor(WAIT);
  await screen(sun, shot, seen, 'dr-sun', 'emergency', '#/emergency', 'article.case.chest_pain');

  // The lead's pathologist: the frozen section waits STAT on the worklist; opened, the slide
  // viewer draws the stained section from its tiles.
  const zhou = await login(await context(), 'dr-zhou');
  await screen(zhou, shot, seen, 'dr-zhou', 'worklist', '#/worklist', 'table.tasks tr[data-task]');
  const frozen = zhou.locator('table.tasks tr[data-task]', { has: zhou.locator('.badge.stat') });
  await frozen.first().locator('a').click();
  const reason = await zhou.locator('span.reason').first().textContent();
  if (reason !== '术中冰冻切片：手术医生等待结果') fail(`the frozen section's reason "${reason}"`);
  const slide = zhou.locator('canvas.slide-canvas[data-um-per-px]');
  await slide.waitFor(WAIT);
  // Stained tissue on the canvas: points where red stands well above green (eosin, haematoxylin).
  const stained = () =>
    slide.evaluate((c) => {
      const g = c.getContext('2d');
      let n = 0;
      for (let y = 1; y < 12; ++y)
        for (let x = 1; x < 12; ++x) {
          const d = g.getImageData(
            Math.floor((c.width * x) / 12),
            Math.floor((c.height * y) / 12),
            1,
            1,
          ).data;
          if (d[3] > 0 && d[0] - d[1] > 25) ++n;
        }
      return n;
    });
  (seen['dr-zhou'] ??= {}).slide = await until(zhou, stained, 80, 'the stained section drawn');
  await shot(zhou, 'demo-dr-zhou-slide.png');

  const chen = await login(await context(), 'dr-chen');
  await screen(chen, shot, seen, 'dr-chen', 'township', '#/township', 'tr[data-task]', 2);
  return seen;
});
