#!/usr/bin/env bash
# Checks mptjs-train under the real torchrun (built by `node bench/gpu/torchrun-build.mjs`): two ranks started by
# `torchrun --no_python --nproc_per_node 2 --max_restarts 1` train the losses of one rank on the same global batch,
# and survive one rank killed mid-run (torchrun restarts the group; it resumes from the latest checkpoint).
# Usage: torchrun-check.sh [--node PATH] [--torchrun CMD] [--backend webgpu|wasm|cpu] [--gpu-index N] [--keep]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
node_bin="${NODE:-}"
torchrun_cmd=""
backend="webgpu"
gpu_args=()
keep=0

die() {
  echo "torchrun-check: $*" >&2
  exit 2
}
while [ $# -gt 0 ]; do
  case "$1" in
    --node) [ $# -ge 2 ] || die "--node needs a path"; node_bin="$2"; shift 2 ;;
    --torchrun) [ $# -ge 2 ] || die "--torchrun needs a command"; torchrun_cmd="$2"; shift 2 ;;
    --backend) [ $# -ge 2 ] || die "--backend needs a name"; backend="$2"; shift 2 ;;
    --gpu-index) [ $# -ge 2 ] || die "--gpu-index needs a number"; gpu_args=(--gpu-index "$2"); shift 2 ;;
    --keep) keep=1; shift ;;
    -h | --help) sed -n '2,5p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
[ -f "$here/mptjs-train.mjs" ] || die "no bundle next to $here: run \`node bench/gpu/torchrun-build.mjs\` first"
case "$backend" in webgpu | wasm | cpu) ;; *) die "--backend must be webgpu, wasm or cpu, got '$backend'" ;; esac

if [ -z "$node_bin" ]; then node_bin="$(command -v node || true)"; fi
[ -n "$node_bin" ] && [ -x "$node_bin" ] || die "no node binary: pass --node PATH or set NODE"
echo "node: $node_bin ($("$node_bin" --version))"
# torchrun.py is torchrun (with a fix for Debian's torch 1.13), run by the Python that torchrun's own script uses.
python="python3"
if command -v torchrun >/dev/null 2>&1; then python="$(head -n 1 "$(command -v torchrun)" | sed 's/^#! *//')"; fi
[ -n "$torchrun_cmd" ] || torchrun_cmd="$python $here/torchrun.py"
read -r -a torchrun_argv <<<"$torchrun_cmd"
echo "torchrun: $torchrun_cmd (torch $($python -c 'import torch; print(torch.__version__)' 2>/dev/null || echo '?'))"

work="$(mktemp -d "${TMPDIR:-/tmp}/mptjs-torchrun-check.XXXXXX")"
cleanup() { [ "$keep" = 1 ] && echo "kept $work" || rm -rf "$work"; }
trap cleanup EXIT
config="$("$node_bin" "$here/make-run.mjs" "$work" 6ba 2ba)"
common=(--backend "$backend" --no-progress --set scheduler.t_max=6ba "${gpu_args[@]}")

echo "== one rank, the same global batch"
"$node_bin" "$here/mptjs-train.mjs" run "$config" --run-dir "$work/one" "${common[@]}" >"$work/one.log" 2>&1 ||
  { tail -n 30 "$work/one.log"; die "the one-rank run failed"; }
grep -m 1 'backend=' "$work/one.log" || true

echo "== two ranks under torchrun --max_restarts 1, rank 1 killed after the first checkpoint"
port=$(( 29600 + RANDOM % 2000 ))
"${torchrun_argv[@]}" --no_python --nproc_per_node 2 --max_restarts 1 --monitor_interval 0.2 --master_port "$port" \
  "$node_bin" "$here/mptjs-train.mjs" run "$config" --run-dir "$work/two" "${common[@]}" >"$work/two.log" 2>&1 &
agent=$!
deadline=$(( $(date +%s) + 600 ))
until [ -f "$work/two/checkpoints/ba00000002/state.json" ]; do
  kill -0 "$agent" 2>/dev/null || { tail -n 40 "$work/two.log"; die "torchrun ended before the first checkpoint"; }
  [ "$(date +%s)" -lt "$deadline" ] || { kill "$agent"; die "no checkpoint within 600 s"; }
  sleep 0.2
done
victim=""
for p in /proc/[0-9]*; do
  [ "$(awk '{ print $4 }' "$p/stat" 2>/dev/null)" = "$agent" ] || continue
  tr '\0' '\n' <"$p/environ" 2>/dev/null | grep -qx 'RANK=1' && victim="${p#/proc/}"
done
[ -n "$victim" ] || die "found no rank 1 under torchrun (pid $agent)"
kill -9 "$victim"
echo "killed rank 1 (pid $victim)"
status=0
wait "$agent" || status=$?
grep -E '^\[mptjs\] rank [01] \(local_rank [01]\): backend=' "$work/two.log" | sort -u || true
grep -E 'torchrun restart|resumed from' "$work/two.log" || true
[ "$status" = 0 ] || { tail -n 60 "$work/two.log"; die "torchrun exited with $status"; }
grep -q 'torchrun restart 1 of 1: resuming' "$work/two.log" || die "the restarted group did not resume"

echo "== losses"
"$node_bin" --input-type=module - "$work/one/metrics.jsonl" "$work/two/metrics.jsonl" "$backend" <<'EOF'
import { readFileSync } from 'node:fs';
const [one, two, backend] = process.argv.slice(2);
const steps = (f) =>
  readFileSync(f, 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((r) => 'loss' in r);
const a = steps(one);
const b = steps(two);
// GPU reductions sum in a different order on two ranks than on one; wasm and cpu agree to float32 noise.
const tol = backend === 'webgpu' ? 1e-4 : 1e-5;
let ok = a.length === 6 && b.map((m) => m.step).join() === '1,2,3,4,5,6';
for (let i = 0; i < a.length; i++) {
  const rel = Math.abs(a[i].loss - b[i]?.loss) / Math.max(1, Math.abs(a[i].loss));
  console.log(`step ${a[i].step}: one rank ${a[i].loss.toFixed(6)}  two ranks ${b[i]?.loss.toFixed(6)}  rel ${rel.toExponential(2)}`);
  if (!(rel <= tol)) ok = false;
}
console.log(ok ? `PASS (tolerance ${tol})` : `FAIL (tolerance ${tol})`);
process.exit(ok ? 0 : 1);
EOF
