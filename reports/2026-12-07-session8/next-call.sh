#!/usr/bin/env bash
# The eighth session's device call (session 7's next-call.sh, which never ran, plus V9 and W), most
# important first; every step's output is tarred into $OUT/x.tgz as it goes ($OUT returns few files).
# Bundle, here (.devbundle is ignored by git):
#   build/ab2/fusecheck-M   de6b838's build: 33ff308's kernel (HEAD before this session)
#   build/ab2/fusecheck-N   478ff20: o_proj by rows, gate/up's page (the old defaults) on this session's code
#   build/ab2/fusecheck-X, gpu_test_dataflow-X   754ed54: defaults o_proj by kv head, pages gate_up,down
#   build/ab2/fusecheck-T   de6b838 with attention's marks moved (diagnostic; NOTES v7, Next 2)
#   build/ab2/fusecheck-V9  b1773d6 (branch dataflow-v9): X with attention's steps on the timeline
#   build/ab2/fusecheck-W, gpu_test_dataflow-W  7eb6b79 (branch dataflow-v9w): V9 with attention by warps
#   build/ab2/gpu_test_dataflow-B   de6b838 without the epoch reset's clearing (a planted break)
#   ../shared/device/bundle .devbundle build/ab2/* && (cd .devbundle && tar -cJf bin.tar.xz bin && rm -rf bin lib)
# Run: `run` with carry [".devbundle"], command `bash .devbundle/next-call.sh`, timeout ~400-520 s (the planted break, last, may be cut).
set -u
B=.devbundle
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
variant() {  # name, o_proj by kv head (0/1), pages: X under other options, as a build of its own
  printf '#!/bin/sh\nFUSECHECK_DATAFLOW_OPROJ_BY_KV_HEAD=%s FUSECHECK_DATAFLOW_PAGES=%s exec "$(dirname "$0")/fusecheck-X" "$@"\n' "$2" "$3" > $B/bin/build/ab2/fusecheck-$1
  chmod +x $B/bin/build/ab2/fusecheck-$1
}
variant XN 0 gate_up; variant XH 1 gate_up; variant XD 0 gate_up,down; variant XHQ 1 qkv,gate_up
export FUSECHECK_CACHE=/tmp/fc-cache
X=/tmp/x; mkdir -p $X/rep $X/rep-n; L=$X/log.txt
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/x.tgz -C /tmp x; }
nvidia-smi -L | tee -a $L
$B/run build/ab2/fusecheck-X --version | tee -a $L
timeout 240 $B/run build/ab2/gpu_test_dataflow-X --jobs 1 > $X/tests.log 2>&1; t "test X rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $X/tests.log | head -20 | tee -a $L
for tool in memcheck racecheck; do
  timeout 80 compute-sanitizer --tool $tool $B/run build/ab2/gpu_test_dataflow-X --filter 'dataflow/small_matches_reference' --jobs 1 > $X/san-$tool.log 2>&1
  t "$tool X rc=$? $(tail -1 $X/san-$tool.log)"
done
timeout 120 $B/run build/ab2/gpu_test_dataflow-W --jobs 1 > $X/tests-W.log 2>&1; t "test W rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $X/tests-W.log | head -20 | tee -a $L
for tool in memcheck racecheck; do
  timeout 80 compute-sanitizer --tool $tool $B/run build/ab2/gpu_test_dataflow-W --filter 'dataflow/small_matches_reference' --jobs 1 > $X/san-$tool-W.log 2>&1
  t "$tool W rc=$? $(tail -1 $X/san-$tool-W.log)"
done
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab2/fusecheck-M build/ab2/fusecheck-XN build/ab2/fusecheck-XH build/ab2/fusecheck-XD build/ab2/fusecheck-X build/ab2/fusecheck-XHQ build/ab2/fusecheck-W > $X/ab.txt 2>&1; t "ab done"; tail -10 $X/ab.txt | tee -a $L
timeout 150 $B/run build/ab2/fusecheck-X bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $X/rep > $X/record-0.6b.log 2>&1; t "record X rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $X/record-0.6b.log | tee -a $L
rm -f $X/rep/BENCHMARKS.md $X/rep/throughput_history.svg
timeout 100 $B/run build/ab2/fusecheck-N bench --preset qwen3-0.6b --engine dataflow --repeat 3 --record --reports $X/rep-n > $X/record-n.log 2>&1; t "record N rc=$?"; grep -E "^\| dataflow " $X/record-n.log | tee -a $L
rm -f $X/rep-n/BENCHMARKS.md $X/rep-n/throughput_history.svg
tl() {  # label, context, env..., build: a timeline of one launch at the context
  local label=$1 ctx=$2; shift 2
  env FUSECHECK_DATAFLOW_TIMELINE=1 "${@:1:$#-1}" timeout 40 $B/run build/ab2/fusecheck-${@: -1} bench --preset qwen3-0.6b --engine dataflow --context $ctx --tokens 32 --repeat 1 > /tmp/tl.log 2>&1
  echo "build $label context $ctx" >> $X/timeline.txt; grep -A10 'dataflow timeline' /tmp/tl.log >> $X/timeline.txt
}
# V9 (b1773d6, branch dataflow-v9) is X with attention's compute step in five parts on the timeline.
for ctx in 1024 4096 16384; do
  tl V9 $ctx A=1 V9; tl "V9 skeleton" $ctx FUSECHECK_DATAFLOW_SKELETON=1 V9
  tl "V9 by rows, gate_up" $ctx FUSECHECK_DATAFLOW_OPROJ_BY_KV_HEAD=0 FUSECHECK_DATAFLOW_PAGES=gate_up V9
  tl W $ctx A=1 W
  t "timelines $ctx"
done
tl T 1024 A=1 T; tl M 1024 A=1 M; t timelines
timeout 150 $B/run build/ab2/fusecheck-X bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $X/rep > $X/record-8b.log 2>&1; t "8b record rc=$?"; grep -E "^\| (fused|dataflow) " $X/record-8b.log | tee -a $L
rm -f $X/rep/BENCHMARKS.md $X/rep/throughput_history.svg
cp /tmp/ab/* $X/ 2>/dev/null; t "ab logs"
timeout 130 $B/run build/ab2/gpu_test_dataflow-B --filter 'dataflow/epoch_reset*' --jobs 1 > $X/b.log 2>&1; t "planted break B (no clearing at the epoch reset) rc=$? $(grep -E 'differ|Timed|timed|Synthesis' $X/b.log | head -3 | tr '\n' ' ')"
