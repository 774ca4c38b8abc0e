// End to end in headless Chromium against a hub on its first start: the one-time administrator
// signs in and must choose a password; then, from the administration screens only, creates a
// township clinic with an AE title and character set, a township doctor, a radiologist and a
// reading service,
// issues the clinic's edge node a credential and revokes an old one, changes a queue target,
// adds a result-recognition rule and a laboratory qualification; the clinic's CT (storescu from
// the new AE title) lands on the
// radiologist's worklist; the new doctor's first sign-in asks for their own password; an audit
// search finds each change and the chain verifies.
//
// Environment: YILIAN_URL, YILIAN_SHOTS, YILIAN_ONCE (the one-time password printed at the
// first start), YILIAN_ADMIN_PASSWORD (the one to choose), YILIAN_DICOM_PORT, YILIAN_STUDY (a
// CT file to send).
// Prints one JSON line with what was done.
import { execFileSync } from 'node:child_process';
import { env, fail, run, WAIT } from './lib.mjs';

async function signIn(ctx, username, password) {
  const page = await ctx.newPage();
  page.on('dialog', (d) => d.accept());
  await page.goto(env('YILIAN_URL'));
  await page.getByLabel('用户名').fill(username);
  await page.getByLabel('密码', { exact: true }).fill(password);
  await page.getByRole('button', { name: '登录' }).click();
  return page;
}

// Opens an administration tab and waits until its lists have loaded, so that nothing below them
// moves while it is clicked.
async function openTab(page, label, tab) {
  await page.getByRole('link', { name: label, exact: true }).click();
  await page.locator(`section.admin[data-tab="${tab}"] .admin-body[data-loaded]`).waitFor(WAIT);
}

async function choosePassword(page, current, next) {
  await page.getByRole('heading', { name: '修改密码' }).waitFor(WAIT);
  await page.getByLabel('当前密码').fill(current);
  await page.getByLabel('新密码', { exact: true }).fill(next);
  await page.getByLabel('再次输入新密码').fill(next);
  await page.getByRole('button', { name: '保存' }).click();
}

await run(async ({ context, shot }) => {
  const adminCtx = await context();
  const admin = await signIn(adminCtx, 'admin', env('YILIAN_ONCE'));
  // The one-time password opens nothing but the password change.
  await admin.getByText('这是临时密码').waitFor(WAIT);
  await shot(admin, 'admin-first-login.png');
  await choosePassword(admin, env('YILIAN_ONCE'), env('YILIAN_ADMIN_PASSWORD'));
  await admin.waitForURL(/#\/admin\/system$/, WAIT);
  await admin.locator('.system[data-loaded] [data-figure="stored"]').waitFor(WAIT);
  await shot(admin, 'admin-system.png');

  // A township clinic with its CT's AE title; its modalities send GB18030 without saying so.
  await admin.getByRole('link', { name: '机构', exact: true }).click();
  await admin.locator('tr[data-institution="lead"]').waitFor(WAIT);
  await admin.getByRole('button', { name: '新增机构' }).click();
  const inst = admin.locator('form.admin-form', { has: admin.locator('input[name="code"]') });
  await inst.locator('input[name="code"]').fill('tc');
  await inst.locator('input[name="name"]').fill('丙镇卫生院');
  await inst.locator('select[name="level"]').selectOption('township');
  await inst.locator('select[name="parent"]').selectOption('lead');
  await inst.locator('input[name="aeTitles"]').fill('TC_CT');
  await inst.locator('select[name="charset"]').selectOption('GB18030');
  await inst.getByRole('button', { name: '保存' }).click();
  const row = admin.locator('tr[data-institution="tc"]');
  await row.waitFor(WAIT);
  if (!(await row.textContent()).includes('TC_CT')) fail('the new institution has no AE title');
  await shot(admin, 'admin-institutions.png');

  // A township doctor of the clinic and a radiologist of the lead hospital, each with a
  // temporary password.
  await openTab(admin, '用户', 'users');
  for (const [name, display, institution, role, password] of [
    ['dr-sun', '孙医生', 'tc', 'township_doctor', 'first-password-1'],
    ['dr-read', '钱医生', 'lead', 'radiologist', 'first-password-2'],
  ]) {
    await admin.getByRole('button', { name: '新增用户' }).click();
    const user = admin.locator('form.admin-form', {
      has: admin.locator('input[name="new-username"]'),
    });
    await user.locator('input[name="new-username"]').fill(name);
    await user.locator('input[name="display-name"]').fill(display);
    await user.locator('select[name="institution"]').selectOption(institution);
    await user.locator('input[name="initial-password"]').fill(password);
    await user.locator(`input[name="role-${role}"]`).check();
    await user.getByRole('button', { name: '保存' }).click();
    await admin.locator(`tr[data-user="${name}"]`).waitFor(WAIT);
  }
  await shot(admin, 'admin-users.png');

  // The lead hospital reads the clinic's imaging.
  await openTab(admin, '阅片服务', 'services');
  const svc = admin.locator('form[aria-label="新增阅片服务"]');
  await svc.locator('select[name="provider"]').selectOption('lead');
  await svc.locator('select[name="client"]').selectOption('tc');
  await svc.locator('select[name="kind"]').selectOption('imaging');
  await svc.getByRole('button', { name: '添加' }).click();
  await admin.locator('tr[data-service="lead:tc:imaging"]').waitFor(WAIT);
  await shot(admin, 'admin-services.png');

  // The clinic's edge node gets its credential, shown once; an old node's is revoked.
  await openTab(admin, '乡镇边缘节点', 'edges');
  const edgeForm = admin.locator('form[aria-label="签发边缘节点凭据"]');
  const edgeTokens = {};
  for (const name of ['tc-edge', 'tc-old']) {
    await edgeForm.locator('input[name="edge-name"]').fill(name);
    await edgeForm.locator('select[name="edge-institution"]').selectOption('tc');
    await edgeForm.getByRole('button', { name: '添加' }).click();
    await admin.locator(`tr[data-edge="${name}"]`).waitFor(WAIT);
    const shown = admin.locator('[data-edge-token]');
    await admin.waitForFunction(
      (before) => {
        const el = document.querySelector('[data-edge-token]');
        return el && el.textContent && el.textContent !== before;
      },
      edgeTokens['tc-edge'] ?? '',
      WAIT,
    );
    edgeTokens[name] = await shown.textContent();
  }
  await admin.locator('tr[data-edge="tc-old"]').getByRole('button', { name: '吊销' }).click();
  await admin.locator('tr[data-edge="tc-old"]', { hasText: '已吊销' }).waitFor(WAIT);
  if (await admin.locator('[data-edge-token]').count()) fail('a credential stays on screen');
  await shot(admin, 'admin-edges.png');

  // A tighter STAT target, in effect at once, shown as changed here.
  await openTab(admin, '队列规则与时限', 'rules');
  const stat = admin.locator('tr[data-setting="sla_stat_minutes"]');
  await stat.locator('input').fill('25');
  await stat.getByRole('button', { name: '保存' }).click();
  await stat.locator('.source.screen').waitFor(WAIT);
  await shot(admin, 'admin-rules.png');

  // Result recognition: glucose from ISO 15189 laboratories recognised for 3 days, and the new
  // clinic's laboratory qualified as provincial; both shown as added here.
  await openTab(admin, '结果互认', 'recognition');
  const ruleForm = admin.locator('form.admin-form', {
    has: admin.locator('input[name="rule-key"]'),
  });
  await ruleForm.locator('input[name="rule-key"]').fill('2345-7');
  await ruleForm.locator('input[name="rule-qualifications"]').fill('iso15189');
  await ruleForm.locator('input[name="rule-days"]').fill('3');
  await ruleForm.getByRole('button', { name: '保存' }).click();
  await admin.locator('tr[data-rule="2345-7"] .source.added').waitFor(WAIT);
  const qualForm = admin.locator('form.admin-form', { has: admin.locator('input[name="holder"]') });
  await qualForm.locator('input[name="holder"]').fill('tc');
  await qualForm.locator('input[name="qualification"]').fill('provincial_eqa');
  await qualForm.getByRole('button', { name: '保存' }).click();
  await admin.locator('tr[data-holder="tc"] .source.added').waitFor(WAIT);
  await shot(admin, 'admin-recognition.png');

  // The clinic's CT, sent from its new AE title, is on the radiologist's worklist.
  execFileSync('storescu', [
    '-aet',
    'TC_CT',
    '-aec',
    'YILIAN',
    '127.0.0.1',
    env('YILIAN_DICOM_PORT'),
    env('YILIAN_STUDY'),
  ]);
  const readerCtx = await context();
  const reader = await signIn(readerCtx, 'dr-read', 'first-password-2');
  await choosePassword(reader, 'first-password-2', 'read-own-password-2');
  const task = reader.locator('table.tasks tr[data-task]', { hasText: 'tc' });
  await task.first().waitFor(WAIT);
  await shot(reader, 'admin-study-on-worklist.png');

  // The new doctor chooses their own password at the first sign-in, then sees the clinic's CT.
  const doctorCtx = await context();
  const doctor = await signIn(doctorCtx, 'dr-sun', 'first-password-1');
  await choosePassword(doctor, 'first-password-1', 'sun-own-password-1');
  await doctor.locator('tr[data-task]').first().waitFor(WAIT);

  // The audit trail: each change found by a search; the chain verifies.
  await admin.getByRole('link', { name: '审计日志', exact: true }).click();
  const found = {};
  for (const [prefix, action, object] of [
    ['institution.', 'institution.put', 'tc'],
    ['user.', 'user.create', 'dr-sun'],
    ['reading_service.', 'reading_service.add', 'tc'],
    ['setting.', 'setting.change', 'queue.sla_stat_minutes'],
    ['lab.', 'lab.recognition.rule.put', 'code:2345-7'],
  ]) {
    await admin.locator('select[name="action"]').selectOption(prefix);
    await admin.locator('input[name="object"]').fill(object);
    await admin.getByRole('button', { name: '查询' }).click();
    const hit = admin.locator(`tr[data-audit="${action}"][data-object="${object}"]`);
    await hit.first().waitFor(WAIT);
    found[prefix] = await hit.first().getAttribute('data-audit');
  }
  await admin.locator('select[name="action"]').selectOption('');
  await admin.locator('input[name="object"]').fill('');
  await admin.getByRole('button', { name: '查询' }).click();
  await admin.locator('tr[data-audit="auth.login"]').first().waitFor(WAIT);
  await admin.getByRole('button', { name: '校验审计链' }).click();
  await admin.locator('[data-chain="intact"]').waitFor(WAIT);
  await shot(admin, 'admin-audit.png');
  return { found, worklistRows: await task.count(), edgeToken: edgeTokens['tc-edge'] };
});
