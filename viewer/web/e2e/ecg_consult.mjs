// End to end in headless Chromium: the lead's cardiologist reads a township STEMI ECG on the
// 12-lead grid (drawn and measured with the caliper); the township doctor asks a consult with
// a reported CT attached, the cardiologist takes it, both chat in the room (two browser
// contexts), a reload brings the history back once, and the signed opinion reaches the doctor.
//
// Environment: YILIAN_URL, YILIAN_SHOTS, YILIAN_PASSWORD, YILIAN_CARDIOLOGIST, YILIAN_DOCTOR,
// YILIAN_ECG_HR (the heart rate the hub measured). Prints one JSON line with what was done.
import { env, fail, run, WAIT } from './lib.mjs';

await run(async ({ context, shot, login }) => {
  const cardio = await login(await context(), env('YILIAN_CARDIOLOGIST'));
  const doctor = await login(await context(), env('YILIAN_DOCTOR'));

  // The STEMI ECG stands out on the worklist.
  const row = cardio.locator('table.tasks tr[data-task]', { has: cardio.locator('.badge.stemi') });
  await row.first().waitFor(WAIT);
  await shot(cardio, 'ecg-worklist.png');
  await row.first().locator('a').click();
  await cardio.waitForURL(/#\/read\/\d+$/, WAIT);
  const ecgTaskId = Number(cardio.url().split('/').pop());

  // The grid and the traces are drawn; the hub's measurements and flags are shown.
  const canvas = cardio.locator('canvas.ecg[data-state="ready"]');
  await canvas.waitFor(WAIT);
  const drawn = await canvas.evaluate((c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let trace = 0;
    let grid = 0;
    for (let i = 0; i < d.length; i += 4) {
      if (d[i] < 90 && d[i + 1] < 90 && d[i + 2] < 90) ++trace;
      else if (d[i] > 200 && d[i + 1] < 225 && d[i + 1] > 140 && d[i + 2] > 140) ++grid;
    }
    return { trace, grid, width: c.width, height: c.height, pxPerMm: Number(c.dataset.pxPerMm) };
  });
  // 25 mm/s for 10 s plus the calibration margin: 255 mm wide, four 25 mm rows.
  if (Math.abs(drawn.width / drawn.pxPerMm - 255) > 1)
    fail(`page width ${drawn.width / drawn.pxPerMm} mm`);
  if (Math.abs(drawn.height / drawn.pxPerMm - 100) > 1)
    fail(`page height ${drawn.height / drawn.pxPerMm} mm`);
  if (drawn.trace < 2000) fail(`only ${drawn.trace} trace pixels`);
  if (drawn.grid < 20000) fail(`only ${drawn.grid} grid pixels`);
  const hr = await cardio.locator('.ecg-measurements .hr').textContent();
  if (!hr.startsWith(`${env('YILIAN_ECG_HR')} `)) fail(`heart rate shown "${hr}"`);
  await cardio.locator('li.flag[data-code="suspected_stemi"]').waitFor(WAIT);

  // The caliper: 25 mm across is one second, 60 a minute.
  const box = await canvas.boundingBox();
  const mm = drawn.pxPerMm; // device pixel ratio 1
  await cardio.mouse.move(box.x + 40 * mm, box.y + 20 * mm);
  await cardio.mouse.down();
  await cardio.mouse.move(box.x + 65 * mm, box.y + 30 * mm, { steps: 5 });
  await cardio.mouse.up();
  const caliper = await cardio.locator('.ecg-viewer .caliper').textContent();
  if (!/ 60 \/min/.test(caliper) || !/Δ (0\.99|1\.0\d) mV/.test(caliper))
    fail(`caliper "${caliper}"`);
  await shot(cardio, 'ecg.png');
  // Calibration: a 50 mm bar that a ruler finds 40 mm long makes everything 1.25 times larger.
  await cardio.getByRole('button', { name: '屏幕校准' }).click();
  await cardio.locator('.calibration input').fill('40');
  await cardio.getByRole('button', { name: '应用' }).click();
  await cardio.waitForFunction(
    (before) =>
      Math.abs(Number(document.querySelector('canvas.ecg').dataset.pxPerMm) / before - 1.25) < 0.01,
    drawn.pxPerMm,
    WAIT,
  );

  // The reader confirms the drafted interpretation and signs it.
  await cardio
    .locator('fieldset.ecg-statements label[data-code="suspected_stemi"] input:checked')
    .waitFor(WAIT);
  // One the analysis did not propose, from the catalogue.
  await cardio.locator('select[name="add-statement"]').selectOption('st_t_abnormality');
  await cardio
    .locator('fieldset.ecg-statements label[data-code="st_t_abnormality"] input:checked')
    .waitFor(WAIT);
  await cardio.locator('button[name="fill-statements"]').click();
  const signedImpression = await cardio.locator('textarea[name="impression"]').inputValue();
  if (
    !signedImpression.includes('疑似急性ST段抬高型心肌梗死') ||
    !signedImpression.endsWith('ST-T改变')
  )
    fail(`impression "${signedImpression}"`);
  await cardio.locator('input[name="critical"]').uncheck();
  await cardio.getByRole('button', { name: /签发最终报告/ }).click();
  await cardio.locator('.task-bar .status', { hasText: '最终报告' }).waitFor(WAIT);

  // The suspected STEMI opened a chest-pain case: on the board, one tap records the door time
  // and door-to-balloon starts running.
  await cardio.goto(`${env('YILIAN_URL')}/#/emergency`);
  const card = cardio.locator('article.case.chest_pain');
  await card.waitFor(WAIT);
  const caseId = Number(await card.getAttribute('data-case'));
  await card.locator('button[data-point="door"]').click();
  await card.locator('button.point.done[data-point="door"]').waitFor(WAIT);
  await card
    .locator('li.clock[data-interval="door_to_balloon"][data-status="running"]')
    .waitFor(WAIT);
  await shot(cardio, 'emergency.png');

  // The township doctor asks cardiology, attaching the reported CT.
  await doctor.goto(`${env('YILIAN_URL')}/#/consults`);
  await doctor.getByRole('button', { name: '申请会诊' }).click();
  const form = doctor.locator('form.new-consult');
  await form.locator('input[name="patientId"]').fill('TA-E2E-9');
  await form.locator('input[name="patientName"]').fill('Zhao^Gang');
  const question = `胸痛2小时，心电图ST段抬高？ ${Date.now()}`;
  await form.locator('textarea[name="question"]').fill(question);
  await form.locator('select[name="urgency"]').selectOption('urgent');
  await form.locator('select[name="specialty"]').selectOption('cardiology');
  await form.locator('label.check', { hasText: '· CT ·' }).locator('input').first().check();
  await shot(doctor, 'consult-request.png');
  await form.getByRole('button', { name: '发送' }).click();
  await doctor.waitForURL(/#\/consult\/\d+$/, WAIT);
  const consultId = Number(doctor.url().split('/').pop());
  await doctor.locator('.consult-room .status[data-status="requested"]').waitFor(WAIT);

  // The cardiologist finds the request and takes it.
  await cardio.goto(`${env('YILIAN_URL')}/#/consults`);
  const request = cardio.locator(`tr[data-consult="${consultId}"]`);
  await request.waitFor(WAIT);
  await request.getByRole('button', { name: '接受' }).click();
  await cardio.waitForURL(new RegExp(`#/consult/${consultId}$`), WAIT);

  // The doctor's room learns it live; both chat.
  await doctor.locator('.consult-room .status[data-status="accepted"]').waitFor(WAIT);
  const hello = '请帮忙看一下这位患者的心电图和CT';
  const reply = 'Inferior ST elevation: activate the cath lab, start the transfer.';
  await doctor.locator('input[name="chat"]').fill(hello);
  await doctor.locator('input[name="chat"]').press('Enter');
  await cardio.locator('.chat .messages li', { hasText: hello }).waitFor(WAIT);
  await cardio.locator('input[name="chat"]').fill(reply);
  await cardio.getByRole('button', { name: '发送' }).click();
  await doctor.locator('.chat .messages li', { hasText: reply }).waitFor(WAIT);
  await doctor
    .locator(`.presence li[data-user="${env('YILIAN_CARDIOLOGIST')}"].presence-online`)
    .waitFor(WAIT);
  // The shared view shows the attached CT. The cardiologist takes the lead and goes to frame 2
  // in the lung window: the doctor's viewer follows.
  await cardio.locator('.shared-view canvas.image[data-state="ready"]').waitFor(WAIT);
  await cardio.getByRole('button', { name: '由我主讲' }).click();
  await doctor
    .locator('.shared-view .tools', { hasText: `主讲: ${env('YILIAN_CARDIOLOGIST')}` })
    .waitFor(WAIT);
  await cardio.locator('.shared-view canvas.image').focus();
  await cardio.keyboard.press('4');
  await cardio.keyboard.press('ArrowDown');
  await doctor
    .locator('.shared-view canvas.image[data-state="ready"][data-window="lung"][data-frame="2"]')
    .waitFor(WAIT);

  // A video call between the two browsers (Chromium's fake camera and microphone): offer,
  // answer and ICE through the hub, media browser to browser; then hung up.
  await cardio.getByRole('button', { name: `视频通话 ${env('YILIAN_DOCTOR')}` }).click();
  await cardio.locator('.call video.remote').waitFor(WAIT);
  await doctor.locator('.call video.remote').waitFor(WAIT);
  await cardio.getByRole('button', { name: '挂断' }).click();
  await doctor
    .getByRole('button', { name: `视频通话 ${env('YILIAN_CARDIOLOGIST')}` })
    .waitFor(WAIT);
  await shot(doctor, 'consult-doctor.png');
  await shot(cardio, 'consult-specialist.png');

  // After a reload the history is there, each message once.
  await doctor.reload();
  await doctor.locator('.chat .messages li', { hasText: reply }).waitFor(WAIT);
  const count = await doctor.locator('.chat .messages li').count();
  if (count !== 2) fail(`${count} messages after the reload, expected 2`);

  // The signed opinion reaches the doctor.
  const opinion = 'Inferior STEMI. Transfer for primary PCI; aspirin and ticagrelor loading now.';
  await cardio.locator('textarea[name="opinion"]').fill(opinion);
  await cardio.getByRole('button', { name: '签署会诊意见' }).click();
  await doctor.locator('.opinion', { hasText: opinion }).waitFor(WAIT);
  await shot(doctor, 'consult-opinion.png');

  // The signed ECG reaches the doctor as the hub's 12-lead page with the reader and the time.
  await doctor.goto(`${env('YILIAN_URL')}/#/report/${ecgTaskId}`);
  await doctor.locator('.signed-ecg img').waitFor(WAIT);
  await doctor.waitForFunction(
    () => {
      const img = document.querySelector('.signed-ecg img');
      return img && img.complete && img.naturalWidth > 1000;
    },
    null,
    WAIT,
  );
  await shot(doctor, 'township-ecg-report.png');
  // And as a PDF to print at true size.
  const [pdf] = await Promise.all([
    doctor.waitForEvent('download', WAIT),
    doctor.locator('button[name="download-pdf"]').click(),
  ]);
  const pdfHead = await (async () => {
    const chunks = [];
    for await (const c of await pdf.createReadStream()) chunks.push(c);
    return Buffer.concat(chunks).subarray(0, 8).toString();
  })();
  if (!pdf.suggestedFilename().endsWith('.pdf') || pdfHead !== '%PDF-1.4')
    fail(`PDF download ${pdf.suggestedFilename()} "${pdfHead}"`);

  // The doctor sends a study from the township screen, urgent, with the clinical question.
  await doctor.goto(`${env('YILIAN_URL')}/#/township`);
  const send = doctor.locator('form.send-study');
  await send.locator('input[type="file"]').setInputFiles(env('YILIAN_UPLOAD').split(','));
  const clinicalQuestion = `外伤后胸痛，排除气胸 ${Date.now()}`;
  await send.locator('input[name="question"]').fill(clinicalQuestion);
  await send.locator('select[name="urgency"]').selectOption('urgent');
  await send.getByRole('button', { name: '发送' }).click();
  await send.locator('.message', { hasText: '已发送' }).waitFor(WAIT);
  const sent = await send.locator('.message').textContent();
  if (!sent.endsWith(': 1 / 1')) fail(`send: "${sent}"`);
  await doctor.locator('table.tasks tr[data-task] .badge.urgent').first().waitFor(WAIT);
  await shot(doctor, 'township-send.png');

  // And refers the patient up; the lead's cardiologist accepts on the referrals screen.
  await doctor.goto(`${env('YILIAN_URL')}/#/referrals`);
  await doctor.getByRole('button', { name: '向上转诊' }).click();
  const refer = doctor.locator('form[aria-label="向上转诊"]');
  await refer.locator('input[name="patientId"]').fill('TA-E2E-9');
  const referral = `STEMI for primary PCI ${Date.now()}`;
  await refer.locator('textarea[name="reason"]').fill(referral);
  await refer.locator('select[name="urgency"]').selectOption('urgent');
  // The receiving hospital defaults to the clinic's parent, the lead hospital.
  await refer
    .locator('select[name="to"]')
    .locator('option[value="lead"]')
    .waitFor({ state: 'attached', ...WAIT });
  const to = await refer.locator('select[name="to"]').inputValue();
  if (to !== 'lead') fail(`referral goes to "${to}" by default`);
  await refer.getByRole('button', { name: '发送' }).click();
  await doctor
    .locator('tr[data-referral][data-status="requested"]', { hasText: referral })
    .waitFor(WAIT);
  await cardio.goto(`${env('YILIAN_URL')}/#/referrals`);
  const incoming = cardio.locator('tr[data-referral]', { hasText: referral });
  await incoming.getByRole('button', { name: '接收' }).click();
  await cardio
    .locator('tr[data-referral][data-status="accepted"]', { hasText: referral })
    .waitFor(WAIT);
  await doctor
    .locator('tr[data-referral][data-status="accepted"]', { hasText: referral })
    .waitFor(WAIT);
  await shot(doctor, 'referrals.png');
  // The cardiologist's notifications: the consult request among them; all acknowledged at once.
  await cardio.locator('header .notifications button.pending').click();
  await cardio.locator('.notification-list li[data-kind="consult_request"]').waitFor(WAIT);
  await shot(cardio, 'notifications.png');
  await cardio.getByRole('button', { name: '全部确认' }).click();
  await cardio.locator('header .notifications button.pending[data-pending="0"]').waitFor(WAIT);
  await cardio.locator('header .notifications button.pending').click();

  // The dashboard counts it among the period's up-referrals.
  await cardio.goto(`${env('YILIAN_URL')}/#/dashboard`);
  await cardio.locator('strong[data-referrals-up="1"]').waitFor(WAIT);

  return {
    clinicalQuestion,
    referral,
    caseId,
    ecgTaskId,
    consultId,
    question,
    hello,
    reply,
    opinion,
    drawn,
    caliper,
  };
});
