#!/usr/bin/env bash
# One device call: every GPU test, a CLI run, compute-sanitizer memcheck/racecheck; logs under $OUT.
# Build and bundle first:  ../shared/device/bundle .devbundle build-fused/tests/gpu_test_* build-fused/fusecheck
set -u
run=.devbundle/run
out=${OUT:-/tmp/gpu-out}
mkdir -p "$out"
nvidia-smi -L
summary() { grep -E "Synthesis|per-layer|matched|pure fp32|tok/s|^\[FAIL|^\[----\].*(Assertion|failed)" "$1" | head -${2:-40}; }
for t in kernels layers engine; do
  jobs=4; [ $t = engine ] && jobs=1
  start=$(date +%s)
  timeout ${TEST_TIMEOUT:-200} $run build-fused/tests/gpu_test_$t --verbose --jobs $jobs >"$out/$t.log" 2>&1
  echo "== gpu_test_$t rc=$? ($(( $(date +%s) - start )) s)"; summary "$out/$t.log"
done
# The CLI end to end on tiny: synth, reference golden (bf16 KV), fused run, compare.
w=$(mktemp -d); f=.devbundle/bin/build-fused/fusecheck
{ $run build-fused/fusecheck synth --preset tiny --seed 0 --out $w/tiny &&
  $run build-fused/fusecheck golden --model $w/tiny --prompt-len 12 --steps 8 --kv-dtype bf16 --out $w/g.h5 &&
  for e in fused cublas; do $run build-fused/fusecheck run --engine $e --model $w/tiny --golden $w/g.h5 --out $w/$e.h5 &&
    $run build-fused/fusecheck compare $w/$e.h5 $w/g.h5; echo "compare $e rc=$?"; done; } >"$out/cli.log" 2>&1
echo "== cli rc=$?"; tail -15 "$out/cli.log"
S=compute-sanitizer
timeout 150 $S --tool memcheck --leak-check no $run build-fused/tests/gpu_test_kernels --jobs 1 >"$out/memcheck_kernels.log" 2>&1
echo "== memcheck kernels rc=$?"; grep -E "ERROR SUMMARY|Synthesis" "$out/memcheck_kernels.log" | sort | uniq -c | head
timeout 100 $S --tool memcheck $run build-fused/tests/gpu_test_layers --jobs 1 --filter 'layers/tiny*' >"$out/memcheck_layers.log" 2>&1
echo "== memcheck layers(tiny) rc=$?"; grep -E "ERROR SUMMARY|Synthesis" "$out/memcheck_layers.log" | sort | uniq -c | head
timeout 100 $S --tool racecheck $run build-fused/tests/gpu_test_kernels --jobs 1 --filter 'kernels/[mlqo]*' >"$out/racecheck_kernels.log" 2>&1
echo "== racecheck kernels rc=$?"; grep -E "RACECHECK SUMMARY|ERROR SUMMARY|Synthesis" "$out/racecheck_kernels.log" | sort | uniq -c | head
# Per-kernel time of decode steps on qwen3-0.6b (NCU=1): the first 12 fused-kernel launches after warm-up.
if [ "${NCU:-0}" = 1 ]; then
  timeout 200 ncu --metrics gpu__time_duration.sum,dram__bytes_read.sum -k 'regex:rmsnorm_qkv|attention_|output_proj|mlp_fused|lm_head|embed_kernel' \
    --launch-skip 300 --launch-count 14 $run build-fused/tests/gpu_test_engine --jobs 1 --filter 'engine/qwen3_0_6b_throughput' >"$out/ncu.log" 2>&1
  echo "== ncu rc=$?"; grep -E "^  [a-z_]+.*\(|gpu__time_duration|dram__bytes_read" "$out/ncu.log" | head -60
fi
