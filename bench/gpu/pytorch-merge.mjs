// Adds the PyTorch reference's run to the kit's JSON as the `pytorch` section, with mptjs/PyTorch ratios on the
// training and decode sections, and prints the comparison (run.sh runs it after the WebGPU measurements).
// Usage: node pytorch-merge.mjs --kit result.json (--skip REASON | --reference pytorch.json --rc N
//   [--log FILE] [--seconds S])
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { mergePytorch, pytorchRows, pytorchSection, ratioRows } from './pytorch-section.mjs';

const { values } = parseArgs({
  options: {
    kit: { type: 'string' },
    reference: { type: 'string' },
    rc: { type: 'string', default: '0' },
    log: { type: 'string' },
    seconds: { type: 'string' },
    skip: { type: 'string' },
  },
});
const fail = (message) => {
  console.error(`pytorch-merge: ${message}`);
  process.exit(2);
};
if (!values.kit) fail('--kit FILE is required');
if (!values.skip && !values.reference) fail('pass --reference FILE (the PyTorch result) or --skip REASON');
const rc = Number(values.rc);
if (!Number.isInteger(rc)) fail(`--rc must be an exit status, got "${values.rc}"`);

// A kit that stopped before writing anything still gets the PyTorch figures.
const doc = existsSync(values.kit) ? JSON.parse(readFileSync(values.kit, 'utf8')) : { sections: [] };
let reference = null;
if (values.reference && existsSync(values.reference)) {
  try {
    reference = JSON.parse(readFileSync(values.reference, 'utf8'));
  } catch {
    // A run stopped while writing: recorded as a failure without a result.
  }
}
const section = pytorchSection({
  reference,
  rc,
  logTail: values.log && existsSync(values.log) ? readFileSync(values.log, 'utf8').slice(-4000) : '',
  seconds: values.seconds === undefined ? null : Number(values.seconds),
  skip: values.skip ?? null,
});
mergePytorch(doc, section);
writeFileSync(values.kit, `${JSON.stringify(doc, null, 2)}\n`);

const rows = [];
if (section.status === 'ok' || section.result) rows.push(...pytorchRows(section));
if (section.status !== 'ok') rows.push(['pytorch', section.status, section.note ?? section.error ?? '']);
else if (section.note) rows.push(['pytorch note', '', section.note]);
for (const s of doc.sections) rows.push(...ratioRows(s));
const width = Math.max(...rows.map((r) => r[0].length));
console.log('');
for (const [name, value, unit] of rows)
  console.log(`[gpu-kit] ${name.padEnd(width)}  ${String(value).padStart(10)}  ${unit}`);
process.exit(section.status === 'failed' ? 1 : 0);
