#!/usr/bin/env bash
# The next device call. Prepared in the ninth session as session9/next-call-h.sh and moved here, extended,
# in the tenth, which had no device time. Main's kernel H (b3608ed) has not run as such; 08b9d1a (the
# same kernel plus the default-off L2 prefetch) ran on an H100 (NOTES v10). LM and X (branches
# dataflow-lm, dataflow-runs) ride along, and P (branch dataflow-poll: the batched waits of v11); BW2
# and BX are the planted breaks of the two matched-profile tests no GPU has run. Last, if time is left:
# ncu's warp-stall samples per SASS instruction of H at 1024 (v11: the staging's first check waits on
# the weights' scoreboard; how much of the chain that is).
# Every step's output is tarred into $OUT/h.tgz as it goes.
# Bundle: `bash reports/2026-12-07-session10/build-bundle.sh` (builds, packs .devbundle6/, copies this file).
# Run: `run` with carry [".devbundle6"], command `bash .devbundle6/next-call.sh`, timeout 560 s; on the H200.
set -u
B=$(dirname "$0")
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
Y=/tmp/h; mkdir -p $Y/rep; L=$Y/log.txt
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/h.tgz -C /tmp h; }
nvidia-smi -L | tee -a $L
$B/run build/ab8/fusecheck-H --version | tee -a $L
timeout 300 $B/run build/ab8/gpu_test_dataflow-H --jobs 1 > $Y/tests-H.log 2>&1; t "test H rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL' $Y/tests-H.log | head -24 | tee -a $L
timeout 150 $B/run build/ab8/gpu_test_dataflow-P --jobs 1 > $Y/tests-P.log 2>&1; t "test P (the batched waits) rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL' $Y/tests-P.log | head -24 | tee -a $L
timeout 60 $B/run build/ab8/gpu_test_dataflow-BW2 --filter 'dataflow/small_with_long*' --jobs 1 > $Y/bw2.log 2>&1; t "planted break BW2 (the warps' combine not rescaled) rc=$? $(grep -E 'matched profile \(|Synthesis' $Y/bw2.log | head -2 | tr '\n' ' ')"
san() {  # tool, filter, label
  timeout 120 compute-sanitizer --tool $1 $B/run build/ab8/gpu_test_dataflow-H --filter "$2" --jobs 1 > $Y/san-$1-$3.log 2>&1
  t "$1 $3 rc=$? $(tail -1 $Y/san-$1-$3.log)"
}
san memcheck 'dataflow/small_with_long*' long-splits
timeout 150 $B/run build/ab8/gpu_test_dataflow-X --filter 'dataflow/qwen3_0_6b*' --jobs 1 > $Y/tests-X.log 2>&1; t "test X (qwen3-0.6b: default and 32 KB tiles) rc=$?"
grep -E 'matched profile \(|Synthesis|FAIL' $Y/tests-X.log | head -8 | tee -a $L
timeout 100 $B/run build/ab8/gpu_test_dataflow-BX --filter 'dataflow/qwen3_0_6b_with_several*' --jobs 1 > $Y/bx.log 2>&1; t "planted break BX (a run's next tile issued before the dots) rc=$? $(grep -E 'matched profile \(|Synthesis' $Y/bx.log | head -2 | tr '\n' ' ')"
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab8/fusecheck-M build/ab8/fusecheck-H build/ab8/fusecheck-P build/ab8/fusecheck-LM build/ab8/fusecheck-X > $Y/ab.txt 2>&1; t "ab done"; tail -6 $Y/ab.txt | tee -a $L
for b in H X; do timeout 100 $B/run build/ab8/fusecheck-$b bench --preset qwen3-8b --engine dataflow --context 1024 --repeat 3 > $Y/8b-$b.log 2>&1; t "8b $b rc=$? $(grep -E '^\| dataflow ' $Y/8b-$b.log)"; done
cp /tmp/ab/* $Y/ 2>/dev/null
timeout 150 $B/run build/ab8/fusecheck-H bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record H rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $Y/record-0.6b.log | tee -a $L
rm -f $Y/rep/BENCHMARKS.md $Y/rep/throughput_history.svg
san racecheck 'dataflow/small_with_long*' long-splits
for ctx in 1024 16384; do
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 40 $B/run build/ab8/fusecheck-H bench --preset qwen3-0.6b --engine dataflow --context $ctx --tokens 32 --repeat 1 > /tmp/tl.log 2>&1
  echo "build H context $ctx" >> $Y/timeline.txt; grep -A10 'dataflow timeline' /tmp/tl.log >> $Y/timeline.txt
done
FUSECHECK_DATAFLOW_TIMELINE=1 timeout 40 $B/run build/ab8/fusecheck-P bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1
echo "build P context 1024" >> $Y/timeline.txt; grep -A10 'dataflow timeline' /tmp/tl.log >> $Y/timeline.txt
t timelines
timeout 150 $B/run build/ab8/fusecheck-H bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
rm -f $Y/rep/BENCHMARKS.md $Y/rep/throughput_history.svg
for b in H X; do
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 60 $B/run build/ab8/fusecheck-$b bench --preset qwen3-8b --engine dataflow --context 1024 --tokens 8 --repeat 1 > /tmp/tl.log 2>&1
  echo "build $b qwen3-8b context 1024" >> $Y/timeline.txt; grep -A10 'dataflow timeline' /tmp/tl.log >> $Y/timeline.txt
done
t "8b timelines"
# ncu last, only with time left: one launch of H at 1024, stall samples per SASS instruction.
if [ $(( $(date +%s) - T0 )) -lt 440 ]; then
  timeout 90 ncu --clock-control none --section WarpStateStats --section SourceCounters --section SchedulerStats \
    -k regex:dataflow_decode --launch-skip 20 --launch-count 1 -o $Y/ncu-H \
    $B/run build/ab8/fusecheck-H bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 8 --repeat 1 > $Y/ncu-H.log 2>&1
  t "ncu H rc=$?"
  timeout 30 ncu -i $Y/ncu-H.ncu-rep --page source --csv --print-source sass > $Y/ncu-H-source.csv 2> $Y/ncu-H-source.err
  t "ncu source page rc=$? $(wc -l < $Y/ncu-H-source.csv) lines"
  timeout 20 ncu -i $Y/ncu-H.ncu-rep --page details > $Y/ncu-H-details.txt 2>&1
  t "ncu details rc=$?"
fi
