#!/usr/bin/env bash
# The next session's first device call (prepared in the thirteenth, NOTES v14). Main (ML, ce824bc: LEAN
# merged) has run on the H100 only: on the H200, its records of every engine on qwen3-0.6b and of fused
# and dataflow on qwen3-8b (the README's H200 table). NR (the token's own K/V row in the piece's
# buffer): its GPU suite; its planted break BNR (the V row left out), which must fail; its bits
# against main's at tolerance 0 (every tensor, layer and step of a teacher-forced qwen3-0.6b run); an
# A/B of ML and NR; memcheck and racecheck of NR on small. About 420 s.
# Bundle: `bash reports/2026-12-07-session13/build-bundle-next.sh`. Run: `run` with carry
# [".devbundle13"], command `bash .devbundle13/next-call.sh`, timeout 560 s; then next-call-2.sh.
. "$(dirname "$0")/call-prelude.sh"
$B/run build/ab9/fusecheck-ML --version | tee -a $L
timeout 150 $B/run build/ab9/fusecheck-ML bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record ML rc=$?"; grep -E "^\| (fused|cublas|dataflow|reference) " $Y/record-0.6b.log | tee -a $L
timeout 150 $B/run build/ab9/fusecheck-ML synth --preset qwen3-8b --out /tmp/qwen3-8b > $Y/synth-8b.log 2>&1; t "synth 8b rc=$?"
timeout 150 $B/run build/ab9/fusecheck-ML bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record ML rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=3 OUT=/tmp/ab tools/gpu_ab.sh build/ab9/fusecheck-ML build/ab8/fusecheck-NR > $Y/ab.txt 2>&1
t "ab done"; tail -3 $Y/ab.txt | tee -a $L
timeout 110 $B/run build/ab8/gpu_test_dataflow-NR --jobs 1 > $Y/tests-NR.log 2>&1; t "test NR rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-NR.log | head -24 | tee -a $L
timeout 110 $B/run build/ab8/gpu_test_dataflow-BNR --filter 'dataflow/*matches_reference' --jobs 1 > $Y/break-BNR.log 2>&1
t "planted break BNR (the token's own V row left out) rc=$? $(grep -E 'Synthesis' $Y/break-BNR.log | tr '\n' ' ')"
$B/run build/ab9/fusecheck-ML synth --preset qwen3-0.6b --out /tmp/m06 > $Y/synth-0.6b.log 2>&1
$B/run build/ab9/fusecheck-ML golden --model /tmp/m06 --prompt-len 16 --steps 8 --kv-dtype bf16 --quiet --out /tmp/g.h5 > $Y/golden.log 2>&1
for b in ML NR; do
  timeout 60 $B/run $(exe fusecheck-$b) run --engine dataflow --model /tmp/m06 --golden /tmp/g.h5 --out /tmp/run-$b.h5 --quiet > $Y/run-$b.log 2>&1
done
timeout 30 $B/run build/ab9/fusecheck-ML compare /tmp/run-NR.h5 /tmp/run-ML.h5 --max-rel-l2 0 --max-norm-max 0 > $Y/same-bits-NR.log 2>&1
t "NR against ML at tolerance 0 rc=$? $(grep -iE '^summary' $Y/same-bits-NR.log | head -1)"
san memcheck NR 'dataflow/small_matches*' small
san racecheck NR 'dataflow/small_matches*' small
timeline ML qwen3-0.6b 1024 32
t done
