#!/usr/bin/env bash
# Session 11's third device call: PX (branch dataflow-poll-runs: X's runs of one projection's tiles,
# 5db4cd1 and 2f667df, on main's merged PT, 8ed4454) against PT (5bfe28f, the same kernel as main):
# PX's GPU suite, memcheck (long splits; 32 KB tiles, so a block runs several tiles), the
# A/B at 128/1024/4096/16384, qwen3-8b benches of PT and PX, PX's records and 8B timeline, and ncu's
# warp-stall samples of PT at 1024 (session 11's second call skipped more launches than it made), and
# last, racecheck of PX with 32 KB tiles (qwen3-0.6b under racecheck: it may not finish).
# Bundle: fusecheck-PT, fusecheck-PX, gpu_test_dataflow-PX in .devbundle7 (see build-bundle.sh beside this file).
# Run: `run` with carry [".devbundle7"], command `bash .devbundle7/next-call-4.sh`, timeout 560 s.
. "$(dirname "$0")/call-prelude.sh"
$B/run build/ab8/fusecheck-PX --version | tee -a $L
timeout 100 $B/run build/ab8/gpu_test_dataflow-PX --jobs 1 > $Y/tests-PX.log 2>&1; t "test PX rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL' $Y/tests-PX.log | head -24 | tee -a $L
san memcheck PX 'dataflow/small_with_long*' long-splits
san memcheck PX 'dataflow/qwen3_0_6b_with_several*' 32kb-tiles
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=3 OUT=/tmp/ab tools/gpu_ab.sh build/ab8/fusecheck-{PT,PX} > $Y/ab.txt 2>&1; t "ab done"; tail -3 $Y/ab.txt | tee -a $L
cp /tmp/ab/* $Y/ 2>/dev/null
for b in PT PX; do timeout 100 $B/run build/ab8/fusecheck-$b bench --preset qwen3-8b --engine dataflow --context 1024 --repeat 3 > $Y/8b-$b.log 2>&1; t "8b $b rc=$? $(grep -E '^\| dataflow ' $Y/8b-$b.log)"; done
timeout 150 $B/run build/ab8/fusecheck-PX bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record PX rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $Y/record-0.6b.log | tee -a $L
timeout 150 $B/run build/ab8/fusecheck-PX bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record PX rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
rm -f $Y/rep/BENCHMARKS.md $Y/rep/throughput_history.svg
timeline PX qwen3-8b 1024 8
timeline PX qwen3-0.6b 1024 32
t timelines
timeout 90 ncu --clock-control none --section WarpStateStats --section SourceCounters --section SchedulerStats \
  -k regex:dataflow --launch-skip 6 --launch-count 1 -o $Y/ncu-PT \
  $B/run build/ab8/fusecheck-PT bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 16 --repeat 1 > $Y/ncu-PT.log 2>&1
t "ncu PT rc=$? $(grep -c 'PROF' $Y/ncu-PT.log)"
timeout 30 ncu -i $Y/ncu-PT.ncu-rep --page source --csv --print-source sass > $Y/ncu-PT-source.csv 2> $Y/ncu-PT-source.err
t "ncu source page rc=$? $(wc -l < $Y/ncu-PT-source.csv) lines"
timeout 20 ncu -i $Y/ncu-PT.ncu-rep --page details > $Y/ncu-PT-details.txt 2>&1
t "ncu details rc=$?"
timeout 150 compute-sanitizer --tool racecheck $B/run build/ab8/gpu_test_dataflow-PX --filter 'dataflow/qwen3_0_6b_with_several*' --jobs 1 > $Y/san-racecheck-PX-32kb.log 2>&1
t "racecheck PX 32kb-tiles rc=$? $(tail -1 $Y/san-racecheck-PX-32kb.log)"
