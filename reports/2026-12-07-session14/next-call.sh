#!/usr/bin/env bash
# The next session's first device call (prepared in the fourteenth, NOTES v15). Main's kernel with K3
# (MK, 7c03315) has run on the H100 only: its records of every engine on qwen3-0.6b and of fused and
# dataflow on qwen3-8b (on an H200: the README's H200 table; on an H100: its H100 table). K3S (the
# second K/V piece after the q/k/v staging): the A/B against MK (3 rounds), its GPU suite, its bits
# against MK's at tolerance 0 over a five-piece split; the timelines of MK and K3S at 16384. About
# 420 s. Bundle: `bash reports/2026-12-07-session14/build-bundle-next.sh`. Run: `run` with carry
# [".devbundle15"], command `bash .devbundle15/next-call.sh`, timeout 560 s; then next-call-2.sh.
. "$(dirname "$0")/call-prelude.sh"
for b in MK K3S; do $B/run $(exe fusecheck-$b) --version | tee -a $L; done
timeout 150 $B/run $(exe fusecheck-MK) bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record MK rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $Y/record-0.6b.log | tee -a $L
timeout 150 $B/run $(exe fusecheck-MK) synth --preset qwen3-8b --out /tmp/qwen3-8b > $Y/synth-8b.log 2>&1; t "synth 8b rc=$?"
timeout 150 $B/run $(exe fusecheck-MK) bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record MK rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=3 OUT=/tmp/ab tools/gpu_ab.sh $(exe fusecheck-MK) $(exe fusecheck-K3S) > $Y/ab.txt 2>&1
t "ab done"; tail -3 $Y/ab.txt | tee -a $L
suite K3S
same_bits K3S MK 300 4 FUSECHECK_DATAFLOW_SPLITS=1
for b in MK K3S; do timeline $b qwen3-0.6b 16384 32; done
grep -E 'build|attention|K/V waits' $Y/timeline.txt | tee -a $L
t done
