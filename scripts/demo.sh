#!/usr/bin/env bash
# The end-to-end demo: installs and builds, then runs the main job.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
source scripts/webgpu-env.sh
exec node apps/train/dist/cli.js demo "$@"
