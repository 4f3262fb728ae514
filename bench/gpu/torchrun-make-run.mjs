// Writes the torchrun check's training run (a tiny MPT, its tokenizer and JSON-lines data, an llm-foundry YAML)
// into a directory. Bundled into the torchrun check by torchrun-build.mjs.
// Usage: node torchrun-make-run.mjs DIR [MAX_DURATION] [SAVE_INTERVAL]
import { writeTinyRun } from '@mptjs/test-fixtures';

const [dir, maxDuration = '6ba', saveInterval = '2ba'] = process.argv.slice(2);
if (!dir) {
  console.error('usage: torchrun-make-run.mjs DIR [MAX_DURATION] [SAVE_INTERVAL]');
  process.exit(2);
}
console.log(writeTinyRun(dir, { maxDuration, saveInterval }));
