// End to end in headless Chromium against a running `yilian serve` holding one routed CT study
// of a township clinic: the radiologist logs in, claims the task with one key, sees the image
// (pixels checked against the values the test expects), signs a final report; the township
// doctor's open screen shows it arrive and reads it; the UI switches to English.
//
// Environment: YILIAN_URL, YILIAN_SHOTS (screenshot directory), YILIAN_READER,
// YILIAN_DOCTOR, YILIAN_PASSWORD, YILIAN_EXPECT (JSON: {"columns", "rows", "window",
// "points": [{"x", "y", "value"}]}, image pixels and the grey value expected there).
// Prints one JSON line with what was done; exits non-zero with the reason on any failure.
import { env, fail, run, WAIT } from './lib.mjs';

const expect = JSON.parse(env('YILIAN_EXPECT'));

await run(async ({ context, shot, login }) => {
  const readerCtx = await context();
  const doctorCtx = await context();

  // A wrong password is refused with a message, not a crash.
  {
    const page = await readerCtx.newPage();
    await page.goto(env('YILIAN_URL'));
    await page.getByLabel('用户名').fill(env('YILIAN_READER'));
    await page.getByLabel('密码').fill('not-the-password');
    await page.getByRole('button', { name: '登录' }).click();
    await page.getByRole('alert').filter({ hasText: '用户名或密码错误' }).waitFor(WAIT);
    await page.close();
  }

  const reader = await login(readerCtx, env('YILIAN_READER'), (p) => shot(p, 'login.png'));
  const doctor = await login(doctorCtx, env('YILIAN_DOCTOR'));

  // The worklist shows the task; N claims it and opens it.
  await reader.locator('table.tasks tr[data-task]').first().waitFor(WAIT);
  await shot(reader, 'worklist.png');
  const rows = await reader.locator('table.tasks tr[data-task]').count();
  await reader.keyboard.press('n');
  await reader.waitForURL(/#\/read\/\d+$/, WAIT);
  const taskId = Number(reader.url().split('/').pop());

  // The township doctor's screen lists it in progress.
  await doctor.locator(`tr[data-task="${taskId}"]`).first().waitFor(WAIT);

  // The image, in the lung window (key 4), pixel-checked.
  const canvas = reader.locator('canvas.image');
  await reader.locator('canvas.image[data-state="ready"]').waitFor(WAIT);
  await reader.keyboard.press('4');
  await reader
    .locator(`canvas.image[data-state="ready"][data-window="${expect.window}"]`)
    .waitFor(WAIT);
  const samples = await canvas.evaluate((c, e) => {
    const ctx = c.getContext('2d');
    const s = Math.min(c.width / e.columns, c.height / e.rows);
    const ox = c.width / 2 - (e.columns * s) / 2;
    const oy = c.height / 2 - (e.rows * s) / 2;
    return e.points.map((p) => {
      const x = Math.floor(ox + (p.x + 0.5) * s);
      const y = Math.floor(oy + (p.y + 0.5) * s);
      const [r, g, b] = ctx.getImageData(x, y, 1, 1).data;
      return { ...p, r, g, b };
    });
  }, expect);
  for (const p of samples) {
    if (Math.abs(p.r - p.value) > 10 || p.r !== p.g || p.g !== p.b) {
      fail(`pixel (${p.x},${p.y}): shown ${p.r},${p.g},${p.b}, expected grey ${p.value}`);
    }
  }
  await shot(reader, 'viewer.png');

  // Last year's study of the patient beside today's, with its report.
  await reader.locator('select[name="prior"]').selectOption({ index: 1 });
  await reader.locator('.prior canvas.image[data-state="ready"]').waitFor(WAIT);
  await reader.locator('.prior-impression', { hasText: 'Prior impression.' }).waitFor(WAIT);
  await shot(reader, 'viewer-prior.png');
  await reader.locator('select[name="prior"]').selectOption('');
  await reader.locator('canvas.image').first().focus();

  // Frame scrolling: the next frame on ArrowDown.
  await reader.keyboard.press('ArrowDown');
  await reader.locator('canvas.image[data-state="ready"][data-frame="2"]').waitFor(WAIT);

  // A length measured on frame 2, in mm from the pixel spacing: kept with the study, so it is
  // there again after a reload, and opens its frame from the list.
  await reader.getByRole('button', { name: '测距', exact: true }).click();
  const box = await canvas.boundingBox();
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  await reader.mouse.move(cx - 120, cy - 40);
  await reader.mouse.down();
  await reader.mouse.move(cx, cy, { steps: 4 });
  await reader.mouse.move(cx + 120, cy + 40, { steps: 4 });
  await reader.mouse.up();
  const measured = reader.locator('.measurements li', { hasText: 'mm' });
  await measured.waitFor(WAIT);
  await shot(reader, 'viewer-measurement.png');
  await reader.reload();
  await reader.locator('canvas.image[data-state="ready"][data-frame="1"]').waitFor(WAIT);
  const kept = (await measured.textContent()).trim();
  if (!kept.includes('帧 2')) fail(`the kept measurement reads ${kept}`);
  await measured.locator('button.link').click();
  await reader.locator('canvas.image[data-state="ready"][data-frame="2"]').waitFor(WAIT);

  // The report, with the measurement inserted into the findings, signed final.
  const impression = `E2E impression ${Date.now()}`;
  await reader.locator('textarea[name="findings"]').fill('E2E: 双肺纹理清晰，未见实变。');
  await reader.getByRole('button', { name: '插入我的测量' }).click();
  const findingsBox = reader.locator('textarea[name="findings"]');
  await reader.waitForFunction(
    () => document.querySelector('textarea[name="findings"]')?.value.includes('测量：长度'),
    null,
    WAIT,
  );
  const findings = await findingsBox.inputValue();
  await reader.locator('textarea[name="impression"]').fill(impression);
  await reader.locator('input[name="critical"]').check();
  await reader.getByRole('button', { name: /签发最终报告/ }).click();
  await reader.locator('.task-bar .status', { hasText: '最终报告' }).waitFor(WAIT);
  await shot(reader, 'report.png');

  // The dashboard counts it, by institution, and exports it as CSV.
  await reader.goto(`${env('YILIAN_URL')}/#/dashboard`);
  await reader.locator('table.stats tr[data-group="ta"]').waitFor(WAIT);
  const count = await reader.locator('table.stats tr[data-group="ta"] td').nth(1).textContent();
  if (count !== '2') fail(`dashboard count for ta: ${count}`);
  await shot(reader, 'dashboard.png');
  const [download] = await Promise.all([
    reader.waitForEvent('download', WAIT),
    reader.getByRole('button', { name: /CSV: 报告周转时间/ }).click(),
  ]);
  const csv = await (async () => {
    const chunks = [];
    for await (const c of await download.createReadStream()) chunks.push(c);
    return Buffer.concat(chunks).toString();
  })();
  if (!csv.startsWith('institution,count,') || !csv.includes('\nta,2,')) fail(`CSV: ${csv}`);

  // It arrives on the township doctor's screen without a reload, and reads there.
  await doctor.locator(`.final-list tr[data-task="${taskId}"][data-status="final"]`).waitFor(WAIT);
  await shot(doctor, 'township.png');
  await doctor.locator(`.final-list tr[data-task="${taskId}"] a`).click();
  await doctor.locator('.final-report .impression', { hasText: impression }).waitFor(WAIT);
  // The radiologist's measurement is on the doctor's viewer too, with its author.
  await doctor.locator('.measurements li', { hasText: 'dr-chen' }).waitFor(WAIT);
  // It carries a critical finding: the doctor acknowledges it (once, for the clinic).
  const alert = doctor.locator('.critical-results li', { hasText: impression });
  await alert.waitFor(WAIT);
  await shot(doctor, 'township-report.png');
  await alert.getByRole('button', { name: '确认已知' }).click();
  await alert.waitFor({ state: 'detached', ...WAIT });

  // English on request.
  await doctor.getByRole('button', { name: 'English' }).click();
  await doctor.getByRole('heading', { name: /^Report/ }).waitFor(WAIT);
  await shot(doctor, 'township-report-en.png');

  return { taskId, rows, impression, findings, samples, csv, measurement: kept };
});
