#!/usr/bin/env bash
# The end-to-end demo: install and build, train a BPE tokenizer and a small MPT on the bundled RedPajama-style
# sample, generate from the export, then serve it with the OpenAI-compatible API until interrupted.
# Extra arguments go to `mptjs-train run` (e.g. --set max_duration=50ba, --backend webgpu).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/webgpu-env.sh
run_dir=runs/demo
mkdir -p "$run_dir"
node apps/train/dist/cli.js tokenizer train data/sample/*/ --vocab-size 2048 --out "$run_dir/tokenizer.json"
node apps/train/dist/cli.js run data/sample/demo.yaml --run-dir "$run_dir" --autoresume \
  --set "variables.tokenizer=$run_dir/tokenizer.json" "$@"
echo
echo "[demo] greedy continuation of \"The history of\":"
node apps/serve/dist/cli.js generate "$run_dir/export" --prompt "The history of" --max-new-tokens 40 --temperature 0
echo
echo "[demo] serving $run_dir/export on http://127.0.0.1:${PORT:-8080} (playground at /, API at /v1); Ctrl-C stops it"
exec node apps/serve/dist/cli.js serve "$run_dir/export" --port "${PORT:-8080}"
