#!/usr/bin/env bash
# The next session's second call, about 330 s, on the warm machine after call-m.sh: the candidates'
# checks. HW's, MW's and NW's bits against PPSM's at tolerance 0 (HW over one split's five pieces,
# MW and NW at the default splits, where the merge runs and the walk reaches down -> QKV); NW's GPU
# suite (it changes the walk: runs, pages and traced steps); memcheck of HW over the long-splits
# test and of MW and NW on `small`; MW's racecheck on `small`; qwen3-8b (runs) for PPSM, MW and NW,
# 2 rounds; NW's and MW's timelines at 1024. Run: `run` with carry [".devbundle17"], command
# `bash .devbundle17/call-n.sh`, timeout 420 s.
. "$(dirname "$0")/call-prelude.sh"
same_bits HW PPSM 300 4 FUSECHECK_DATAFLOW_SPLITS=1
same_bits MW PPSM 300 4
same_bits NW PPSM 300 4
suite NW 100
san memcheck HW 'dataflow/small_with_long_splits*' long-splits 40
san memcheck MW 'dataflow/small_matches*' small 60
san memcheck NW 'dataflow/small_matches*' small 60
san racecheck MW 'dataflow/small_matches*' small 120
synth_8b PPSM
rounds_8b 2 PPSM MW NW
for b in NW MW; do timeline $b qwen3-0.6b 1024 32; done
t "timelines"; grep -E 'build|a token|qkv|attention|compute:|o_proj|gate_up|down' $Y/timeline.txt | tail -18 | tee -a $L
t done
