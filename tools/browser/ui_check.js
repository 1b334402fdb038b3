// Real-browser checks of the embedded profiler UI (//examples/http_ui):
// Debian's /usr/bin/chromium driven by playwright-core (no browser
// download), against a running http_ui demo.
//
//   node tools/browser/ui_check.js URL SCREENSHOT_DIR [TOKEN_URL TOKEN]
//
// Prints "PASS name" / "FAIL name: why" per step and a last line
// "check-result: N passed, M failed". Exit status 1 when any step failed.
import fs from 'node:fs';
import path from 'node:path';
import { caseRunner, expect, launchChromium } from './harness.mjs';

const [baseUrl, shotDir, tokenUrl, token] = process.argv.slice(2);
if (!baseUrl || !shotDir) {
  console.error('usage: node ui_check.js URL SCREENSHOT_DIR [TOKEN_URL TOKEN]');
  process.exit(2);
}
fs.mkdirSync(shotDir, { recursive: true });
const cases = caseRunner();
const step = (name, fn) => cases.run(name, fn);
const context = await launchChromium({ width: 1280, height: 860 });
const origin = new URL(baseUrl).origin;
const problems = [];
function watch(page, allowed = origin) {
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`console: ${m.text()} (${page.url()})`); });
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message} (${page.url()})`));
  page.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith(allowed) && !u.startsWith('data:') && !u.startsWith('blob:')) problems.push('network: ' + u);
  });
  page.on('dialog', (d) => d.accept());
}
function expectNoProblems(where) {
  const p = problems.splice(0);
  expect(p.length === 0, `${where}: ${p.join(' | ')}`);
}
const shot = (page, name) => page.screenshot({ path: path.join(shotDir, name + '.png'), fullPage: true });
const page = await context.newPage();
watch(page);

// Cells of the profile table (but the file names) that wrap onto a second
// line: a line box lower than the first by most of a line height (smaller
// inline text, such as the "few samples" note, only shifts a few pixels).
async function wrappedCells() {
  return page.$$eval('#profiles th, #profiles td:not(.files)', (cells) => cells.filter((cell) => {
    const range = document.createRange();
    range.selectNodeContents(cell);
    const tops = [...range.getClientRects()].map((r) => r.top);
    const line = parseFloat(getComputedStyle(cell).lineHeight) || 20;
    return tops.length > 1 && Math.max(...tops) - Math.min(...tops) > 0.75 * line;
  }).map((cell) => cell.textContent.trim()));
}

async function rows() {
  return page.$$eval('tr.profile', (trs) => trs.map((tr) => ({
    id: tr.dataset.id,
    saved: tr.classList.contains('saved'),
    diffPrevious: tr.querySelector('a.diff-previous') ? tr.querySelector('a.diff-previous').getAttribute('href') : '',
    samples: parseInt(tr.querySelector('td.samples').textContent, 10),
    warning: !!tr.querySelector('.warning'),
    html: tr.querySelector('a.open').getAttribute('href'),
    raw: tr.querySelector('a.raw').getAttribute('href'),
  })));
}

await step('open the UI under its CSP', async () => {
  const response = await page.goto(baseUrl);
  expect(response.status() === 200, 'status ' + response.status());
  const csp = response.headers()['content-security-policy'] || '';
  expect(csp.includes("script-src 'self'"), 'CSP header: ' + csp);
  expect(response.headers()['x-frame-options'] === 'DENY', 'no X-Frame-Options');
  await page.waitForSelector('#start-button');
  expect((await page.textContent('#start-button')).trim() === 'Start profiling', 'caption');
  await page.waitForTimeout(1200);  // let ui.js poll once
  expectNoProblems('index');
  await shot(page, '01-index');
});

await step('event dropdown lists only sampleable events', async () => {
  const options = await page.$$eval('#event option', (os) => os.map((o) => o.value));
  const status = await (await page.request.get(baseUrl + 'api/status')).json();
  expect(JSON.stringify(options) === JSON.stringify(status.events), `dropdown ${options} vs ${status.events}`);
  expect(options.includes('cpu') && options.includes('itimer'), 'cpu/itimer missing: ' + options);
  const pmu = fs.existsSync('/sys/bus/event_source/devices/cpu/events/cycles') ||
      fs.existsSync('/sys/bus/event_source/devices/cpu_core/events/cycles');
  if (!pmu) expect(!options.includes('cycles') && !options.includes('instructions'), 'hardware events listed without a PMU');
});

await step('start: state, elapsed and samples follow', async () => {
  await page.selectOption('#event', 'cpu');
  await page.fill('#interval', '5ms');
  await page.fill('#duration', '');
  await Promise.all([page.waitForNavigation(), page.click('#start-button')]);
  await page.waitForSelector('#stop-button', { state: 'visible' });
  // The one visible button says what it will do.
  expect((await page.textContent('#stop-button')).trim() === 'Stop profiling', 'button not "Stop profiling"');
  expect(!(await page.isVisible('#start-button')), 'the Start button is still visible while running');
  expect((await page.textContent('#state')).trim() === 'running', 'state not running');
  // The page polls once a second; on a loaded machine (chromium beside two
  // demo services) a poll can be late, so wait for the numbers to move,
  // within a bound, rather than reading them at a fixed time.
  const moved = await page.waitForFunction(
      () => parseFloat(document.getElementById('elapsed').textContent) >= 2 &&
          parseInt(document.getElementById('samples').textContent, 10) > 0,
      null, { timeout: 15000 }).then(() => true, () => false);
  const samples = parseInt(await page.textContent('#samples'), 10);
  const elapsed = await page.textContent('#elapsed');
  expect(moved, `elapsed and samples did not follow within 15 s: elapsed ${elapsed}, samples ${samples}`);
  await shot(page, '02-running');
});

let first;
await step('stop: the new profile is listed with its sample count', async () => {
  await Promise.all([page.waitForNavigation(), page.click('#stop-button')]);
  await page.waitForSelector('#start-button', { state: 'visible' });
  const list = await rows();
  expect(list.length === 1, 'rows: ' + list.length);
  first = list[0];
  expect(first.samples > 0, 'samples: ' + first.samples);
  expect(/^\/profiles\/\d+-cpu-flamegraph-\d{8}-\d{6}\.html$/.test(first.html), 'name: ' + first.html);
  expect(first.warning === (first.samples < 1000), 'low-sample warning does not match');
  // The row just saved is highlighted (and only after a stop).
  expect(page.url().endsWith('/?saved=' + first.id), 'url after stop: ' + page.url());
  expect(first.saved, 'the saved row is not highlighted');
  const background = await page.$eval('tr.profile.saved td', (td) => getComputedStyle(td).backgroundColor);
  expect(background !== 'rgba(0, 0, 0, 0)' && background !== 'transparent', 'highlight colour: ' + background);
  // Idle again: the state line shows the capture just taken, not zeros.
  expect(await page.isVisible('#last-capture'), 'no last capture shown');
  expect(parseInt(await page.textContent('#last-samples'), 10) === first.samples, 'last-capture samples');
  expectNoProblems('after stop');
  await shot(page, '03-stopped');
});

await step('a second capture stops itself after its duration', async () => {
  await page.selectOption('#event', 'itimer');
  await page.fill('#interval', '');
  await page.fill('#duration', '2');
  await Promise.all([page.waitForNavigation(), page.click('#start-button')]);
  // The running page shows the auto-stop; on a slow machine the 2 s capture
  // may already have ended (and ui.js reloaded) before it is looked at.
  await page.waitForFunction(() => {
    const note = document.querySelector('#auto-stop');
    return (note && note.textContent.trim() !== '') ||
           document.querySelectorAll('tr.profile').length === 2;
  }, null, { timeout: 15000 });
  // ui.js reloads the page when the capture ends by itself.
  await page.waitForFunction(() => document.querySelectorAll('tr.profile').length === 2, null, { timeout: 15000 });
  const list = await rows();
  expect(list[0].html.includes('-itimer-flamegraph-'), 'newest first: ' + list[0].html);
  expect(list[0].samples > 0, 'itimer samples: ' + list[0].samples);
  // After the auto-stop the page reads the capture's figures (it read
  // "idle, elapsed 0.0 s, 0 samples" before), and highlights its row.
  expect(await page.isVisible('#last-capture'), 'no last capture shown after the auto-stop');
  const lastSamples = parseInt(await page.textContent('#last-samples'), 10);
  expect(lastSamples === list[0].samples, `last capture ${lastSamples} samples, row ${list[0].samples}`);
  expect(list[0].saved && !list[1].saved, 'the auto-stopped row is not the highlighted one');
  // Profiles of different events are not paired by "diff with previous".
  expect(list[0].diffPrevious === '', 'itimer row diffs against cpu: ' + list[0].diffPrevious);
  await shot(page, '03b-auto-stopped');
});


await step('open a flame graph (its scripts run under the CSP)', async () => {
  const graph = await context.newPage();
  watch(graph);
  const response = await graph.goto(origin + first.html);
  expect(response.status() === 200, 'status ' + response.status());
  await graph.waitForFunction(() => window.fkReady === true, null, { timeout: 20000 });
  const text = await graph.evaluate(() => document.body.innerText);
  expect(text.length > 0, 'empty page');
  await graph.waitForTimeout(300);
  await shot(graph, '04-flame-graph');
  await graph.close();
  expectNoProblems('flame graph');
});

await step('raw toggle shows the collapsed .txt', async () => {
  expect(!(await page.isVisible('a.raw')), 'raw links visible before the toggle');
  await page.check('#raw-toggle');
  await page.waitForSelector('a.raw', { state: 'visible' });
  await shot(page, '05-raw-toggle');
  // With both file names in a row the table is at its widest: at 1280 px
  // the other columns must still not wrap ("page-/faults", "207.0/KiB").
  const wrapped = await wrappedCells();
  expect(wrapped.length === 0, 'wrapped cells: ' + wrapped.join(' | '));
  const response = await page.request.get(origin + first.raw);
  expect(response.status() === 200, 'raw status ' + response.status());
  expect((response.headers()['content-type'] || '').startsWith('text/plain'), 'raw type');
  const text = await response.text();
  const total = text.trim().split('\n').reduce((s, l) => s + parseInt(l.slice(l.lastIndexOf(' ') + 1), 10), 0);
  expect(total === first.samples, `raw total ${total} != listed ${first.samples}`);
});

await step('diff two profiles', async () => {
  // The first two captures sampled different events: the diff is refused,
  // saying why, instead of drawing a meaningless graph.
  const list = await rows();
  await page.selectOption('#diff-a', list[1].id);
  await page.selectOption('#diff-b', list[0].id);
  const [refused] = await Promise.all([page.waitForNavigation(), page.click('#diff-button')]);
  expect(refused && refused.status() === 409, 'different events: status ' + (refused && refused.status()));
  expect((await page.content()).includes('compare two profiles of the same event'),
      'different events: the reason is not shown');
  problems.splice(0);  // the 409 itself is logged as a console error
  // A third capture of the same event as the newest: the two itimer
  // profiles diff, from the form and from "diff with previous".
  const started = await page.request.post(baseUrl + 'api/start', { form: { event: 'itimer' } });
  expect(started.status() === 200, 'api start ' + started.status());
  await page.waitForTimeout(1500);
  const stopped = await page.request.post(baseUrl + 'api/stop', { form: {} });
  expect(stopped.status() === 200, 'api stop ' + stopped.status());
  await page.goto(baseUrl);
  const three = await rows();
  await page.selectOption('#diff-a', three[1].id);
  await page.selectOption('#diff-b', three[0].id);
  await Promise.all([page.waitForNavigation(), page.click('#diff-button')]);
  expect(page.url().includes(`/diff?a=${three[1].id}&b=${three[0].id}`), 'url ' + page.url());
  await page.waitForFunction(() => window.fkReady === true, null, { timeout: 20000 });
  await page.waitForTimeout(300);
  await shot(page, '06-diff');
  expectNoProblems('diff');
  await page.goto(baseUrl);
  expect(three[0].diffPrevious === `/diff?a=${three[1].id}&b=${three[0].id}`,
      'diff with previous: ' + three[0].diffPrevious);
  await Promise.all([page.waitForNavigation(), page.click('a.diff-previous')]);
  await page.waitForFunction(() => window.fkReady === true, null, { timeout: 20000 });
  expectNoProblems('diff with previous');
  await page.goto(baseUrl);
});

await step('delete all (after a confirmation)', async () => {
  let asked = '';
  page.once('dialog', (d) => { asked = d.message(); });
  await Promise.all([page.waitForNavigation(), page.click('#delete-all')]);
  expect(asked.includes('Delete all 3 profiles'), 'confirmation: ' + asked);
  await page.waitForSelector('#no-profiles');
  const status = await (await page.request.get(baseUrl + 'api/status')).json();
  expect(status.profiles === 0, 'profiles left: ' + status.profiles);
  expectNoProblems('delete all');
  await shot(page, '07-deleted');
});

if (tokenUrl && token) {
  const login = await context.newPage();
  watch(login, new URL(tokenUrl).origin);
  await step('token: the UI asks to sign in and refuses a wrong token', async () => {
    const response = await login.goto(tokenUrl);
    expect(response.status() === 401, 'status ' + response.status());
    await login.fill('#token', 'wrong-token-123');
    await Promise.all([login.waitForNavigation(), login.click('#login-button')]);
    expect(await login.isVisible('#login-error'), 'no error shown');
    problems.splice(0);  // the 401s themselves are logged as console errors
    await shot(login, '08-login-refused');
  });
  await step('token: signing in sets an HttpOnly cookie and opens the UI', async () => {
    await login.fill('#token', token);
    await Promise.all([login.waitForNavigation(), login.click('#login-button')]);
    await login.waitForSelector('#start-button');
    const cookies = await context.cookies(tokenUrl);
    const session = cookies.find((c) => c.name === 'flamekit_session');
    expect(session && session.httpOnly && session.sameSite === 'Strict', 'cookie: ' + JSON.stringify(session));
    expect(!(await login.evaluate(() => document.cookie)).includes('flamekit_session'), 'cookie visible to JS');
    await login.waitForTimeout(1200);
    expectNoProblems('signed in');
    await shot(login, '09-signed-in');
  });
}

await context.close();
process.exit(cases.finish());
