#!/usr/bin/env bash
# The next session's second device call (prepared in the twelfth, NOTES v13), after next-call.sh:
# OL2's GPU suite (its prefetch runs in the 32 KB-tile tests' kernels with runs) and memcheck there;
# a qwen3-4b matched run of main (19 LM head rows a tile: the only preset whose LM head groups of 4
# rows straddle two tiles, the path whose planted break BLMV no GPU test could catch); ncu's warp
# states and instruction statistics for M, P5, QD and LEAN at 1024 (the losers' kernels are 12%
# larger: 13,008 and 13,056 SASS instructions against main's 11,576, LEAN's 10,880: is the loss
# instruction fetch, no_instruction stalls, or the work?); LEAN's planted break BLEAN (untraced
# logits off by 1e-3: only the untraced-against-traced bit-identity test can see it); racecheck of M
# on small. About 520 s.
# Run: `run` with carry [".devbundle9"], command `bash .devbundle9/next-call-2.sh`, timeout 560 s.
. "$(dirname "$0")/call-prelude.sh"
timeout 110 $B/run build/ab8/gpu_test_dataflow-OL2 --jobs 1 > $Y/tests-OL2.log 2>&1; t "test OL2 rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-OL2.log | head -24 | tee -a $L
san memcheck OL2 'dataflow/qwen3_0_6b_with_several*' 32kb-tiles
$B/run build/ab9/fusecheck-M synth --preset qwen3-4b --out /tmp/m4b > $Y/synth-4b.log 2>&1; t "synth 4b rc=$?"
timeout 150 $B/run build/ab9/fusecheck-M golden --model /tmp/m4b --prompt-len 8 --steps 3 --kv-dtype bf16 --quiet --out /tmp/g4b.h5 > $Y/golden-4b.log 2>&1; t "golden 4b rc=$?"
timeout 60 $B/run build/ab9/fusecheck-M run --engine dataflow --model /tmp/m4b --golden /tmp/g4b.h5 --out /tmp/run-4b.h5 --quiet > $Y/run-4b.log 2>&1
timeout 30 $B/run build/ab9/fusecheck-M compare /tmp/run-4b.h5 /tmp/g4b.h5 > $Y/compare-4b.log 2>&1
t "qwen3-4b dataflow against the reference rc=$? $(grep -E '^summary' $Y/compare-4b.log)"
for b in M P5 QD LEAN; do
  path=$(exe fusecheck-$b)
  timeout 90 ncu --clock-control none --section WarpStateStats --section InstructionStats --section SchedulerStats \
    -k regex:dataflow --launch-skip 6 --launch-count 1 -o $Y/ncu-$b \
    $B/run $path bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 16 --repeat 1 > $Y/ncu-$b.log 2>&1
  timeout 20 ncu -i $Y/ncu-$b.ncu-rep --page details > $Y/ncu-$b-details.txt 2>&1
  t "ncu $b rc=$? $(grep -iE 'No Instruction|Stall No' $Y/ncu-$b-details.txt | head -2 | tr -s ' ' | tr '\n' ' ')"
  rm -f $Y/ncu-$b.ncu-rep
done
timeout 100 $B/run build/ab8/gpu_test_dataflow-BLEAN --filter 'dataflow/timed_and_traced*' --jobs 1 > $Y/break-BLEAN.log 2>&1
t "planted break BLEAN (untraced logits off by 1e-3) rc=$? $(grep -E 'differ|bit-identical|Synthesis' $Y/break-BLEAN.log | head -2 | tr '\n' ' ')"
san racecheck M 'dataflow/small_matches*' small
