#!/usr/bin/env bash
# Installs what the project needs: Debian packages for real WebGPU in Node and for the torchrun tests (PyTorch's
# TCPStore server stands in for torchrun's agent store) when root on Debian, pnpm through corepack, the workspace
# dependencies, and the build. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  [ -f /usr/lib/chromium/vk_swiftshader_icd.json ] || need_apt+=(chromium)
  ldconfig -p 2>/dev/null | grep -q 'libvulkan.so.1' || need_apt+=(libvulkan1)
  command -v zstd >/dev/null 2>&1 || need_apt+=(zstd)
  [ -x /usr/bin/python3 ] || need_apt+=(python3)
  /usr/bin/python3 -c 'import torch' >/dev/null 2>&1 || need_apt+=(python3-torch)
  if [ ${#need_apt[@]} -gt 0 ]; then
    echo "[setup] apt-get install ${need_apt[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
  fi
fi

# corepack's signature check can fail behind registry mirrors; the pinned version comes from package.json.
export COREPACK_INTEGRITY_KEYS=0
export COREPACK_ENABLE_DOWNLOAD_PROMPT=0
if ! command -v pnpm >/dev/null 2>&1 || [ "$(pnpm --version 2>/dev/null)" != "$(node -p 'require("./package.json").packageManager.split("@")[1]')" ]; then
  corepack enable 2>/dev/null || npm install -g corepack >/dev/null && corepack enable
fi
pnpm install --frozen-lockfile --reporter=append-only >/dev/null || pnpm install --frozen-lockfile
pnpm exec turbo run build --output-logs=errors-only
