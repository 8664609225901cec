#!/usr/bin/env bash
# Everything that needs a GPU, in one go, for a lent GPU machine that has no build tools for this
# project: run it from the checkout root with executables bundled by ../shared/device/bundle.
#
#   here:  cmake --build build && ../shared/device/bundle .devbundle build/fusecheck build/tests/gpu_test_*
#   there: OUT=/some/dir tools/gpu_validate.sh .devbundle build [PART]   (rows carry the commit the bundled
#          build comes from: build from a clean commit, or set FUSECHECK_COMMIT)
#
# PART: all (default), tests (GPU tests and compute-sanitizer), gate (the gate and a recorded bench), or
# long (the 8,192-token long run alone, 330-400 s on an H100), so that each fits a lent machine's
# limit on one command.
#
# Writes under $OUT (few files, so a lent machine's transfer limits hold): logs.tar (one log per GPU
# test, the compute-sanitizer logs, gate.log, bench.log), gate-report.tar (the gate's report folder),
# benchmarks.jsonl and BENCHMARKS.md (the recorded bench rows), summary.txt; prints a summary last.
set -u
bundle=${1:-.devbundle}
build=${2:-build}
part=${3:-all}
case $part in all|tests|gate|long) ;; *) echo "gpu_validate.sh: PART must be all, tests, gate or long, not '$part'" >&2; exit 2;; esac
top=${OUT:?set OUT to a folder for the logs}
out=$top/logs
run="$bundle/run"
export FUSECHECK_CACHE=${FUSECHECK_CACHE:-/tmp/fusecheck-cache}
mkdir -p "$out"
nvidia-smi -L | tee "$out/gpu.txt"
summary() { grep -hE "Synthesis|per-layer|matched|pure fp32|greedy|determinism|long run|^\[FAIL|Assertion" "$@" | head -40; }

if [ "$part" = long ]; then
  start=$(date +%s)
  timeout 550 "$run" "$build/tests/gpu_test_long_run" --verbose --jobs 1 >"$out/test_long_run.log" 2>&1
  echo "== gpu_test_long_run rc=$? ($(( $(date +%s) - start )) s)" | tee -a "$out/summary.txt"
fi

if [ "$part" = all ] || [ "$part" = tests ]; then
for t in kernels layers engine robustness; do
  start=$(date +%s)
  timeout 300 "$run" "$build/tests/gpu_test_$t" --verbose --jobs 1 >"$out/test_$t.log" 2>&1
  echo "== gpu_test_$t rc=$? ($(( $(date +%s) - start )) s)" | tee -a "$out/summary.txt"
done

S=compute-sanitizer
timeout 200 $S --tool memcheck --leak-check no "$run" "$build/tests/gpu_test_kernels" --jobs 1 >"$out/memcheck_kernels.log" 2>&1
echo "== memcheck kernels rc=$?: $(grep -h "ERROR SUMMARY" "$out/memcheck_kernels.log" | sort | uniq -c | tr '\n' ' ')" | tee -a "$out/summary.txt"
timeout 150 $S --tool memcheck "$run" "$build/tests/gpu_test_layers" --jobs 1 --filter 'layers/tiny*' >"$out/memcheck_layers.log" 2>&1
echo "== memcheck layers(tiny) rc=$?: $(grep -h "ERROR SUMMARY" "$out/memcheck_layers.log" | sort | uniq -c | tr '\n' ' ')" | tee -a "$out/summary.txt"
timeout 200 $S --tool racecheck "$run" "$build/tests/gpu_test_kernels" --jobs 1 >"$out/racecheck_kernels.log" 2>&1
echo "== racecheck kernels rc=$?: $(grep -h "RACECHECK SUMMARY" "$out/racecheck_kernels.log" | sort | uniq -c | tr '\n' ' ')" | tee -a "$out/summary.txt"
fi

if [ "$part" = all ] || [ "$part" = gate ]; then
report=reports/gate-gpu
timeout 400 "$run" "$build/fusecheck" gate --preset qwen3-0.6b --min-tok-s 2000 --report-dir "$report" >"$out/gate.log" 2>&1
echo "== gate rc=$? (0 pass, 1 accuracy, 3 below 2000 tok/s)" | tee -a "$out/summary.txt"
tar -cf "$top/gate-report.tar" -C reports gate-gpu 2>/dev/null

timeout 200 "$run" "$build/fusecheck" bench --preset qwen3-0.6b --record --reports reports >"$out/bench.log" 2>&1
echo "== bench --record rc=$?" | tee -a "$out/summary.txt"
cp reports/benchmarks.jsonl reports/BENCHMARKS.md "$top/" 2>/dev/null
fi

echo; summary "$out"/test_*.log
echo; grep -A 12 "^== throughput" "$out/gate.log" 2>/dev/null | head -14
echo; cat "$out/summary.txt"
cp "$out/summary.txt" "$top/summary.txt"
tar -cf "$top/logs.tar" -C "$top" logs && rm -rf "$out"
