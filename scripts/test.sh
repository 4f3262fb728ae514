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
node tools/test-summary.mjs || status=$?
exit $status
