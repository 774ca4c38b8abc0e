// End to end in headless Chromium: the lead's doctor looks up a township patient's record. The
// lead's own system gave the same number to another patient: the doctor is asked which one is
// meant and chooses township A's. The timeline shows, newest first, township A's chest-pain
// case (its first medical contact; open, so it links to the lead's emergency board), an earlier
// stroke case, closed (it opens for review, read-only), and a consult
// about the patient (its room is not this doctor's), today's ECG (opened from there), the two
// laboratory panels and the CT read at the lead (its report and recognition; its images are not
// the cardiologist's to open). Haemoglobin, sent twice by the township laboratory, shows its
// trend and is marked recognised — no need to repeat; the doctor takes it instead of ordering
// the test again, and the consortium dashboard counts the repeat avoided for the lead hospital.
//
// Environment: YILIAN_URL, YILIAN_SHOTS, YILIAN_PASSWORD, YILIAN_DOCTOR, YILIAN_PATIENT.
// Prints one JSON line with the result taken.
import { env, fail, run, WAIT } from './lib.mjs';

await run(async ({ context, shot, login }) => {
  const page = await login(await context(), env('YILIAN_DOCTOR'));
  await page.goto(`${env('YILIAN_URL')}/#/lab`);
  await page.locator('form.lab-search input[name="patientId"]').fill(env('YILIAN_PATIENT'));
  await page.locator('form.lab-search button[type="submit"]').click();
  const choices = page.locator('.patient-choice a');
  await choices.nth(1).waitFor(WAIT);
  if ((await choices.count()) !== 2) fail(`${await choices.count()} patients to choose from`);
  const lead = await page.locator('.patient-choice a[data-institution="lead"]').textContent();
  if (!lead.includes('Zhao Gang')) fail(`the lead's patient "${lead}"`);
  await shot(page, 'lab-choice.png');
  await page.locator('.patient-choice a[data-institution="ta"]').click();
  const entries = page.locator('.timeline li.entry');
  const entry = (kind) => page.locator(`.timeline li.entry[data-kind="${kind}"]`).first();
  await entries.nth(4).waitFor(WAIT);
  const kinds = await entries.evaluateAll((es) => es.map((e) => e.dataset.kind));
  const examinations = kinds
    .filter((k) => k !== 'consult' && k !== 'emergency' && k !== 'referral')
    .join(',');
  if (examinations !== 'ecg,lab,lab,imaging') fail(`timeline kinds ${kinds}`);
  // The record is longer than listed: the doctor is told which kind was cut.
  const bounded = await page.locator('p.notice.bounded[data-bounded="referrals"]').textContent();
  if (!bounded.includes('转诊（最近 100 次）')) fail(`the long record's notice "${bounded}"`);
  // Township A's consult about the patient: its question and status; its room is for those
  // who take part, not for this doctor.
  const consult = entry('consult');
  const question = await consult.locator('.question').textContent();
  if (question !== '夜间心悸，是否需要动态心电图？') fail(`consult question "${question}"`);
  if ((await consult.locator('.status').textContent()) !== '待接受') fail('consult status');
  if ((await consult.locator('a.open').count()) !== 0) fail('consult room offered');
  // Township A's chest-pain case: why it was opened, its time point, and the emergency board.
  const emergency = page.locator(
    '.timeline li.entry[data-kind="emergency"]:has(.read[data-status="open"])',
  );
  if ((await emergency.locator('.question').textContent()) !== '胸痛两小时') fail('case reason');
  const contact = await emergency.locator('li[data-point="first_medical_contact"]').textContent();
  if (!contact.startsWith('首次医疗接触')) fail(`case time point "${contact}"`);
  if ((await emergency.locator('.status').textContent()) !== '救治中') fail('case status');
  if ((await emergency.locator('a.open[href="#/emergency"]').count()) !== 1)
    fail('the case is not linked to the emergency board');
  // The newest panel: both results of the order, the low haemoglobin flagged.
  const panel = entry('lab');
  if ((await panel.locator('.panel-results li').count()) !== 2) fail('newest panel results');
  if ((await panel.locator('li.abnormal[data-code="718-7"] .flag').textContent()) !== 'L')
    fail('haemoglobin flag in the panel');
  // The CT: its final report and recognition, read at the lead; not shared for opening.
  const ct = entry('imaging');
  const impression = await ct.locator('.read[data-status="final"] .impression').textContent();
  if (impression !== 'No acute finding.') fail(`CT impression "${impression}"`);
  if ((await ct.locator('.badge.recognised').count()) !== 1) fail('CT report not recognised');
  if ((await ct.locator('a.open').count()) !== 0) fail('CT images offered to open');
  // Only the ECGs, then all again.
  await page.locator('.timeline .filters button[data-kind="ecg"]').click();
  await page.waitForFunction(() => document.querySelectorAll('.timeline li.entry').length === 1);
  await page.locator('.timeline .filters button[data-kind="all"]').click();
  await entries.nth(4).waitFor(WAIT);
  await shot(page, 'lab-timeline.png');
  // The ECG opens with its reading; back returns to the timeline.
  await entry('ecg').locator('a.open').click();
  await page.locator('.task-bar', { hasText: 'ECG' }).waitFor(WAIT);
  await page.locator('.task-bar a', { hasText: '返回' }).click();
  await entries.nth(4).waitFor(WAIT);
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
  // The patient's earlier stroke case, closed: the record opens its review, read-only.
  const stroke = page.locator(
    '.timeline li.entry[data-kind="emergency"]:has(.read[data-status="closed"])',
  );
  if ((await stroke.locator('.status').textContent()) !== '已结束') fail('stroke case status');
  await stroke.locator('a.open', { hasText: '病例回顾' }).click();
  const review = page.locator('.emergency.review article.case[data-status="closed"]');
  await review.waitFor(WAIT);
  if (!(await review.locator('.reason').textContent()).includes('言语不清一小时'))
    fail('the review is not the stroke case');
  if ((await review.locator('.closed-at').count()) !== 1) fail('the review has no closing time');
  if ((await review.locator('button:not([disabled])').count()) !== 0)
    fail('the closed case offers something to record');
  await shot(page, 'emergency-review.png');
  // Back to the patient's record from the review.
  await page.locator('.emergency.review a.lab-link').click();
  await page.locator('.timeline li.entry[data-kind="emergency"]').nth(1).waitFor(WAIT);

  await page.goto(`${env('YILIAN_URL')}/#/dashboard`);
  const chart = page.locator('figure.chart', { hasText: '互认避免的重复检查' });
  await chart.locator('svg text', { hasText: 'lead' }).waitFor(WAIT);
  await shot(page, 'lab-dashboard.png');
  return { taken };
});
