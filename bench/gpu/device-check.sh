#!/usr/bin/env bash
# One short GPU session's checks, in order of value per second: mptjs-train under the real torchrun (two ranks
# sharing the GPU, one killed and restarted), the f16 GEMM's self-check and tile sweep, then the mpt-125m and mpt-1b
# training steps in fp32 (amp_fp16 too where a tile passed), decoding through tfjs and the recorded step (one sequence
# and 16 together), mptjs-serve over HTTP (16 streams against one), and the PyTorch reference beside them; then, where a tile passed, fp32 against amp_fp16 over 200 steps of the sample tokens
# (LEARNING_S seconds, default 170). Everything lands in $OUT (default ./device-out).
# Prepare here (ignored folder .device/, which travels with the working tree):
#   pnpm build && node bench/gpu/build.mjs && node bench/gpu/torchrun-build.mjs
#   xz -c "$(command -v node)" > .device/node.xz
#   tar -cf - bench/gpu/dist bench/gpu/torchrun/dist | xz -T2 > .device/kits.tar.xz
# Run there: bash bench/gpu/device-check.sh [seconds before the learning run, default 260]
set -u
total="${1:-260}"
out="${OUT:-$PWD/device-out}"
mkdir -p "$out"
t0=$(date +%s)
mkdir -p /tmp/n && xz -dc .device/node.xz >/tmp/n/node && chmod +x /tmp/n/node
xz -dc .device/kits.tar.xz | tar -xf -
node=/tmp/n/node
echo "== torchrun check (webgpu, two ranks sharing the GPU)"
(
  export LD_LIBRARY_PATH=$PWD/bench/gpu/dist/lib:$PWD/bench/gpu/dist/glvnd
  export VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR
  XDG_RUNTIME_DIR=$(mktemp -d)
  timeout 50 bash bench/gpu/torchrun/dist/torchrun-check.sh --node $node \
    --torchrun "python3 -m torch.distributed.run" --backend webgpu
  echo "torchrun-check rc=$?"
) >"$out/torchrun-check.log" 2>&1
tail -14 "$out/torchrun-check.log"
echo "== f16 GEMM check and sweep"
bash bench/gpu/dist/run.sh --node $node --out "$out/f16.json" --budget-s 60 --sections matmul,f16 2>&1 |
  grep -E '^\[gpu-kit\] (f16|matmul 4096)' | cut -c1-600
best=$($node -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1]));
  const s=d.sections.find((x)=>x.name==="f16 gemm");console.log(s?.result?.best_tile??"")' "$out/f16.json")
left=$((total - ($(date +%s) - t0)))
echo "best tile: ${best:-none}; ${left} s left"
# The model stages run either way (fp32 training, tfjs and recorded decoding); amp_fp16 too where a tile passed.
if [ "$left" -gt 60 ]; then
  MPTJS_F16_GEMM_TILE=${best:-2x2x4x4x32s2p8} bash bench/gpu/dist/run.sh --node $node --out "$out/models.json" \
    --budget-s "$left" --pytorch-budget-s 45 --sections pytorch,f16,models,serve 2>&1 |
    grep -E '^\[gpu-kit\] (train|decode|f16|pytorch|serve)' | cut -c1-300
fi
# fp32 against amp_fp16 over 200 steps of the sample tokens, where the f16 GEMM passed (LEARNING_S=0 skips it).
learning_s="${LEARNING_S:-170}"
if [ -n "$best" ] && [ "$learning_s" -gt 0 ]; then
  echo "== same learning (${learning_s} s)"
  MPTJS_F16_GEMM_TILE=$best bash bench/gpu/dist/run.sh --node $node --out "$out/learning.json" \
    --budget-s "$learning_s" --sections learning 2>&1 | grep -E '^\[gpu-kit\] same learning' | cut -c1-400
fi
echo "total $(($(date +%s) - t0)) s"
