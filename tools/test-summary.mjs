// Adds up the vitest JSON reports that `turbo run test` leaves in each package and prints one summary line.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const dirs = [
  ...['packages', 'apps'].flatMap((group) =>
    existsSync(join(root, group)) ? readdirSync(join(root, group)).map((name) => join(group, name)) : [],
  ),
  // The private fixtures package has tests of its own.
  'tools/test-fixtures',
];

let passed = 0;
let failed = 0;
let skipped = 0;
const missing = [];
for (const dir of dirs) {
  const report = join(root, dir, '.vitest-report.json');
  if (!existsSync(report)) {
    missing.push(dir);
    continue;
  }
  const r = JSON.parse(readFileSync(report, 'utf8'));
  passed += r.numPassedTests;
  failed += r.numFailedTests;
  skipped += r.numPendingTests + r.numTodoTests;
  // A file that fails to load has no test results but is a failure all the same.
  if (r.numFailedTestSuites > 0 && r.numFailedTests === 0) failed += r.numFailedTestSuites;
}
// Tests outside vitest (the browser example's end-to-end run) report their counts through the environment.
passed += Number(process.env.MPTJS_EXTRA_PASSED ?? 0);
failed += Number(process.env.MPTJS_EXTRA_FAILED ?? 0);
if (missing.length) console.log(`no test report (counted as failed) from: ${missing.join(', ')}`);
console.log(`tests: ${passed} passed, ${failed + missing.length} failed, ${skipped} skipped`);
process.exit(failed + missing.length > 0 ? 1 : 0);
