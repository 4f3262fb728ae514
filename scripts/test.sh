#!/usr/bin/env bash
# The whole test suite: installs and builds first, then lint, typecheck, every package's vitest suite through
# turbo, the packed-package check and the browser example's end-to-end test; prints one summary line over all.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/webgpu-env.sh
find . -name .vitest-report.json -not -path '*/node_modules/*' -delete
status=0
pnpm exec biome check . || status=$?
pnpm exec turbo run typecheck --output-logs=errors-only || status=$?
pnpm exec turbo run test --concurrency=1 --continue || status=$?

# Checks outside vitest print one "ok ..." or "FAIL ..." line per case; their counts join the summary.
extra_passed=0
extra_failed=0
run_extra() {
  local log rc=0
  log="$(mktemp)"
  "$@" 2>&1 | tee "$log" || rc=$?
  local ok fail
  ok="$(grep -cE '^ *ok ' "$log" || true)"
  fail="$(grep -cE '^ *FAIL ' "$log" || true)"
  if [ "$rc" != 0 ] && [ "$fail" = 0 ]; then fail=1; fi
  extra_passed=$((extra_passed + ok))
  extra_failed=$((extra_failed + fail))
  [ "$rc" = 0 ] || status=$rc
}
# The package graph in docs/architecture.md matches the manifests, and every edge is declared and used.
run_extra node tools/architecture/graph.mjs --check
# Every package packed with pnpm, installed from the tarballs in an empty project, its README examples run.
run_extra node tools/pack-test/run.mjs
# The command-line examples shipped under packages/*/examples, run against the built packages.
run_extra node tools/examples/run.mjs
# The browser example (Vite + Playwright on Debian's Chromium): in-page greedy generation equals mptjs-serve's.
run_extra bash -c 'cd examples/browser && npm ci --no-audit --no-fund --loglevel=error && npm test'
# The GPU measurement kit, built into a temporary directory and run in its tiny mode on SwiftShader.
run_extra node bench/gpu/test.mjs

MPTJS_EXTRA_PASSED=$extra_passed MPTJS_EXTRA_FAILED=$extra_failed node tools/test-summary.mjs || status=$?
exit $status
