#!/usr/bin/env bash
# K3 (three K/V buffers, two pieces in flight) against main's kernel (PLHQ, cd0df6c): the A/B (2
# rounds); K3's GPU suite (its long-splits test streams four pieces); the planted break BK3, which
# must fail; K3's bits against PLHQ's at tolerance 0 on a run whose one split streams five pieces;
# memcheck and racecheck of K3 over the long-splits test; K3's timeline at 16384. On an H200, main's
# records too (every engine on qwen3-0.6b, fused and dataflow on qwen3-8b). About 350 s (450 on an
# H200). Bundle: `bash reports/2026-12-07-session14/build-bundle-e.sh`. Run: `run` with carry
# [".devbundle14e"], command `bash .devbundle14e/call-e.sh`, timeout 560 s.
. "$(dirname "$0")/call-prelude.sh"
for b in PLHQ K3; do $B/run $(exe fusecheck-$b) --version | tee -a $L; done
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh $(exe fusecheck-PLHQ) $(exe fusecheck-K3) > $Y/ab.txt 2>&1
t "ab done"; tail -3 $Y/ab.txt | tee -a $L
timeout 150 $B/run $(exe gpu_test_dataflow-K3) --jobs 1 > $Y/tests-K3.log 2>&1; t "test K3 rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-K3.log | head -24 | tee -a $L
timeout 90 $B/run $(exe gpu_test_dataflow-BK3) --filter 'dataflow/*long_splits*' --jobs 1 > $Y/break-BK3.log 2>&1
t "planted break BK3 (the piece two ahead copied from the piece before it) rc=$? $(grep -E 'Synthesis' $Y/break-BK3.log | tr '\n' ' ')"
grep -E 'matched profile \(' $Y/break-BK3.log | head -5 | tee -a $L
$B/run $(exe fusecheck-PLHQ) synth --preset qwen3-0.6b --out /tmp/m06 > $Y/synth-0.6b.log 2>&1
timeout 120 $B/run $(exe fusecheck-PLHQ) golden --model /tmp/m06 --prompt-len 300 --steps 4 --kv-dtype bf16 --quiet --out /tmp/g300.h5 > $Y/golden.log 2>&1; t "golden 300 rc=$?"
for b in PLHQ K3; do
  FUSECHECK_DATAFLOW_SPLITS=1 timeout 60 $B/run $(exe fusecheck-$b) run --engine dataflow --model /tmp/m06 --golden /tmp/g300.h5 --out /tmp/run-$b.h5 --quiet > $Y/run-$b.log 2>&1
done
timeout 30 $B/run $(exe fusecheck-PLHQ) compare /tmp/run-K3.h5 /tmp/run-PLHQ.h5 --max-rel-l2 0 --max-norm-max 0 > $Y/same-bits-K3.log 2>&1
t "K3 against PLHQ at tolerance 0, one split of 301-304 positions rc=$? $(grep -iE '^summary' $Y/same-bits-K3.log | head -1)"
san memcheck K3 'dataflow/small_with_long_splits*' long-splits
san racecheck K3 'dataflow/small_with_long_splits*' long-splits
timeline K3 qwen3-0.6b 16384 32
grep -A3 'dataflow timeline' /tmp/tl.log | tail -3 | tee -a $L
t "timeline done"
if nvidia-smi -L | grep -q H200 && [ $(( $(date +%s) - T0 )) -lt 360 ]; then
  timeout 150 $B/run $(exe fusecheck-PLHQ) bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record PLHQ rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $Y/record-0.6b.log | tee -a $L
  timeout 100 $B/run $(exe fusecheck-PLHQ) synth --preset qwen3-8b --out /tmp/qwen3-8b > $Y/synth-8b.log 2>&1
  timeout 100 $B/run $(exe fusecheck-PLHQ) bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record PLHQ rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
fi
t done
