#!/usr/bin/env bash
# The next session's first device call (prepared in the twelfth, NOTES v13). Main (M, 01e10c8: PXR and
# LMV merged, the general kernel without runs) had no GPU run: its GPU suite, its records of every
# engine on qwen3-0.6b and of fused and dataflow on qwen3-8b; OL2 (o_proj's tiles asked of L2 at
# attention's start, in the kernels with runs: the 8B bar) on qwen3-8b beside fused; an A/B on
# qwen3-0.6b of PT, LMV, M, the two losers QD and P5, and LEAN (timed steps on a kernel without the
# instrumentation's code); LEAN's suite; memcheck on small; timelines of M at 1024 and 16384, of QD
# and P5 at 1024 (why they lose) and P5 at 16384 (why it wins there), of M and OL2 on qwen3-8b.
# qwen3-8b is synthesized once (seed 0, as bench --preset does) and benched with --model. About 460 s.
# Bundle: `bash reports/2026-12-07-session12/build-bundle.sh`. Run: `run` with carry [".devbundle9"],
# command `bash .devbundle9/next-call.sh`, timeout 560 s; then next-call-2.sh.
. "$(dirname "$0")/call-prelude.sh"
$B/run build/ab9/fusecheck-M --version | tee -a $L
timeout 110 $B/run build/ab9/gpu_test_dataflow-M --jobs 1 > $Y/tests-M.log 2>&1; t "test M rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-M.log | head -24 | tee -a $L
timeout 150 $B/run build/ab9/fusecheck-M bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record M rc=$?"; grep -E "^\| (fused|cublas|dataflow|reference) " $Y/record-0.6b.log | tee -a $L
timeout 150 $B/run build/ab9/fusecheck-M synth --preset qwen3-8b --out /tmp/qwen3-8b > $Y/synth-8b.log 2>&1; t "synth 8b rc=$?"
timeout 150 $B/run build/ab9/fusecheck-M bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record M rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
timeout 150 $B/run build/ab8/fusecheck-OL2 bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 > $Y/8b-OL2.log 2>&1; t "8b OL2 rc=$? $(grep -E '^\| (fused|dataflow) ' $Y/8b-OL2.log | tr '\n' ' ')"
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab8/fusecheck-PT \
  build/ab8/fusecheck-LMV build/ab9/fusecheck-M build/ab8/fusecheck-QD build/ab8/fusecheck-P5 build/ab8/fusecheck-LEAN > $Y/ab.txt 2>&1
t "ab done"; tail -7 $Y/ab.txt | tee -a $L
# QD's A/B ran its qkv,gate_up,down kernel (13,056 SASS instructions); with gate_up's pages only it
# runs a kernel of main's size (11,640) and main's page behaviour: the code's size or the pages?
for b in PT QD; do
  FUSECHECK_DATAFLOW_PAGES=gate_up timeout 60 $B/run $(exe fusecheck-$b) bench --preset qwen3-0.6b --engine dataflow --context 128,1024 --repeat 3 > $Y/pages-gate-up-$b.log 2>&1
  t "$b with gate_up pages only rc=$? $(grep -E '^\| dataflow ' $Y/pages-gate-up-$b.log | cut -d'|' -f3,4 | tr '\n' ' ')"
done
timeout 110 $B/run build/ab8/gpu_test_dataflow-LEAN --jobs 1 > $Y/tests-LEAN.log 2>&1; t "test LEAN rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-LEAN.log | head -24 | tee -a $L
san memcheck M 'dataflow/small_matches*' small
timeline M qwen3-0.6b 1024 32
timeline M qwen3-0.6b 16384 32
timeline QD qwen3-0.6b 1024 32
timeline P5 qwen3-0.6b 1024 32
timeline P5 qwen3-0.6b 16384 32
t "timelines 0.6b"
timeline M /tmp/qwen3-8b 1024 8
timeline OL2 /tmp/qwen3-8b 1024 8
t "timelines 8b"
