#!/usr/bin/env bash
# The twelfth session's third device call: main after PXR and LMV merged (M, 01e10c8, build/ab9):
# its GPU suite, its records of every engine (qwen3-0.6b at four contexts, qwen3-8b at 1024), an A/B
# against PT and LMV, memcheck, and a qwen3-4b matched run (19 LM head rows a tile: the only preset
# whose groups of 4 rows straddle two tiles), then racecheck on small if time is left.
# Bundle: reports/2026-12-07-session12/build-bundle.sh. Run: `run` with carry [".devbundle9"],
# command `bash .devbundle9/call3.sh`, timeout 200 s (the session's budget: 322 s left); in order
# of need, racecheck last.
. "$(dirname "$0")/call-prelude.sh"
$B/run build/ab9/fusecheck-M --version | tee -a $L
timeout 110 $B/run build/ab9/gpu_test_dataflow-M --jobs 1 > $Y/tests-M.log 2>&1; t "test M rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-M.log | head -24 | tee -a $L
timeout 150 $B/run build/ab9/fusecheck-M bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record M rc=$?"; grep -E "^\| (fused|cublas|dataflow|reference) " $Y/record-0.6b.log | tee -a $L
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=1 OUT=/tmp/ab tools/gpu_ab.sh build/ab8/fusecheck-PT build/ab8/fusecheck-LMV build/ab9/fusecheck-M > $Y/ab.txt 2>&1; t "ab done"; tail -4 $Y/ab.txt | tee -a $L
san memcheck M 'dataflow/small_matches*' small
timeout 150 $B/run build/ab9/fusecheck-M bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record M rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
$B/run build/ab9/fusecheck-M synth --preset qwen3-4b --out /tmp/m4b > $Y/synth-4b.log 2>&1; t "synth 4b rc=$?"
timeout 100 $B/run build/ab9/fusecheck-M golden --model /tmp/m4b --prompt-len 8 --steps 3 --kv-dtype bf16 --quiet --out /tmp/g4b.h5 > $Y/golden-4b.log 2>&1; t "golden 4b rc=$?"
timeout 60 $B/run build/ab9/fusecheck-M run --engine dataflow --model /tmp/m4b --golden /tmp/g4b.h5 --out /tmp/run-4b.h5 --quiet > $Y/run-4b.log 2>&1
timeout 30 $B/run build/ab9/fusecheck-M compare /tmp/run-4b.h5 /tmp/g4b.h5 > $Y/compare-4b.log 2>&1; t "qwen3-4b dataflow against the reference rc=$? $(grep -E '^summary' $Y/compare-4b.log)"
timeout 100 compute-sanitizer --tool racecheck $B/run build/ab9/gpu_test_dataflow-M --filter 'dataflow/small_matches*' --jobs 1 > $Y/san-racecheck-M-small.log 2>&1
t "racecheck M small rc=$? $(tail -1 $Y/san-racecheck-M-small.log)"
