#!/usr/bin/env bash
# The next session's first call, about 390 s (written in the seventeenth session, whose device time
# ran out before it could run; call-m2.sh is its cut): main with PPS merged (PPSM, 7b79d1c) recorded
# on every engine on qwen3-0.6b (the README's table for the GPU that comes); its GPU suite; memcheck
# over the long-splits test; the A/B (2 rounds) of main's kernel before the merge (MK), PPSM and the
# candidates HW (attention's heads staged a warp a head), MW (the merge's weights computed by each
# warp) and NW (the next down and QKV tiles' weights issued after the last dots); PPSM's timelines
# at 128, 1024 and 4096; its qwen3-8b records; its racecheck over the long-splits test last (150 s
# limit). call-n.sh, on the warm machine after it, checks the candidates. Bundle: `bash
# reports/2026-12-08-session17/build-bundle.sh`. Run: `run` with carry [".devbundle17"], command
# `bash .devbundle17/call-m.sh`, timeout 480 s (or the device time left less about 100 s).
. "$(dirname "$0")/call-prelude.sh"
for b in MK PPSM HW MW NW; do $B/run $(exe fusecheck-$b) --version | tee -a $L; done
timeout 60 $B/run $(exe fusecheck-PPSM) bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record PPSM rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $Y/record-0.6b.log | tee -a $L
suite PPSM 100
san memcheck PPSM 'dataflow/small_with_long_splits*' long-splits 40
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh $(exe fusecheck-MK) $(exe fusecheck-PPSM) $(exe fusecheck-HW) $(exe fusecheck-MW) $(exe fusecheck-NW) > $Y/ab.txt 2>&1
t "ab done"; tail -6 $Y/ab.txt | tee -a $L
for ctx in 128 1024 4096; do timeline PPSM qwen3-0.6b $ctx 32; done
t "timelines"; grep -E 'build|a token|qkv|attention|compute:|o_proj|gate_up|down' $Y/timeline.txt | tee -a $L
synth_8b PPSM
timeout 60 $B/run $(exe fusecheck-PPSM) bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record PPSM rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
san racecheck PPSM 'dataflow/small_with_long_splits*' long-splits 150
t done
