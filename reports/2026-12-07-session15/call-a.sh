#!/usr/bin/env bash
# The fifteenth session's first device call (one call, since machines were scarce): main's kernel with
# K3 (MK, 7c03315): its records of every engine on qwen3-0.6b and of fused and dataflow on qwen3-8b.
# The A/B (3 rounds) of MK against K3S (the second K/V piece after the q/k/v staging), PP (scores
# summed 8 at a time, heads 2-3 only where a kv head has more than 2 q heads), PPEX (PP with the
# softmax in log2 units, one ex2.approx an exponential) and PPS (PPEX with the newest K/V row's loops
# without a division, and a pass's K/V slices past a piece's end clamped to its last row, no branch)
# and PPSO (PPS with the warps' sums stored for the combine as vectors). PP's and K3S's bits against
# MK's, and PPSO's against PPEX's, at tolerance 0 over a five-piece split (each must be
# bit-identical); PPSO's GPU suite (its bits differ from MK's: ex2); the planted break BSP over the
# long-splits test; memcheck of K3S and PPSO over it; timelines at 16384; MK and PPSO on qwen3-8b, 2
# rounds. About 540 s.
# Bundle: `bash reports/2026-12-07-session15/build-bundle.sh`. Run: `run` with carry
# [".devbundle15"], command `bash .devbundle15/call-a.sh`, timeout 580 s.
. "$(dirname "$0")/call-prelude.sh"
for b in MK K3S PP PPEX PPS PPSO; do $B/run $(exe fusecheck-$b) --version | tee -a $L; done
timeout 150 $B/run $(exe fusecheck-MK) bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record MK rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $Y/record-0.6b.log | tee -a $L
synth_8b MK
timeout 150 $B/run $(exe fusecheck-MK) bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record MK rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=3 OUT=/tmp/ab tools/gpu_ab.sh $(exe fusecheck-MK) $(exe fusecheck-K3S) $(exe fusecheck-PP) $(exe fusecheck-PPEX) $(exe fusecheck-PPS) $(exe fusecheck-PPSO) > $Y/ab.txt 2>&1
t "ab done"; tail -7 $Y/ab.txt | tee -a $L
rounds_8b 2 MK PPSO  # qwen3-8b: 4 q heads a kv head, PP's two sums of 8
same_bits PP MK 300 4 FUSECHECK_DATAFLOW_SPLITS=1
same_bits K3S MK 300 4 FUSECHECK_DATAFLOW_SPLITS=1
same_bits PPSO PPEX 300 4 FUSECHECK_DATAFLOW_SPLITS=1
suite PPSO
timeout 120 $B/run $(exe gpu_test_dataflow-BSP) --filter 'dataflow/small_with_long_splits*' --jobs 1 > $Y/tests-BSP.log 2>&1
t "BSP long splits rc=$? (expected to fail)"; grep -E 'Synthesis|positions' $Y/tests-BSP.log | head -8 | tee -a $L
san memcheck K3S 'dataflow/small_with_long_splits*' long-splits
san memcheck PPSO 'dataflow/small_with_long_splits*' long-splits
for b in MK PP PPSO; do timeline $b qwen3-0.6b 16384 32; done
grep -E 'build|attention' $Y/timeline.txt | tee -a $L
t done
