#!/usr/bin/env bash
# The seventh session's first call (fused/dataflow/NOTES.md, Next 1, 2 and 5), most important first;
# every step's output is tarred into $OUT/x.tgz as it goes ($OUT returns only a few files).
# Bundle, here (.devbundle is ignored; the carry limit is 64 MiB):
#   build/ab/fusecheck-M, gpu_test_dataflow-M   HEAD's build (its rows carry the build's commit)
#   build/ab/gpu_test_dataflow-B   M with the epoch reset's three cudaMemsetAsync removed: the
#                                  epoch_reset test must fail (it hung on 2026-12-07, now a 120 s limit)
#   build/ab/fusecheck-T   M with attention's marks moved (diagnostic, never merged): in run_attention,
#                          mark(c, DATAFLOW_MARK_INPUTS) where it marks STAGED after the heads' norm, and
#                          `if (piece == begin) mark(c, DATAFLOW_MARK_STAGED);` after the piece's mbarrier_wait.
#                          Its attention row: "counter wait" = until the heads are staged, "staging" = until
#                          the first K/V piece has landed, "compute" = the rest
#   ../shared/device/bundle .devbundle build/ab/* && (cd .devbundle && tar -cJf bin.tar.xz bin && rm -rf bin)
# Run: `run` with carry [".devbundle"], command `bash .devbundle/next-call.sh`, timeout ~400 s.
set -u
B=.devbundle
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
X=/tmp/x; mkdir -p $X/rep; L=$X/log.txt
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/x.tgz -C /tmp x; }
nvidia-smi -L | tee -a $L
$B/run build/ab/fusecheck-M --version | tee -a $L
timeout 150 $B/run build/ab/gpu_test_dataflow-M --jobs 1 > $X/tests.log 2>&1; t "test M rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $X/tests.log | head -12 | tee -a $L
for tool in memcheck racecheck; do
  timeout 80 compute-sanitizer --tool $tool $B/run build/ab/gpu_test_dataflow-M --filter 'dataflow/small_matches_reference' --jobs 1 > $X/san-$tool.log 2>&1
  t "$tool M rc=$? $(tail -1 $X/san-$tool.log)"
done
timeout 150 $B/run build/ab/fusecheck-M bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $X/rep > $X/record-0.6b.log 2>&1; t "record rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $X/record-0.6b.log | tee -a $L
rm -f $X/rep/BENCHMARKS.md $X/rep/throughput_history.svg
for v in M T; do for sk in 0 1; do
  [ $v = T ] && [ $sk = 1 ] && continue
  FUSECHECK_DATAFLOW_SKELETON=$sk FUSECHECK_DATAFLOW_TIMELINE=1 timeout 30 $B/run build/ab/fusecheck-$v bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1
  echo "build $v skeleton $sk" >> $X/timeline.txt; grep -A9 'dataflow timeline' /tmp/tl.log >> $X/timeline.txt
done; done; t timelines
timeout 150 $B/run build/ab/fusecheck-M bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $X/rep > $X/record-8b.log 2>&1; t "8b record rc=$?"; grep -E "^\| (fused|dataflow) " $X/record-8b.log | tee -a $L
rm -f $X/rep/BENCHMARKS.md $X/rep/throughput_history.svg
timeout 150 $B/run build/ab/gpu_test_dataflow-B --filter 'dataflow/epoch_reset*' --jobs 1 > $X/b.log 2>&1; t "planted break B (no clearing at the epoch reset) rc=$? $(grep -E 'differ|Timed|timed|Synthesis' $X/b.log | head -3 | tr '\n' ' ')"
