// End to end in headless Chromium: the cardiologist on call signs in while a township STEMI
// alert waits for them; it covers whatever screen they are on until acknowledged with one tap;
// the emergency board then shows who was alerted and who acknowledged. The consortium office
// sees the roster on its screen. The township doctor then opens a critical-newborn case on the
// board, which filters to that centre, and records the birth with one tap. Last, with the door
// and wire crossing tapped, the cardiologist closes the STEMI case; it is reviewed among the
// closed cases (quality control correct its symptom onset there, with the source), and the
// dashboard counts its door-to-balloon against the target.
//
// Environment: YILIAN_URL, YILIAN_SHOTS, YILIAN_PASSWORD, YILIAN_CARDIOLOGIST, YILIAN_OFFICE,
// YILIAN_DOCTOR, YILIAN_QC. Prints one JSON line with the case acknowledged and the newborn case.
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

  const doctor = await login(await context(), env('YILIAN_DOCTOR'));
  await doctor.goto(`${env('YILIAN_URL')}/#/emergency`);
  await doctor.locator(`article.case[data-case="${caseId}"]`).waitFor(WAIT);
  await doctor.locator('details.open-case summary').click();
  const form = doctor.locator('details.open-case form');
  await form.locator('select[name="kind"]').selectOption('newborn');
  await form.locator('input[name="patientId"]').fill('TA-NB-1');
  await form.locator('input[name="reason"]').fill('早产 32周 窒息');
  await form.getByRole('button', { name: '新建急救病例' }).click();
  const newborn = doctor.locator('article.case.newborn');
  await newborn.waitFor(WAIT);
  const newbornId = Number(await newborn.getAttribute('data-case'));
  // The board shows the newborn centre only: the chest-pain case is filtered out.
  await doctor.locator('button.centre.selected[data-centre="newborn"]').waitFor(WAIT);
  await doctor.locator('article.case.chest_pain').waitFor({ state: 'detached', ...WAIT });
  await newborn.locator('button.point[data-point="birth"]').click();
  await newborn.locator('button.point.done[data-point="birth"]').waitFor(WAIT);
  await newborn.locator('.clock[data-interval="birth_to_ventilation"]').waitFor(WAIT);
  const title = await newborn.locator('.badge').textContent();
  if (title !== '危重新生儿') fail(`newborn badge "${title}"`);
  await shot(doctor, 'emergency-newborn.png');
  // All centres again: both cases.
  await doctor.locator('button.centre[data-centre="all"]').click();
  await doctor.locator(`article.case[data-case="${caseId}"]`).waitFor(WAIT);

  // Back with the cardiologist: the patient reaches the cath lab (door and wire crossing, one
  // tap each); the case closes and leaves the board for the closed cases, where its clocks
  // stand as they ended.
  const stemi = cardio.locator(`article.case[data-case="${caseId}"]`);
  for (const point of ['door', 'wire_crossing']) {
    await stemi.locator(`button.point[data-point="${point}"]`).click();
    await stemi.locator(`button.point.done[data-point="${point}"]`).waitFor(WAIT);
  }
  await stemi.locator('li.clock[data-interval="door_to_balloon"][data-status="met"]').waitFor(WAIT);
  await stemi.getByRole('button', { name: '结束病例' }).click();
  await stemi.waitFor({ state: 'detached', ...WAIT });
  await cardio.locator('nav.tabs a[data-view="closed"]').click();
  const reviewed = cardio.locator(`article.case.closed[data-case="${caseId}"]`);
  await reviewed.waitFor(WAIT);
  await reviewed
    .locator('li.clock[data-interval="door_to_balloon"][data-status="met"]')
    .waitFor(WAIT);
  await reviewed.locator('.closed-at').waitFor(WAIT);
  if (!(await reviewed.locator('button.point[data-point="door"]').isDisabled()))
    fail('a closed case still records time points');
  if ((await reviewed.getByRole('button', { name: '结束病例' }).count()) !== 0)
    fail('a closed case can be closed again');
  if ((await reviewed.locator('details.record-earlier').count()) !== 0)
    fail('a cardiologist is offered to correct a closed case');
  await shot(cardio, 'emergency-closed.png');

  // The chest-pain centre's data manager (quality control) records the symptom onset the
  // patient reported, an hour before, on the closed case, with its source.
  const qc = await login(await context(), env('YILIAN_QC'));
  await qc.goto(`${env('YILIAN_URL')}/#/emergency/closed`);
  const audited = qc.locator(`article.case.closed[data-case="${caseId}"]`);
  await audited.waitFor(WAIT);
  const correction = audited.locator('details.record-earlier');
  await correction.locator('summary', { hasText: '质控更正' }).click();
  await correction.locator('select[name="point"]').selectOption('symptom_onset');
  const hourAgo = new Date(Date.now() - 3600 * 1000);
  const pad = (n) => String(n).padStart(2, '0');
  await correction
    .locator('input[name="at"]')
    .fill(
      `${hourAgo.getFullYear()}-${pad(hourAgo.getMonth() + 1)}-${pad(hourAgo.getDate())}` +
        `T${pad(hourAgo.getHours())}:${pad(hourAgo.getMinutes())}`,
    );
  await correction.locator('input[name="note"]').fill('患者自述发病时间');
  await correction.getByRole('button', { name: '保存' }).click();
  await audited.locator('button.point.done[data-point="symptom_onset"]').waitFor(WAIT);
  await shot(qc, 'emergency-qc.png');

  // The chest-pain centre's figures on the dashboard: one door-to-balloon timed, within 90 min.
  await cardio.goto(`${env('YILIAN_URL')}/#/dashboard`);
  const d2b = cardio.locator(
    'table.emergency-quality tr[data-centre="chest_pain"][data-interval="door_to_balloon"]',
  );
  await d2b.waitFor(WAIT);
  const figures = await d2b.textContent();
  if (!figures.includes('1 / 1') || !figures.includes('100.0% (1)')) fail(`D2B row "${figures}"`);
  // The same by month of opening (the hub's local time).
  await cardio.locator('select[name="emergency-by"]').selectOption('month');
  await cardio.waitForFunction(
    () =>
      /^\d{4}-\d{2}$/.test(
        document.querySelector(
          'table.emergency-quality tr[data-centre="chest_pain"][data-interval="door_to_balloon"]',
        )?.dataset.group ?? '',
      ),
    null,
    WAIT,
  );
  await shot(cardio, 'dashboard-emergency.png');
  return { caseId, newbornId };
});
