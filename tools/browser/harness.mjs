// The shared part of flamekit's real-browser checks: Debian's
// /usr/bin/chromium (or $CHROMIUM) launched through playwright-core with
// the flags this closed network needs, and a runner that prints
// "PASS name" / "FAIL name: why" per case and ends with the
// "check-result: N passed, M failed" line tools/test.sh counts.
import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

// launchChromium(): a fresh headless profile; background networking off,
// because the machine refuses outside connections and Chromium would retry.
export async function launchChromium(viewport) {
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'fk-chromium-'));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    headless: true,
    viewport,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // Chromium may still be writing its profile while it exits: retry, and
  // leave a temporary directory behind rather than fail the check over it.
  context.on('close', () => {
    try {
      fs.rmSync(userDataDir, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
    } catch (e) {
      console.log(`note: could not remove ${userDataDir}: ${e.code}`);
    }
  });
  return context;
}

export function expect(cond, message) { if (!cond) throw new Error(message); }

// caseRunner(): run(name, fn) records one case; finish() prints the
// closing line and returns the exit status.
export function caseRunner() {
  let passed = 0, failed = 0;
  return {
    async run(name, fn) {
      try {
        await fn();
        passed++;
        console.log(`PASS ${name}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${name}: ${String((e && e.message) || e).split('\n')[0]}`);
      }
    },
    finish() {
      console.log(`check-result: ${passed} passed, ${failed} failed`);
      return failed ? 1 : 0;
    },
  };
}
