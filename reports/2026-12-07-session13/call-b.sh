#!/usr/bin/env bash
# The thirteenth session's second device call, after call-a.sh: LO's GPU suite (main + LEAN + OL2:
# timed steps on the kernel without instrumentation, checked bit for bit against traced ones in every
# instance; OL2's prefetch runs in the 32 KB-tile tests' kernels with runs); memcheck of LO over those
# tests; LEAN's planted break BLEAN (untraced logits off by 1e-3: only the untraced-against-traced test
# can see it); main on qwen3-4b against the reference (19 LM head rows a tile: groups of 4 rows that
# straddle two tiles); ncu's warp states of M, P5, QD and LO at 1024 (is the losers' loss instruction
# fetch?); racecheck of M and LO on small. About 500 s.
# Run: `run` with carry [".devbundle10"], command `bash .devbundle10/call-b.sh`, timeout 560 s.
. "$(dirname "$0")/call-prelude.sh"
timeout 110 $B/run build/ab8/gpu_test_dataflow-LO --jobs 1 > $Y/tests-LO.log 2>&1; t "test LO rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-LO.log | head -24 | tee -a $L
timeout 100 $B/run build/ab8/gpu_test_dataflow-BLEAN --filter 'dataflow/timed_and_traced*' --jobs 1 > $Y/break-BLEAN.log 2>&1
t "planted break BLEAN (untraced logits off by 1e-3) rc=$? $(grep -E 'differ|bit-identical|Synthesis' $Y/break-BLEAN.log | head -3 | tr '\n' ' ')"
san memcheck LO 'dataflow/qwen3_0_6b_with_several*' 32kb-tiles
$B/run build/ab9/fusecheck-M synth --preset qwen3-4b --out /tmp/m4b > $Y/synth-4b.log 2>&1; t "synth 4b rc=$?"
timeout 150 $B/run build/ab9/fusecheck-M golden --model /tmp/m4b --prompt-len 8 --steps 3 --kv-dtype bf16 --quiet --out /tmp/g4b.h5 > $Y/golden-4b.log 2>&1; t "golden 4b rc=$?"
timeout 60 $B/run build/ab9/fusecheck-M run --engine dataflow --model /tmp/m4b --golden /tmp/g4b.h5 --out /tmp/run-4b.h5 --quiet > $Y/run-4b.log 2>&1
timeout 30 $B/run build/ab9/fusecheck-M compare /tmp/run-4b.h5 /tmp/g4b.h5 > $Y/compare-4b.log 2>&1
t "qwen3-4b dataflow against the reference rc=$? $(grep -E '^summary' $Y/compare-4b.log)"
for b in M LO P5 QD; do
  timeout 90 ncu --clock-control none --section WarpStateStats --section InstructionStats --section SchedulerStats \
    -k regex:dataflow --launch-skip 6 --launch-count 1 -o $Y/ncu-$b \
    $B/run $(exe fusecheck-$b) bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 16 --repeat 1 > $Y/ncu-$b.log 2>&1
  timeout 20 ncu -i $Y/ncu-$b.ncu-rep --page details > $Y/ncu-$b-details.txt 2>&1
  t "ncu $b rc=$? $(grep -iE 'No Instruction|Stall No' $Y/ncu-$b-details.txt | head -2 | tr -s ' ' | tr '\n' ' ')"
  rm -f $Y/ncu-$b.ncu-rep
done
san racecheck M 'dataflow/small_matches*' small
san racecheck LO 'dataflow/small_matches*' small
