#!/usr/bin/env bash
# Main after LEAN merged (ML, ce824bc) on the H200: its GPU suite; its records of every engine on
# qwen3-0.6b and of fused and dataflow on qwen3-8b; LO (ML + OL2) on qwen3-8b beside it (dataflow
# only: fused is in ML's record of the same call); an A/B of M, ML and LO on qwen3-0.6b; ML's timeline
# at 1024. About 230 s. Bundle: build-bundle-e.sh. Run: `run` with carry [".devbundle11"], timeout 400 s.
. "$(dirname "$0")/call-prelude.sh"
$B/run build/ab9/fusecheck-ML --version | tee -a $L
timeout 110 $B/run build/ab9/gpu_test_dataflow-ML --jobs 1 > $Y/tests-ML.log 2>&1; t "test ML rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-ML.log | head -24 | tee -a $L
timeout 150 $B/run build/ab9/fusecheck-ML bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record ML rc=$?"; grep -E "^\| (fused|cublas|dataflow|reference) " $Y/record-0.6b.log | tee -a $L
timeout 150 $B/run build/ab9/fusecheck-ML synth --preset qwen3-8b --out /tmp/qwen3-8b > $Y/synth-8b.log 2>&1; t "synth 8b rc=$?"
timeout 150 $B/run build/ab9/fusecheck-ML bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record ML rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
timeout 100 $B/run build/ab8/fusecheck-LO bench --model /tmp/qwen3-8b --engine dataflow --context 1024 --repeat 3 > $Y/8b-LO.log 2>&1; t "8b LO rc=$? $(grep -E '^\| dataflow ' $Y/8b-LO.log | tr '\n' ' ')"
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab9/fusecheck-M \
  build/ab9/fusecheck-ML build/ab8/fusecheck-LO > $Y/ab.txt 2>&1
t "ab done"; tail -4 $Y/ab.txt | tee -a $L
timeline ML qwen3-0.6b 1024 32
t done
