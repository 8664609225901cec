#!/usr/bin/env bash
# The twelfth session's second (and last) device call, after next-call.sh on the H200 (PXR and LMV
# won, QD, P5 and ALL lost): LMV's suite, the breaks BXR and BLMV, memcheck and racecheck of LMV and
# PXR, both against PT at tolerance 0, LMV's records of every engine on qwen3-0.6b, PXR's on qwen3-8b.
. "$(dirname "$0")/call-prelude.sh"
brk() {  # label, test filter, what it breaks
  timeout 100 $B/run build/ab8/gpu_test_dataflow-$1 --filter "$2" --jobs 1 > $Y/break-$1.log 2>&1
  t "planted break $1 ($3) rc=$? $(grep -E 'matched profile \(|differ|Synthesis' $Y/break-$1.log | head -2 | tr '\n' ' ')"
}
timeout 110 $B/run build/ab8/gpu_test_dataflow-LMV --jobs 1 > $Y/tests-LMV.log 2>&1; t "test LMV rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-LMV.log | head -24 | tee -a $L
brk BXR 'dataflow/qwen3_0_6b_with_several*' "a run's next tile issued before the dots"
brk BLMV 'dataflow/small_matches*' "the LM head's rows one late"
$B/run build/ab8/fusecheck-PT synth --preset qwen3-0.6b --out /tmp/m06 > /dev/null 2>&1
$B/run build/ab8/fusecheck-PT golden --model /tmp/m06 --prompt-len 16 --steps 8 --kv-dtype bf16 --quiet --out /tmp/g.h5 > $Y/golden.log 2>&1
for b in PT LMV PXR; do
  timeout 60 $B/run build/ab8/fusecheck-$b run --engine dataflow --model /tmp/m06 --golden /tmp/g.h5 --out /tmp/run-$b.h5 --quiet > $Y/run-$b.log 2>&1
  [ $b = PT ] && continue
  timeout 30 $B/run build/ab8/fusecheck-PT compare /tmp/run-$b.h5 /tmp/run-PT.h5 --max-rel-l2 0 --max-norm-max 0 > $Y/same-bits-$b.log 2>&1
  t "$b against PT at tolerance 0 rc=$? $(grep -iE 'fail|pass' $Y/same-bits-$b.log | head -2 | tr '\n' ' ')"
done
timeout 150 $B/run build/ab8/fusecheck-LMV bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record LMV rc=$?"; grep -E "^\| (fused|cublas|dataflow|reference) " $Y/record-0.6b.log | tee -a $L
timeout 150 $B/run build/ab8/fusecheck-PXR bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record PXR rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
san memcheck LMV 'dataflow/small_matches*' small
san memcheck PXR 'dataflow/qwen3_0_6b_with_several*' 32kb-tiles
san racecheck LMV 'dataflow/small_matches*' small
rc_gen() {  # label, log label, prompt length, then VARIABLE=VALUE settings
  local b=$1 what=$2 prompt=$3; shift 3
  env "$@" timeout 100 compute-sanitizer --tool racecheck $B/run build/ab8/fusecheck-$b generate --engine dataflow \
    --model /tmp/m06 --prompt-len $prompt -n 2 --quiet > $Y/san-racecheck-$b-$what.log 2>&1
  t "racecheck $b $what rc=$? $(tail -1 $Y/san-racecheck-$b-$what.log)"
}
rc_gen PXR 32kb-tiles 4 FUSECHECK_DATAFLOW_TILE_KB=32 FUSECHECK_DATAFLOW_PAGES=none
timeline LMV qwen3-0.6b 1024 32
timeline PXR qwen3-8b 1024 8
t done
