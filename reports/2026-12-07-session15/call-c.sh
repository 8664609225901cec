#!/usr/bin/env bash
# A third device call (written in the sixteenth session), on the machine call-a.sh and call-b.sh
# left warm: the candidate NF (branch dataflow-norm-folded: QKV's and gate/up's rmsnorm folded into
# their tiles, so its passes and barriers leave the chain; the staging barrier stays; its bits
# differ from MK's). Its GPU suite; the A/B of MK and NF (3 rounds) and on qwen3-8b (2 rounds);
# memcheck and racecheck of NF over `small` (hidden 256: the fold's one-warp sum of squares) and
# racecheck over the several-tiles test (runs, 32 KB tiles); timelines of MK and NF at 1024. About
# 420 s. Run: `run` with carry [".devbundle15"], command `bash .devbundle15/call-c.sh`, timeout 560
# s.
. "$(dirname "$0")/call-prelude.sh"
$B/run $(exe fusecheck-NF) --version | tee -a $L
suite NF 200
mkdir -p /tmp/ab-nf
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=3 OUT=/tmp/ab-nf tools/gpu_ab.sh $(exe fusecheck-MK) $(exe fusecheck-NF) > $Y/ab-nf.txt 2>&1
t "ab NF done"; tail -3 $Y/ab-nf.txt | tee -a $L
synth_8b MK
rounds_8b 2 MK NF
san memcheck NF 'dataflow/small_matches*' small
san racecheck NF 'dataflow/small_matches*' small 120
san racecheck NF 'dataflow/qwen3_0_6b_with_several*' several-tiles 150
for b in MK NF; do timeline $b qwen3-0.6b 1024 32; done
grep -E 'build|qkv|gate' $Y/timeline.txt | tee -a $L
t done
