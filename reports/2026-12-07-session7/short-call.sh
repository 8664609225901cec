#!/usr/bin/env bash
# next-call.sh cut to fit the device time left after a machine was taken back mid-call (547 s):
# tests, A/B, records, sanitizers, two timelines; no diagnostic build, no planted break.
# Run: `run` with carry [".devbundle"], command `bash reports/2026-12-07-session7/short-call.sh`, timeout 330 s.
set -u
B=.devbundle
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
variant() {  # name, o_proj by kv head (0/1), pages: X under other options, as a build of its own
  printf '#!/bin/sh\nFUSECHECK_DATAFLOW_OPROJ_BY_KV_HEAD=%s FUSECHECK_DATAFLOW_PAGES=%s exec "$(dirname "$0")/fusecheck-X" "$@"\n' "$2" "$3" > $B/bin/build/ab2/fusecheck-$1
  chmod +x $B/bin/build/ab2/fusecheck-$1
}
variant XN 0 gate_up; variant XH 1 gate_up; variant XD 0 gate_up,down
export FUSECHECK_CACHE=/tmp/fc-cache
X=/tmp/x; mkdir -p $X/rep; L=$X/log.txt
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/x.tgz -C /tmp x; }
nvidia-smi -L | tee -a $L
$B/run build/ab2/fusecheck-X --version | tee -a $L
timeout 150 $B/run build/ab2/gpu_test_dataflow-X --jobs 1 > $X/tests.log 2>&1; t "test X rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $X/tests.log | head -20 | tee -a $L
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=1024,4096 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab2/fusecheck-M build/ab2/fusecheck-XN build/ab2/fusecheck-XH build/ab2/fusecheck-XD build/ab2/fusecheck-X > $X/ab.txt 2>&1; t "ab done"; tail -7 $X/ab.txt | tee -a $L
timeout 100 $B/run build/ab2/fusecheck-X bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $X/rep > $X/record-0.6b.log 2>&1; t "record X rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $X/record-0.6b.log | tee -a $L
rm -f $X/rep/BENCHMARKS.md $X/rep/throughput_history.svg
for tool in memcheck racecheck; do
  timeout 60 compute-sanitizer --tool $tool $B/run build/ab2/gpu_test_dataflow-X --filter 'dataflow/small_matches_reference' --jobs 1 > $X/san-$tool.log 2>&1
  t "$tool X rc=$? $(tail -1 $X/san-$tool.log)"
done
timeout 90 $B/run build/ab2/fusecheck-X bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $X/rep > $X/record-8b.log 2>&1; t "8b record rc=$?"; grep -E "^\| (fused|dataflow) " $X/record-8b.log | tee -a $L
rm -f $X/rep/BENCHMARKS.md $X/rep/throughput_history.svg
for v in X XN; do
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 20 $B/run build/ab2/fusecheck-$v bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1
  echo "build $v" >> $X/timeline.txt; grep -A9 'dataflow timeline' /tmp/tl.log >> $X/timeline.txt
done; cp /tmp/ab/* $X/ 2>/dev/null; t timelines
