// End to end in headless Chromium: the cardiologist on call signs in while a township STEMI
// alert waits for them; it covers whatever screen they are on until acknowledged with one tap;
// the emergency board then shows who was alerted and who acknowledged. The consortium office
// sees the roster on its screen.
//
// Environment: YILIAN_URL, YILIAN_SHOTS, YILIAN_PASSWORD, YILIAN_CARDIOLOGIST, YILIAN_OFFICE.
// Prints one JSON line with the case acknowledged.
import { env, fail, run, WAIT } from './lib.mjs';

await run(async ({ context, shot, login }) => {
  const office = await login(await context(), env('YILIAN_OFFICE'));
  await office.goto(`${env('YILIAN_URL')}/#/admin/oncall`);
  const shift = office.locator('table.admin-table tr[data-shift]');
  await shift.first().waitFor(WAIT);
  const roster = await shift.first().textContent();
  if (!roster.includes(env('YILIAN_CARDIOLOGIST'))) fail(`roster row "${roster}"`);
  await shot(office, 'admin-oncall.png');

  const cardio = await login(await context(), env('YILIAN_CARDIOLOGIST'));
  const card = cardio.locator('.alert-overlay .alert-card');
  await card.first().waitFor(WAIT);
  const caseId = Number(await card.first().getAttribute('data-case'));
  const text = await card.first().textContent();
  if (!text.includes('急救警报')) fail(`alert card "${text}"`);
  // The analysis's reason in the standard Chinese terms, its measurements as they are.
  const reason = await card.first().locator('.reason').textContent();
  if (!/^疑似急性ST段抬高型心肌梗死（前壁）：J点ST段抬高： V2 \+0\.\d\d mV/.test(reason))
    fail(`alert reason "${reason}"`);
  await shot(cardio, 'alert.png');
  // The overlay holds every screen: the worklist behind it cannot be used until acknowledged.
  await card.first().getByRole('button', { name: '确认接收' }).click();
  await cardio.locator('.alert-overlay').waitFor({ state: 'detached', ...WAIT });

  await cardio.goto(`${env('YILIAN_URL')}/#/emergency`);
  const trail = cardio.locator(`article.case[data-case="${caseId}"] .alert-trail`);
  await trail.waitFor(WAIT);
  const acknowledged = await trail.getAttribute('data-acknowledged');
  if (acknowledged !== env('YILIAN_CARDIOLOGIST')) fail(`acknowledged by "${acknowledged}"`);
  await cardio
    .locator(`article.case[data-case="${caseId}"] button.point.done[data-point="ecg_read"]`)
    .waitFor(WAIT);
  await shot(cardio, 'alert-acknowledged.png');
  return { caseId };
});
