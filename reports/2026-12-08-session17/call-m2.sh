#!/usr/bin/env bash
# call-m.sh cut to what about 220 s of device time holds (it did not run either: the session's last
# start was refused with 222 s left): main with PPS merged (PPSM, 7b79d1c) recorded on every engine on qwen3-0.6b; its GPU suite;
# memcheck over the long-splits test; its qwen3-8b records; its timeline at 4096 (32 tokens); racecheck
# over the long-splits test last, in whatever time is left (each step's logs are packed as it ends). Runs from .devbundle17 (this
# folder's build-bundle.sh): `run` with carry [".devbundle17"], command `bash .devbundle17/call-m2.sh`,
# timeout the device time left less about 100 s for the start.
. "$(dirname "$0")/call-prelude.sh"
$B/run $(exe fusecheck-PPSM) --version | tee -a $L
timeout 60 $B/run $(exe fusecheck-PPSM) bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record PPSM rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $Y/record-0.6b.log | tee -a $L
suite PPSM 100
san memcheck PPSM 'dataflow/small_with_long_splits*' long-splits 40
synth_8b PPSM
timeout 60 $B/run $(exe fusecheck-PPSM) bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record PPSM rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
timeline PPSM qwen3-0.6b 4096 32; t "timeline 4096"; grep -A9 'dataflow timeline' /tmp/tl.log | tee -a $L
san racecheck PPSM 'dataflow/small_with_long_splits*' long-splits 150
t done
