#!/usr/bin/env bash
# A device call cut to what about 300 s of device time holds, for a session whose failed starts left
# too little for call-a.sh (the sixteenth's did; this never ran): main's kernel (MK, 7c03315)
# recorded on every engine on qwen3-0.6b; the A/B (2 rounds) of MK against PP, PPS and PPSO (the
# pass cuts, v16), its summary logged as soon as it ends; PPSO's bits against PPEX's at tolerance 0;
# PPSO's suite; then MK's qwen3-8b records. Runs from .devbundle15
# (reports/2026-12-07-session15/build-bundle.sh packs it): `run` with carry [".devbundle15"],
# command `bash .devbundle15/call-short.sh`, timeout the device time left less about 100 s for the
# start.
. "$(dirname "$0")/call-prelude.sh"
for b in MK PP PPS PPSO; do $B/run $(exe fusecheck-$b) --version | tee -a $L; done
timeout 90 $B/run $(exe fusecheck-MK) bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record MK rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $Y/record-0.6b.log | tee -a $L
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh $(exe fusecheck-MK) $(exe fusecheck-PP) $(exe fusecheck-PPS) $(exe fusecheck-PPSO) > $Y/ab.txt 2>&1
t "ab done"; tail -5 $Y/ab.txt | tee -a $L
same_bits PPSO PPEX 300 4 FUSECHECK_DATAFLOW_SPLITS=1
suite PPSO 100
synth_8b MK
timeout 100 $B/run $(exe fusecheck-MK) bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record MK rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
t done
