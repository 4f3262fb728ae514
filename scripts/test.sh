#!/usr/bin/env bash
# The whole test suite: installs and builds first, then runs every package's tests through turbo and prints one
# summary line over all of them.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/webgpu-env.sh
find . -name .vitest-report.json -not -path '*/node_modules/*' -delete
status=0
pnpm exec biome check . || status=$?
pnpm exec turbo run typecheck --output-logs=errors-only || status=$?
pnpm exec turbo run test --concurrency=1 --continue || status=$?
# The browser example is a standalone npm project (Vite + Playwright on Debian's Chromium): its end-to-end test
# checks in-page greedy generation against mptjs-serve. Its "ok"/"FAIL" lines join the summary.
browser_log="$(mktemp)"
browser_status=0
(cd examples/browser && npm ci --no-audit --no-fund --loglevel=error && npm test) 2>&1 | tee "$browser_log" || browser_status=$?
export MPTJS_EXTRA_PASSED="$(grep -c '^ok ' "$browser_log" || true)"
export MPTJS_EXTRA_FAILED="$(grep -c '^FAIL ' "$browser_log" || true)"
if [ "$browser_status" != 0 ] && [ "$MPTJS_EXTRA_FAILED" = 0 ]; then MPTJS_EXTRA_FAILED=1; fi
node tools/test-summary.mjs || status=$?
exit $status
