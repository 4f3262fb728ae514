#!/usr/bin/env bash
# Runs the GPU measurement kit (built by `node bench/gpu/build.mjs`): finds node, the Vulkan loader and the
# NVIDIA Vulkan ICD, then runs the bundled measurements on WebGPU through Dawn within a wall-clock budget, after
# the PyTorch reference of the same shapes when python3 has torch.
# Usage: run.sh [--node PATH] [--out result.json] [--tiny] [--budget-s 480] [--sections a,b,...]
#   [--python PATH] [--pytorch-budget-s 100]
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
node_bin="${NODE:-}"
out="gpu-kit-result.json"
budget=480
kit_args=()
python_bin="${PYTHON:-python3}"
pytorch_budget=100
tiny=0
sections=""
sections_set=0
# The PyTorch reference runs with the caller's library path, not the one set up for Dawn below.
orig_ld_path="${LD_LIBRARY_PATH-}"

usage() {
  sed -n '2,6p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}
die() {
  echo "run.sh: $*" >&2
  exit 2
}

while [ $# -gt 0 ]; do
  case "$1" in
    --node) [ $# -ge 2 ] || die "--node needs a path"; node_bin="$2"; shift 2 ;;
    --out) [ $# -ge 2 ] || die "--out needs a path"; out="$2"; shift 2 ;;
    --budget-s) [ $# -ge 2 ] || die "--budget-s needs seconds"; budget="$2"; shift 2 ;;
    --tiny) kit_args+=(--tiny); tiny=1; shift ;;
    --sections) [ $# -ge 2 ] || die "--sections needs a list"; sections="$2"; sections_set=1; shift 2 ;;
    --python) [ $# -ge 2 ] || die "--python needs a path"; python_bin="$2"; shift 2 ;;
    --pytorch-budget-s) [ $# -ge 2 ] || die "--pytorch-budget-s needs seconds"; pytorch_budget="$2"; shift 2 ;;
    -h | --help) usage; exit 0 ;;
    *) die "unknown argument: $1 (see --help)" ;;
  esac
done
case "$budget" in '' | *[!0-9]*) die "--budget-s must be a whole number of seconds, got '$budget'" ;; esac
case "$pytorch_budget" in
  '' | *[!0-9]*) die "--pytorch-budget-s must be a whole number of seconds, got '$pytorch_budget'" ;;
esac
# `pytorch` is run.sh's own section; the rest go to the WebGPU kit.
want_pytorch=1
if [ "$sections_set" = 1 ]; then
  want_pytorch=0
  kit_sections=""
  IFS=',' read -ra parts <<<"$sections"
  for part in ${parts[@]+"${parts[@]}"}; do
    part="${part// /}"
    if [ "$part" = pytorch ]; then
      want_pytorch=1
    elif [ -n "$part" ]; then
      kit_sections="${kit_sections:+$kit_sections,}$part"
    fi
  done
  kit_args+=(--sections "$kit_sections")
fi
start_ms=$(( $(date +%s) * 1000 ))

# The kit: beside this script when run from a built kit, or in dist/ when run from the source tree.
if [ -f "$here/mptjs-gpu-kit.mjs" ]; then
  kit="$here"
elif [ -f "$here/dist/mptjs-gpu-kit.mjs" ]; then
  kit="$here/dist"
else
  die "no built kit next to $here: run \`node bench/gpu/build.mjs\` first"
fi

if [ -z "$node_bin" ]; then
  node_bin="$(command -v node || true)"
  [ -n "$node_bin" ] || die "no node binary: pass --node PATH or set NODE"
fi
[ -x "$node_bin" ] || die "node binary '$node_bin' is not executable"
node_version="$("$node_bin" --version)" || die "'$node_bin' does not run"
case "$node_version" in
  v1[0-9].* | v[0-9].*) die "node $node_version is too old: the kit needs node 20 or newer" ;;
esac
echo "node: $node_bin ($node_version)"

lib_dirs=(/usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib /lib/x86_64-linux-gnu /lib64 /usr/local/lib)
find_lib() {
  local name="$1" d
  if command -v ldconfig >/dev/null 2>&1; then
    local hit
    hit="$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n && /x86-64/ { print $NF; exit }')"
    if [ -n "$hit" ]; then echo "$hit"; return 0; fi
  fi
  for d in "${lib_dirs[@]}"; do
    if [ -e "$d/$name" ]; then echo "$d/$name"; return 0; fi
  done
  return 1
}

extra_libs=""
# The Vulkan loader: the system's, else the copy built into the kit.
# MPTJS_KIT_BUNDLED_VULKAN=1 takes the bundled loader even where one is installed (the kit's test does).
if [ "${MPTJS_KIT_BUNDLED_VULKAN:-}" != 1 ] && loader="$(find_lib libvulkan.so.1)"; then
  echo "vulkan loader: $loader"
elif [ -f "$kit/lib/libvulkan.so.1" ]; then
  loader="$kit/lib/libvulkan.so.1"
  extra_libs="$kit/lib"
  echo "vulkan loader: $loader (bundled; none installed here)"
else
  die "no Vulkan loader (libvulkan.so.1) here or in the kit"
fi
export MPTJS_KIT_VULKAN_LOADER="$loader"

# The ICD: an explicit VK_ICD_FILENAMES / VK_DRIVER_FILES wins; else NVIDIA's manifest in the standard places;
# else a manifest written here for the driver's libGLX_nvidia.so.0 (which holds NVIDIA's Vulkan driver).
icd=""
if [ -n "${VK_ICD_FILENAMES:-}" ]; then
  icd="$VK_ICD_FILENAMES"
  echo "vulkan ICD: $icd (from VK_ICD_FILENAMES)"
elif [ -n "${VK_DRIVER_FILES:-}" ]; then
  icd="$VK_DRIVER_FILES"
  echo "vulkan ICD: $icd (from VK_DRIVER_FILES)"
else
  for d in /etc/vulkan/icd.d /usr/share/vulkan/icd.d /usr/local/share/vulkan/icd.d /usr/local/etc/vulkan/icd.d \
    /usr/local/nvidia/share/vulkan/icd.d; do
    for f in "$d"/nvidia*.json; do
      if [ -f "$f" ]; then icd="$f"; break 2; fi
    done
  done
  if [ -n "$icd" ]; then
    echo "vulkan ICD: $icd (NVIDIA, standard location)"
  elif glx="$(find_lib libGLX_nvidia.so.0)"; then
    icd="$(mktemp -d)/nvidia_icd.json"
    printf '{"file_format_version":"1.0.0","ICD":{"library_path":"%s","api_version":"1.3.0"}}\n' "$glx" >"$icd"
    echo "vulkan ICD: $icd (written for $glx; no NVIDIA manifest installed)"
  else
    echo "vulkan ICD: no NVIDIA ICD found; the loader picks whatever is installed" >&2
    echo "  (containers need NVIDIA_DRIVER_CAPABILITIES to include 'graphics' for the Vulkan driver)" >&2
  fi
  if [ -n "$icd" ]; then export VK_ICD_FILENAMES="$icd"; fi
fi

# NVIDIA's Vulkan driver needs glvnd's libGLdispatch.so.0; CUDA-only images may not have it.
if ! find_lib libGLdispatch.so.0 >/dev/null && [ -f "$kit/glvnd/libGLdispatch.so.0" ]; then
  extra_libs="$kit/glvnd${extra_libs:+:$extra_libs}"
  echo "libGLdispatch: bundled copy (none installed here; NVIDIA's Vulkan driver needs it)"
fi

if [ -z "${XDG_RUNTIME_DIR:-}" ]; then
  XDG_RUNTIME_DIR="$(mktemp -d)"
  chmod 700 "$XDG_RUNTIME_DIR"
  export XDG_RUNTIME_DIR
fi

# dawn.node needs GLIBCXX_3.4.30: fall back to the kit's libstdc++ when the system's cannot load it.
dawn="$kit/node_modules/webgpu/dist/linux-x64/dawn.node"
probe() {
  LD_LIBRARY_PATH="$1${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$node_bin" -e "require(process.argv[1])" "$dawn" 2>&1
}
if ! err="$(probe "$extra_libs")"; then
  if [ -f "$kit/compat/libstdc++.so.6" ] && probe "$kit/compat${extra_libs:+:$extra_libs}" >/dev/null; then
    extra_libs="$kit/compat${extra_libs:+:$extra_libs}"
    echo "libstdc++: bundled copy (the system's is too old for Dawn)"
  else
    die "Dawn's addon does not load: $err"
  fi
fi
if [ -n "$extra_libs" ]; then export LD_LIBRARY_PATH="$extra_libs${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; fi

# The PyTorch reference goes first: it leaves the GPU's memory free when it exits, and the WebGPU sections then
# plan with whatever time it left. It gets at most half of the time left.
pt_dir="$(mktemp -d)"
trap 'rm -rf "$pt_dir"' EXIT
pt_skip=""
pt_rc=0
pt_seconds=0
if [ "$want_pytorch" != 1 ]; then
  pt_skip="not among --sections"
elif ! command -v "$python_bin" >/dev/null 2>&1; then
  pt_skip="no python at '$python_bin' (pass --python PATH or set PYTHON)"
elif ! pt_err="$(LD_LIBRARY_PATH="$orig_ld_path" "$python_bin" -c 'import torch' 2>&1)"; then
  pt_skip="torch does not import with $python_bin: $(printf '%s\n' "$pt_err" | tail -n 1)"
else
  pt_budget=$(( (budget - ($(date +%s) - start_ms / 1000)) / 2 ))
  if [ "$pytorch_budget" -lt "$pt_budget" ]; then pt_budget="$pytorch_budget"; fi
  if [ "$pt_budget" -lt 10 ]; then pt_skip="out of time budget (${pt_budget} s for it, needs 10 s)"; fi
fi
if [ -z "$pt_skip" ]; then
  pt_args=(--budget-s "$pt_budget" --out "$pt_dir/pytorch.json")
  if [ "$tiny" = 1 ]; then pt_args+=(--tiny); fi
  echo "pytorch: $python_bin, ${pt_budget} s"
  pt_start=$(date +%s)
  # Its progress lines (stderr) are shown and kept; its stdout repeats the JSON it writes to the file.
  LD_LIBRARY_PATH="$orig_ld_path" timeout --kill-after=5 "$(( pt_budget + 10 ))" \
    "$python_bin" "$kit/pytorch_reference.py" "${pt_args[@]}" 2>&1 >/dev/null | tee "$pt_dir/pytorch.log" ||
    pt_rc=$?
  pt_seconds=$(( $(date +%s) - pt_start ))
else
  echo "pytorch: skipped ($pt_skip)"
fi

# The kit stops starting sections in time; `timeout` is the backstop if one of them hangs.
deadline_ms=$(( start_ms + budget * 1000 ))
elapsed=$(( $(date +%s) - start_ms / 1000 ))
remaining=$(( budget - elapsed ))
[ "$remaining" -gt 0 ] || die "the budget of ${budget} s is spent before starting"
echo "budget: ${budget} s; results: $out"
rc=0
timeout --kill-after=5 "$remaining" "$node_bin" "$kit/mptjs-gpu-kit.mjs" --out "$out" --budget-s "$budget" \
  --deadline-ms "$deadline_ms" ${kit_args[@]+"${kit_args[@]}"} || rc=$?
if [ "$rc" = 124 ] || [ "$rc" = 137 ]; then
  echo "run.sh: stopped at the ${budget} s budget; $out holds the sections finished before" >&2
fi

# The `pytorch` section and the ratios of mptjs's figures to PyTorch's.
if [ -z "$pt_skip" ]; then
  merge_args=(--reference "$pt_dir/pytorch.json" --rc "$pt_rc" --log "$pt_dir/pytorch.log" --seconds "$pt_seconds")
else
  merge_args=(--skip "$pt_skip")
fi
merge_rc=0
"$node_bin" "$kit/pytorch-merge.mjs" --kit "$out" "${merge_args[@]}" || merge_rc=$?
if [ "$rc" = 0 ] && [ "$merge_rc" != 0 ]; then rc=1; fi
exit "$rc"
