#!/usr/bin/env bash
# The next session's second device call, after next-call.sh and the merge of what won: `--record` of
# every engine on qwen3-0.6b and of fused and dataflow on qwen3-8b, qwen3-8b benches of H, X and SPT,
# timelines (H, PT, SPT and REC at 1024; REC at 16384 and on 8B; X on 8B), and ncu's warp-stall
# samples per SASS instruction at 1024 (v11: how much of the chain the staging's scoreboard wait is).
# REC names the build to record (default H; rebuild the bundle with the merged main's build under a
# label of its own if it is none of H, P, PT, SPT, LM, X). Every step's output goes into $OUT/h.tgz.
# Run: `run` with carry [".devbundle6"], command `REC=H bash .devbundle6/next-call-2.sh`, timeout 560 s.
. "$(dirname "$0")/call-prelude.sh"
R=${REC:-H}
$B/run build/ab8/fusecheck-$R --version | tee -a $L
timeout 150 $B/run build/ab8/fusecheck-$R bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record $R rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $Y/record-0.6b.log | tee -a $L
timeout 150 $B/run build/ab8/fusecheck-$R bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record $R rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
rm -f $Y/rep/BENCHMARKS.md $Y/rep/throughput_history.svg
for b in H X SPT; do timeout 100 $B/run build/ab8/fusecheck-$b bench --preset qwen3-8b --engine dataflow --context 1024 --repeat 3 > $Y/8b-$b.log 2>&1; t "8b $b rc=$? $(grep -E '^\| dataflow ' $Y/8b-$b.log)"; done
for b in H PT SPT; do timeline $b qwen3-0.6b 1024 32; done
[ "$R" = H ] || [ "$R" = PT ] || [ "$R" = SPT ] || timeline $R qwen3-0.6b 1024 32
timeline $R qwen3-0.6b 16384 32
timeline $R qwen3-8b 1024 8
timeline X qwen3-8b 1024 8
t timelines
timeout 90 ncu --clock-control none --section WarpStateStats --section SourceCounters --section SchedulerStats \
  -k regex:dataflow_decode --launch-skip 20 --launch-count 1 -o $Y/ncu-$R \
  $B/run build/ab8/fusecheck-$R bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 8 --repeat 1 > $Y/ncu-$R.log 2>&1
t "ncu $R rc=$?"
timeout 30 ncu -i $Y/ncu-$R.ncu-rep --page source --csv --print-source sass > $Y/ncu-$R-source.csv 2> $Y/ncu-$R-source.err
t "ncu source page rc=$? $(wc -l < $Y/ncu-$R-source.csv) lines"
timeout 20 ncu -i $Y/ncu-$R.ncu-rep --page details > $Y/ncu-$R-details.txt 2>&1
t "ncu details rc=$?"
