// End to end in headless Chromium: quality control reviews a month's closed emergency cases a
// page at a time: the newest 100 first, the older ones on request, none listed twice and no
// further page offered after the last.
//
// Environment: YILIAN_URL, YILIAN_SHOTS, YILIAN_PASSWORD, YILIAN_QC, YILIAN_OLDEST (the id of
// the oldest closed case). Prints one JSON line with the cases shown before and after.
import { env, fail, run, WAIT } from './lib.mjs';

await run(async ({ context, shot, login }) => {
  const qc = await login(await context(), env('YILIAN_QC'));
  await qc.goto(`${env('YILIAN_URL')}/#/emergency/closed`);
  const cards = qc.locator('article.case.closed');
  await cards.nth(99).waitFor(WAIT);
  const first = await cards.count();
  const oldest = qc.locator(`article.case.closed[data-case="${env('YILIAN_OLDEST')}"]`);
  if ((await oldest.count()) !== 0) fail('the oldest case is on the first page');
  await qc.getByRole('button', { name: '更早的记录' }).click();
  await oldest.waitFor(WAIT);
  const ids = await cards.evaluateAll((els) => els.map((e) => e.getAttribute('data-case')));
  if (new Set(ids).size !== ids.length) fail('a case is listed twice');
  if ((await qc.locator('button.older').count()) !== 0) fail('an older page after the last');
  await oldest.scrollIntoViewIfNeeded();
  await shot(qc, 'emergency-older.png');
  return { first, all: ids.length };
});
