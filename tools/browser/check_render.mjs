// Real-browser checks of flamekit's rendered pages: Debian's /usr/bin/chromium
// driven by playwright-core (no browser download).
//
//   node tools/browser/check_render.mjs PAGES_DIR SCREENSHOT_DIR
//
// PAGES_DIR holds what //include/flamekit/render:browser_fixtures writes.
// Prints "PASS name" / "FAIL name: why" per case, timings, and a last line
// "check-result: N passed, M failed". Exit status 1 when any case failed.
import fs from 'node:fs';
import path from 'node:path';
import { caseRunner, expect, launchChromium } from './harness.mjs';

const [pagesDir, shotDir] = process.argv.slice(2);
if (!pagesDir || !shotDir) {
  console.error('usage: node check_render.mjs PAGES_DIR SCREENSHOT_DIR');
  process.exit(2);
}
fs.mkdirSync(shotDir, { recursive: true });
const cases = caseRunner();
const check = (name, fn) => cases.run(name, fn);
const context = await launchChromium({ width: 1280, height: 800 });

// A page with its console errors, page errors and non-file requests recorded.
async function open(file, hash = '') {
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (m.type() === 'error') problems.push('console: ' + m.text()); });
  page.on('pageerror', (e) => problems.push('pageerror: ' + e.message));
  page.on('request', (r) => { if (!r.url().startsWith('file:') && !r.url().startsWith('data:') && !r.url().startsWith('blob:')) problems.push('network: ' + r.url()); });
  const started = Date.now();
  await page.goto('file://' + path.resolve(pagesDir, file) + hash);
  return { page, problems, started };
}
async function ready(page) {
  await page.waitForFunction(() => window.fkReady === true, null, { timeout: 20000 });
}
const state = (page) => page.evaluate(() => window.fkState);
async function clickFrame(page, name) {
  const c = await page.evaluate((n) => window.fkFrameCenter(n), name);
  expect(c, `frame ${name} not drawn`);
  await page.mouse.click(c.x - (await page.evaluate(() => window.scrollX)), c.y - (await page.evaluate(() => window.scrollY)));
}

// ---- The small flame graph ----------------------------------------------------
{
  const { page, problems } = await open('small.html');
  await check('flame: loads and draws', async () => {
    await ready(page);
    expect(await page.title() === 'checkout-service cpu', 'title: ' + await page.title());
    const meta = await page.textContent('#meta');
    expect(/event: cpu/.test(meta) && /samples: 2,000/.test(meta) && /dropped: 3/.test(meta), 'meta line: ' + meta);
    const legend = await page.textContent('#legend');
    expect(/kernel/.test(legend) && /shared library/.test(legend) && /unknown/.test(legend), 'legend: ' + legend);
  });
  await check('flame: tooltip shows name, samples, self', async () => {
    const c = await page.evaluate(() => window.fkFrameCenter('Server::HandleRequest(Request const&)'));
    expect(c, 'frame not drawn');
    await page.mouse.move(c.x, c.y);
    const tip = await page.textContent('#tooltip');
    expect(tip.includes('Server::HandleRequest(Request const&)') && tip.includes('1,400') && tip.includes('70.00%') && tip.includes('self'), 'tooltip: ' + tip);
  });
  await check('flame: click zooms into a frame', async () => {
    await clickFrame(page, 'Server::HandleRequest(Request const&)');
    const s = await state(page);
    expect(s.zoom === 'Server::HandleRequest(Request const&)', 'zoom: ' + s.zoom);
    expect(/zoom=/.test(page.url()), 'url has no zoom: ' + page.url());
    // A child now spans a larger share of the width: JsonParser is 700/1400 of the view.
    const c = await page.evaluate(() => window.fkFrameCenter('JsonParser::Parse(std::basic_string_view<char>)'));
    const w = await page.evaluate(() => document.getElementById('canvas').clientWidth);
    expect(c && c.x > w * 0.3, 'child not widened');
    await page.screenshot({ path: path.join(shotDir, 'flame_zoomed.png') });
  });
  await check('flame: Esc resets the zoom', async () => {
    await page.keyboard.press('Escape');
    const s = await state(page);
    expect(s.zoom === null, 'zoom: ' + s.zoom);
  });
  await check('flame: regex search shows the matched percentage', async () => {
    await page.fill('#search', '/JsonParser|^deflate$/');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => /matched/.test(document.getElementById('matched').textContent));
    const text = await page.textContent('#matched');
    // (700 + 250) / 2000
    expect(/matched: 47\.5% of samples/.test(text), 'matched: ' + text);
    expect(/search=/.test(page.url()), 'url has no search');
    await page.evaluate(() => document.activeElement.blur());
  });
  await check('flame: n / Shift+N step through the matches', async () => {
    // Matches in preorder: deflate (under Compress), then JsonParser.
    await page.keyboard.press('Escape');
    await page.keyboard.press('n');
    const first = (await state(page)).zoom;
    await page.keyboard.press('n');
    const second = (await state(page)).zoom;
    await page.keyboard.press('Shift+N');
    const back = (await state(page)).zoom;
    expect(first === 'deflate' && second === 'JsonParser::Parse(std::basic_string_view<char>)' && back === 'deflate',
           [first, second, back].join(' / '));
    await page.keyboard.press('Escape');
  });
  await check('flame: zoom and search survive a reload from the URL', async () => {
    await clickFrame(page, 'Compress(Buffer*)');
    expect((await state(page)).zoom === 'Compress(Buffer*)', 'click did not zoom');
    const url = page.url();
    const again = await open('small.html', url.slice(url.indexOf('#')));
    await ready(again.page);
    const s = await state(again.page);
    expect(s.zoom === 'Compress(Buffer*)' && s.search === '/JsonParser|^deflate$/', JSON.stringify(s));
    await again.page.close();
  });
  await check('flame: inverted and dark mode', async () => {
    await page.keyboard.press('Escape');
    await page.keyboard.press('i');
    await page.click('#dark');
    const s = await state(page);
    expect(s.icicle && s.dark, JSON.stringify(s));
    const bg = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    expect(bg === 'rgb(22, 23, 27)', 'background: ' + bg);
    // Root row now at the top: "main" is on the second row.
    const c = await page.evaluate(() => window.fkFrameCenter('main'));
    const top = await page.evaluate(() => document.getElementById('canvas').getBoundingClientRect().top + window.scrollY);
    expect(c && c.y - top < 17 * 2, 'main not near the top');
    await page.screenshot({ path: path.join(shotDir, 'flame_inverted_dark.png') });
  });
  await check('flame: reversed view merges callers of leaves', async () => {
    await page.click('#reversed');
    const s = await state(page);
    expect(s.reversed, 'not reversed');
    // Roots are now leaves: "JsonParser::Parse" is a root frame, drawn on the first row.
    const c = await page.evaluate(() => window.fkFrameCenter('JsonParser::Parse(std::basic_string_view<char>)'));
    const top = await page.evaluate(() => document.getElementById('canvas').getBoundingClientRect().top + window.scrollY);
    expect(c && c.y - top < 17 * 2, 'leaf is not a root');
    await page.click('#reversed');
  });
  await check('flame: transforms panel applies and exports', async () => {
    await page.keyboard.press('t');
    const recorded = await page.textContent('#transforms-recorded');
    expect(recorded.includes('^__libc'), 'recorded: ' + recorded);
    await page.fill('#transforms-text', '[{"hide": "^Server::"}, {"replace": "^JsonParser::(\\\\w+).*", "with": "JSON \\\\1"}]');
    await page.click('#transforms-apply');
    const err = await page.textContent('#transforms-error');
    expect(err === '', 'error: ' + err);
    expect(await page.evaluate(() => window.fkFrameCenter('Server::Run()')) === null, 'hidden frame still drawn');
    expect(await page.evaluate(() => window.fkFrameCenter('JSON Parse')) !== null, 'replaced name not drawn');
    const download = page.waitForEvent('download');
    await page.click('#transforms-export');
    const file = await (await download).path();
    const list = JSON.parse(fs.readFileSync(file, 'utf8'));
    expect(list.length === 3 && list[0].hide === '^__libc' && list[2].with === 'JSON \\1', 'export: ' + JSON.stringify(list));
    await page.fill('#transforms-text', '[{"filter": "("}]');
    await page.click('#transforms-apply');
    expect(/entry 1: invalid regex/.test(await page.textContent('#transforms-error')), 'bad regex not reported');
    await page.click('#transforms-clear');
    await page.keyboard.press('Escape');
  });
  await check('flame: help box lists shortcuts', async () => {
    await page.keyboard.press('?');
    expect(await page.isVisible('#help'), 'help hidden');
    await page.screenshot({ path: path.join(shotDir, 'flame_help.png') });
    await page.keyboard.press('Escape');
    expect(!(await page.isVisible('#help')), 'help still open');
  });
  await check('flame: no console errors or network requests', async () => {
    expect(problems.length === 0, problems.join('; '));
  });
  await page.close();
}

// ---- RenderOptions inverted + reverse: the page opens that way -------------------
{
  const { page, problems } = await open('small_inverted_reversed.html');
  await check('flame: opens in the view RenderOptions asked for', async () => {
    await ready(page);
    const s = await state(page);
    expect(s.icicle && s.reversed, JSON.stringify(s));
    // Leaves are roots now: do_epoll_wait sits on the first row under "all".
    const c = await page.evaluate(() => window.fkFrameCenter('do_epoll_wait'));
    const top = await page.evaluate(() => document.getElementById('canvas').getBoundingClientRect().top + window.scrollY);
    expect(c && c.y - top < 17 * 2, 'leaf not on the first row');
    expect(problems.length === 0, problems.join('; '));
  });
  await page.close();
}

// ---- A 5,000-frame stack: drawn, cut with a note, no errors ----------------------
{
  const { page, problems } = await open('deep.html');
  await check('flame: a 5,000-frame stack is cut with a note, not a blank page', async () => {
    await ready(page);
    const note = await page.textContent('#depth-note');
    expect(/5000 frames deep/.test(note), 'note: ' + note);
    expect(await page.evaluate(() => window.fkFrameCenter('leaf')) !== null, 'shallow frame not drawn');
    const h = await page.evaluate(() => document.getElementById('canvas').height / (window.devicePixelRatio || 1));
    expect(h <= 32000, 'canvas height ' + h);
    expect(problems.length === 0, problems.join('; '));
  });
  await page.close();
}

// ---- Hostile names -------------------------------------------------------------
{
  const { page, problems } = await open('hostile.html');
  await check('hostile: names render as text, nothing runs', async () => {
    await ready(page);
    expect(await page.evaluate(() => window.fkPwned) === undefined, 'injected script ran');
    expect(await page.evaluate(() => document.querySelectorAll('img').length) === 0, 'an <img> was created');
    // Two scripts run (the data and the viewer); the embedded stacks are one
    // inert text/plain block that the names cannot leave (percent-encoded).
    const scripts = await page.evaluate(() =>
      Array.from(document.scripts).map((s) => `${s.id}|${s.type}`));
    const inert = scripts.filter((s) => s === 'fk-stacks|text/plain');
    expect(scripts.length - inert.length === 2, 'extra scripts: ' + scripts.join(', '));
    expect(inert.length === 1, 'stacks blocks: ' + scripts.join(', '));
    const title = await page.title();
    expect(title.startsWith('</title><script>'), 'title: ' + title);
    const c = await page.evaluate(() => window.fkFrameCenter('</script><script>window.fkPwned=1</script>'));
    expect(c, '</script> frame not drawn');
    await page.mouse.move(c.x, c.y);
    const tip = await page.textContent('#tooltip');
    expect(tip.includes('</script><script>window.fkPwned=1</script>'), 'tooltip: ' + tip.slice(0, 80));
    expect(await page.evaluate(() => window.fkFrameCenter('N'.repeat(10000))) !== null, 'long name missing');
    await page.fill('#search', '<img');
    await page.press('#search', 'Enter');
    expect(/matched: /.test(await page.textContent('#matched')), 'search failed');
    await page.screenshot({ path: path.join(shotDir, 'hostile.png') });
    expect(problems.length === 0, problems.join('; '));
  });
  await page.close();
}

// ---- SVG -----------------------------------------------------------------------
{
  const { page, problems } = await open('small.svg');
  await check('svg: opens, zooms on click, no errors', async () => {
    await page.waitForSelector('#frames g');
    const before = await page.evaluate(() => document.querySelectorAll('#frames g.hide').length);
    const g = page.locator('#frames g', { hasText: 'Compress(Buffer*)' }).first();
    await g.click();
    const after = await page.evaluate(() => document.querySelectorAll('#frames g.hide').length);
    expect(before === 0 && after > 0, `hidden frames ${before} -> ${after}`);
    const w = await g.locator('rect').getAttribute('width');
    expect(parseFloat(w) > 1000, 'zoomed width ' + w);
    await page.screenshot({ path: path.join(shotDir, 'svg_zoomed.png') });
    // A frame too narrow for a label gets one once zoomed.
    const narrow = page.locator('#frames g', { hasText: 'Cache::Lookup(Key const&)' }).first();
    expect(await narrow.locator('text').count() === 0, 'narrow frame already labelled');
    await page.keyboard.press('Escape');
    await narrow.click();
    const label = await narrow.locator('text').textContent();
    expect(label === 'Cache::Lookup(Key const&)', 'label after zoom: ' + label);
    expect(problems.length === 0, problems.join('; '));
  });
  await page.close();
}

// ---- Diff graph ----------------------------------------------------------------
if (fs.existsSync(path.join(pagesDir, 'diff.html'))) {
  const { page, problems } = await open('diff.html');
  await check('diff: loads with red growth and blue shrink', async () => {
    await ready(page);
    const legend = await page.textContent('#legend');
    expect(/grew/.test(legend) && /shrank/.test(legend), 'legend: ' + legend);
    const colourAt = async (name) => {
      const c = await page.evaluate((n) => window.fkFrameCenter(n), name);
      expect(c, name + ' not drawn');
      // A pixel inside the box, right of the label and above the text line.
      return page.evaluate(([x, y]) => {
        const canvas = document.getElementById('canvas'), r = canvas.getBoundingClientRect(), dpr = window.devicePixelRatio || 1;
        const px = canvas.getContext('2d').getImageData(Math.round((x - r.left - window.scrollX) * dpr), Math.round((y - r.top - window.scrollY) * dpr), 1, 1).data;
        return [px[0], px[1], px[2]];
      }, [c.left + c.w - 3, c.top + 2]);
    };
    const grew = await colourAt('Compress(Buffer*)');
    const shrank = await colourAt('JsonParser::Parse(std::basic_string_view<char>)');
    expect(grew[0] > grew[2] + 40, 'Compress not red: ' + grew);
    expect(shrank[2] > shrank[0] + 40, 'JsonParser not blue: ' + shrank);
  });
  await check('diff: tooltip shows before, after, delta', async () => {
    const c = await page.evaluate(() => window.fkFrameCenter('Compress(Buffer*)'));
    await page.mouse.move(c.x, c.y);
    const tip = await page.textContent('#tooltip');
    expect(/before/.test(tip) && /after/.test(tip) && /delta/.test(tip) && /900/.test(tip), 'tooltip: ' + tip);
  });
  await check('diff: normalized/raw toggle', async () => {
    const a = await state(page);
    await page.click('#normalize');
    const b = await state(page);
    expect(a.normalize === true && b.normalize === false && /raw=1/.test(page.url()), JSON.stringify([a, b]));
    const c = await page.evaluate(() => window.fkFrameCenter('Compress(Buffer*)'));
    await page.mouse.move(c.x, c.y);
    expect(!/normalized from/.test(await page.textContent('#tooltip')), 'still normalized');
    await page.click('#normalize');
  });
  await check('diff: zoom, search, inverted', async () => {
    await clickFrame(page, 'Server::HandleRequest(Request const&)');
    expect((await state(page)).zoom === 'Server::HandleRequest(Request const&)', 'no zoom');
    await page.fill('#search', '/^Compress/');
    await page.press('#search', 'Enter');
    const text = await page.textContent('#matched');
    expect(/matched: /.test(text), 'matched: ' + text);
    await page.keyboard.press('Escape');
    await page.keyboard.press('i');
    expect((await state(page)).icicle, 'not inverted');
    await page.screenshot({ path: path.join(shotDir, 'diff.png') });
    expect(problems.length === 0, problems.join('; '));
  });
  await page.close();
} else {
  console.log('SKIP diff: no diff.html (built without the diff renderer)');
}

// ---- Big page: interactive within 2 s --------------------------------------------
{
  const size = fs.statSync(path.join(pagesDir, 'big.html')).size;
  const { page, problems, started } = await open('big.html');
  await check('big: interactive within 2 s of load', async () => {
    await ready(page);
    const wall = Date.now() - started;
    const t = await page.evaluate(() => ({ readyAt: window.fkReadyAt, script: window.fkLoadMs, nodes: window.fkState.nodes }));
    console.log(`big.html: ${(size / 1e6).toFixed(2)} MB, ${t.nodes} nodes, ready ${t.readyAt.toFixed(0)} ms after navigation start (script ${t.script.toFixed(0)} ms), ${wall} ms wall from goto`);
    expect(t.readyAt < 2000, `ready after ${t.readyAt.toFixed(0)} ms`);
    // And it responds: a search over every frame.
    const s0 = Date.now();
    await page.fill('#search', '/Parser/');
    await page.press('#search', 'Enter');
    await page.waitForFunction(() => /matched/.test(document.getElementById('matched').textContent));
    console.log(`big.html: search took ${Date.now() - s0} ms`);
    await page.screenshot({ path: path.join(shotDir, 'big.png') });
    expect(problems.length === 0, problems.join('; '));
  });
  await page.close();
}

await context.close();
console.log(`screenshots in ${shotDir}`);
process.exit(cases.finish());
