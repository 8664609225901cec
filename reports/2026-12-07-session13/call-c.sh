#!/usr/bin/env bash
# What this session must learn if it gets one call only (device time was spent on failed starts):
# main's (M) GPU suite and records (every engine on qwen3-0.6b; fused and dataflow on qwen3-8b), OL2
# and LO on qwen3-8b, an A/B of PT, M and LO on qwen3-0.6b, LO's suite, memcheck over its 32 KB-tile
# tests, LEAN's planted break BLEAN, main's timeline at 1024. About 480 s.
# Run: `run` with carry [".devbundle10"], command `bash .devbundle10/call-c.sh`, timeout 570 s.
. "$(dirname "$0")/call-prelude.sh"
$B/run build/ab9/fusecheck-M --version | tee -a $L
timeout 110 $B/run build/ab9/gpu_test_dataflow-M --jobs 1 > $Y/tests-M.log 2>&1; t "test M rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-M.log | head -24 | tee -a $L
timeout 150 $B/run build/ab9/fusecheck-M bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record M rc=$?"; grep -E "^\| (fused|cublas|dataflow|reference) " $Y/record-0.6b.log | tee -a $L
timeout 150 $B/run build/ab9/fusecheck-M synth --preset qwen3-8b --out /tmp/qwen3-8b > $Y/synth-8b.log 2>&1; t "synth 8b rc=$?"
timeout 150 $B/run build/ab9/fusecheck-M bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record M rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
for b in OL2 LO; do
  timeout 100 $B/run build/ab8/fusecheck-$b bench --model /tmp/qwen3-8b --engine dataflow --context 1024 --repeat 3 > $Y/8b-$b.log 2>&1; t "8b $b rc=$? $(grep -E '^\| dataflow ' $Y/8b-$b.log | tr '\n' ' ')"
done
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab8/fusecheck-PT \
  build/ab9/fusecheck-M build/ab8/fusecheck-LO > $Y/ab.txt 2>&1
t "ab done"; tail -4 $Y/ab.txt | tee -a $L
timeout 110 $B/run build/ab8/gpu_test_dataflow-LO --jobs 1 > $Y/tests-LO.log 2>&1; t "test LO rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-LO.log | head -24 | tee -a $L
timeout 60 $B/run build/ab8/gpu_test_dataflow-BLEAN --filter 'dataflow/timed_and_traced*' --jobs 1 > $Y/break-BLEAN.log 2>&1
t "planted break BLEAN (untraced logits off by 1e-3) rc=$? $(grep -E 'differ|bit-identical|Synthesis' $Y/break-BLEAN.log | head -3 | tr '\n' ' ')"
san memcheck LO 'dataflow/qwen3_0_6b_with_several*' 32kb-tiles
timeline M qwen3-0.6b 1024 32
t "done"
