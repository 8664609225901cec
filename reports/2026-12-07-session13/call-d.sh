#!/usr/bin/env bash
# After call-c.sh, on the same machine: racecheck of LO on small, ncu's warp states of M and LO at
# 1024 (LEAN's gain: instruction fetch?), timelines of M and QD at 1024. About 200 s.
. "$(dirname "$0")/call-prelude.sh"
san racecheck LO 'dataflow/small_matches*' small
for b in M LO; do
  timeout 90 ncu --clock-control none --section WarpStateStats --section InstructionStats --section SchedulerStats \
    -k regex:dataflow --launch-skip 6 --launch-count 1 -o $Y/ncu-$b \
    $B/run $(exe fusecheck-$b) bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 16 --repeat 1 > $Y/ncu-$b.log 2>&1
  timeout 20 ncu -i $Y/ncu-$b.ncu-rep --page details > $Y/ncu-$b-details.txt 2>&1
  t "ncu $b rc=$? $(grep -iE 'No Instruction|Stall No' $Y/ncu-$b-details.txt | head -2 | tr -s ' ' | tr '\n' ' ')"
  rm -f $Y/ncu-$b.ncu-rep
done
timeline QD qwen3-0.6b 1024 32
timeline M qwen3-0.6b 16384 32
t done
