#!/usr/bin/env bash
# The main job on a built-in synthetic model: installs dependencies, builds, writes a checkpoint,
# makes reference golden traces for both precision profiles, compares them, and, when a CUDA device
# is present, runs the fused engine teacher-forced and compares it with the matched-profile golden.
#
#   tools/demo.sh [PRESET]      PRESET: small (default), tiny, qwen3-0.6b, ...
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-small}
tools/build.sh >/dev/null
bin=${FUSECHECK_BUILD_DIR:-build}/fusecheck
work=${FUSECHECK_WORK_DIR:-reports/demo-$preset}
mkdir -p "$work"

echo "== synthetic checkpoint: $preset"
"$bin" synth --preset "$preset" --seed 0 --out "$work/model"
echo "== reference golden traces (16 prompt tokens + 16 decode steps)"
"$bin" golden --model "$work/model" --prompt-len 16 --seed 1 --steps 16 --kv-dtype bf16 --out "$work/reference-kv-bf16.h5"
"$bin" golden --model "$work/model" --prompt-len 16 --seed 1 --steps 16 --kv-dtype f32 --out "$work/reference-kv-f32.h5"
echo "== the accuracy cost of a bf16 KV cache (reference bf16 vs reference fp32; reported, not gated)"
"$bin" compare "$work/reference-kv-bf16.h5" "$work/reference-kv-f32.h5" --max-rel-l2 1e-1 --max-norm-max 1e-1 \
  --report "$work/kv-cost" || true

if "$bin" devices >/dev/null 2>"$work/gpu-probe.txt"; then
  echo "== fused engine, teacher-forced on the golden tokens"
  "$bin" run --engine fused --model "$work/model" --golden "$work/reference-kv-bf16.h5" --out "$work/fused.h5"
  echo "== gate: fused vs matched-profile reference (rel_l2 and norm_max <= 1e-3)"
  "$bin" compare "$work/fused.h5" "$work/reference-kv-bf16.h5" --report "$work/accuracy"
else
  echo "== fused engine skipped: $(head -n 1 "$work/gpu-probe.txt" | sed 's/^fusecheck devices: //')"
fi
echo "reports under $work/"
