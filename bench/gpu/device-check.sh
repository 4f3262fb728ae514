#!/usr/bin/env bash
# One device session: torchrun under real torch 2.x, the f16 GEMM check and sweep, then amp training if it passed.
set -u
t0=$(date +%s)
mkdir -p /tmp/n && xz -dc .device/node.xz > /tmp/n/node && chmod +x /tmp/n/node
xz -dc .device/kits.tar.xz | tar -xf -
node=/tmp/n/node
echo "== torchrun check (webgpu, two ranks sharing the GPU)"
(
  export LD_LIBRARY_PATH=$PWD/bench/gpu/dist/lib:$PWD/bench/gpu/dist/glvnd
  export VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/nvidia_icd.json XDG_RUNTIME_DIR=$(mktemp -d)
  timeout 50 bash bench/gpu/torchrun/dist/torchrun-check.sh --node $node --torchrun "python3 -m torch.distributed.run" --backend webgpu
  echo "torchrun-check rc=$?"
) > "$OUT/torchrun-check.log" 2>&1
tail -14 "$OUT/torchrun-check.log"
echo "== f16 check and sweep"
bash bench/gpu/dist/run.sh --node $node --out "$OUT/h200-run11-f16.json" --budget-s 60 --sections matmul,f16 2>&1 |
  grep -E '^\[gpu-kit\] (f16|matmul 4096)' | cut -c1-600
best=$($node -e 'const d=JSON.parse(require("fs").readFileSync(process.argv[1]));const s=d.sections.find(x=>x.name==="f16 gemm");console.log(s?.result?.best_tile??"")' "$OUT/h200-run11-f16.json")
left=$(( 222 - ($(date +%s) - t0) ))
echo "best tile: ${best:-none}; ${left} s left"
if [ -n "$best" ] && [ "$left" -gt 60 ]; then
  MPTJS_F16_GEMM_TILE=$best bash bench/gpu/dist/run.sh --node $node --out "$OUT/h200-run11-models.json" \
    --budget-s "$left" --sections f16,models 2>&1 | grep -E '^\[gpu-kit\] (train|decode|f16)' | cut -c1-300
fi
echo "total $(( $(date +%s) - t0 )) s"
