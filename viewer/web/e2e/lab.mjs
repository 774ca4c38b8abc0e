// End to end in headless Chromium: the lead's doctor looks up a township patient's laboratory
// results; haemoglobin, sent twice by the township laboratory, shows its trend and is marked
// recognised — no need to repeat; the doctor takes it instead of ordering the test again, and
// the consortium dashboard counts the repeat avoided for the lead hospital.
//
// Environment: YILIAN_URL, YILIAN_SHOTS, YILIAN_PASSWORD, YILIAN_DOCTOR, YILIAN_PATIENT.
// Prints one JSON line with the result taken.
import { env, fail, run, WAIT } from './lib.mjs';

await run(async ({ context, shot, login }) => {
  const page = await login(await context(), env('YILIAN_DOCTOR'));
  await page.goto(`${env('YILIAN_URL')}/#/lab`);
  await page.locator('form.lab-search input[name="patientId"]').fill(env('YILIAN_PATIENT'));
  await page.locator('form.lab-search button[type="submit"]').click();
  const hb = page.locator('table.lab-table tr[data-code="718-7"]');
  await hb.waitFor(WAIT);
  const badge = await hb.locator('.badge.recognised').textContent();
  if (badge !== '已互认，无需重复检查') fail(`recognition badge "${badge}"`);
  // Two haemoglobin results: a trend of two points, the newest value shown.
  const dots = await hb.locator('svg.trend circle').count();
  if (dots !== 2) fail(`trend points ${dots}`);
  const value = (await hb.locator('td.value').textContent()).trim();
  if (!value.startsWith('96 g/L')) fail(`latest haemoglobin "${value}"`);
  // Glucose from a laboratory without the qualification its rule asks: not recognised.
  const glucose = page.locator('table.lab-table tr[data-code="2345-7"]');
  if ((await glucose.locator('.badge.recognised').count()) !== 0) fail('glucose recognised');
  const why = await glucose.locator('[data-why]').textContent();
  if (why !== '检验机构资质不符合该项目的互认要求') fail(`glucose not recognised because "${why}"`);
  const taken = Number(await hb.getAttribute('data-result'));
  await hb.getByRole('button', { name: '采用，不重复检查' }).click();
  await hb.locator('.taken').waitFor(WAIT);
  await shot(page, 'lab-results.png');

  await page.goto(`${env('YILIAN_URL')}/#/dashboard`);
  const chart = page.locator('figure.chart', { hasText: '互认避免的重复检查' });
  await chart.locator('svg text', { hasText: 'lead' }).waitFor(WAIT);
  await shot(page, 'lab-dashboard.png');
  return { taken };
});
