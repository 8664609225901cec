#!/usr/bin/env bash
# Records (bench --record) of one build, main as merged after call-c: every engine on qwen3-0.6b and
# fused and dataflow on qwen3-8b (synthesized, run with --model); its timelines at 1024 and 16384.
# About 150 s. Run: `run` with carry [".devbundle14"], command `bash .devbundle14/call-d.sh LABEL`.
. "$(dirname "$0")/call-prelude.sh"
b=${1:?usage: call-d.sh LABEL}
$B/run $(exe fusecheck-$b) --version | tee -a $L
timeout 150 $B/run $(exe fusecheck-$b) bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record $b rc=$?"; grep -E "^\| (fused|cublas|dataflow|reference) " $Y/record-0.6b.log | tee -a $L
timeout 150 $B/run $(exe fusecheck-$b) synth --preset qwen3-8b --out /tmp/qwen3-8b > $Y/synth-8b.log 2>&1; t "synth 8b rc=$?"
timeout 150 $B/run $(exe fusecheck-$b) bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record $b rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
timeline $b qwen3-0.6b 1024 32
timeline $b qwen3-0.6b 16384 32
t done
