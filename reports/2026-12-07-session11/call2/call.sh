#!/usr/bin/env bash
# Session 11's second device call, after next-call.sh (session10) showed PT (branch dataflow-tile-diet,
# 5bfe28f) the winner and SPT racy: racecheck and memcheck of PT and racecheck of H on the long splits
# and the default profile first (SPT's racecheck reported group_sum, merge_group and run_attention
# hazards; is any of that in H or PT?), then the records of PT, qwen3-8b benches of H and X, PT's
# timelines and ncu's warp-stall samples of PT at 1024. Every step's output goes into $OUT/h.tgz.
# Run: `run` with carry [".devbundle6"], command `bash .devbundle6/next-call-3.sh`, timeout 560 s.
. "$(dirname "$0")/call-prelude.sh"
R=PT
$B/run build/ab8/fusecheck-$R --version | tee -a $L
san racecheck PT 'dataflow/small_with_long*' long-splits
san racecheck H 'dataflow/small_with_long*' long-splits
san memcheck PT 'dataflow/small_with_long*' long-splits
san memcheck PT 'dataflow/small_matches*' small
san racecheck PT 'dataflow/small_matches*' small
timeout 150 $B/run build/ab8/fusecheck-$R bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record $R rc=$?"; grep -E "^\| (fused|cublas|dataflow|reference) " $Y/record-0.6b.log | tee -a $L
timeout 150 $B/run build/ab8/fusecheck-$R bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record $R rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
rm -f $Y/rep/BENCHMARKS.md $Y/rep/throughput_history.svg
for b in H X; do timeout 100 $B/run build/ab8/fusecheck-$b bench --preset qwen3-8b --engine dataflow --context 1024 --repeat 3 > $Y/8b-$b.log 2>&1; t "8b $b rc=$? $(grep -E '^\| dataflow ' $Y/8b-$b.log)"; done
timeline PT qwen3-0.6b 1024 32
timeline H qwen3-0.6b 1024 32
timeline PT qwen3-0.6b 16384 32
timeline PT qwen3-8b 1024 8
t timelines
timeout 90 ncu --clock-control none --section WarpStateStats --section SourceCounters --section SchedulerStats \
  -k regex:dataflow_decode --launch-skip 20 --launch-count 1 -o $Y/ncu-$R \
  $B/run build/ab8/fusecheck-$R bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 8 --repeat 1 > $Y/ncu-$R.log 2>&1
t "ncu $R rc=$?"
timeout 30 ncu -i $Y/ncu-$R.ncu-rep --page source --csv --print-source sass > $Y/ncu-$R-source.csv 2> $Y/ncu-$R-source.err
t "ncu source page rc=$? $(wc -l < $Y/ncu-$R-source.csv) lines"
timeout 20 ncu -i $Y/ncu-$R.ncu-rep --page details > $Y/ncu-$R-details.txt 2>&1
t "ncu details rc=$?"
