#!/usr/bin/env bash
# The thirteenth session's first device call (H200): main (M, 01e10c8's kernel: PXR and LMV merged),
# which no GPU has run: its GPU suite, its records of every engine on qwen3-0.6b and of fused and
# dataflow on qwen3-8b; OL2 and LO (main + LEAN + OL2) on qwen3-8b (dataflow only: fused is in M's
# record of the same call); an A/B on qwen3-0.6b of PT, M, QD, P5 and LO (LO's timed kernel is LEAN's
# there: OL2 changes only the kernels with runs); PT and QD with gate/up's pages only; memcheck of M
# on small; timelines of M at 1024 and 16384, QD and P5 at 1024, P5 at 16384. About 450 s.
# Bundle: `bash reports/2026-12-07-session13/build-bundle.sh`. Run: `run` with carry [".devbundle10"],
# command `bash .devbundle10/call-a.sh`, timeout 560 s; then call-b.sh.
. "$(dirname "$0")/call-prelude.sh"
$B/run build/ab9/fusecheck-M --version | tee -a $L
timeout 110 $B/run build/ab9/gpu_test_dataflow-M --jobs 1 > $Y/tests-M.log 2>&1; t "test M rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-M.log | head -24 | tee -a $L
timeout 150 $B/run build/ab9/fusecheck-M bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record M rc=$?"; grep -E "^\| (fused|cublas|dataflow|reference) " $Y/record-0.6b.log | tee -a $L
timeout 150 $B/run build/ab9/fusecheck-M synth --preset qwen3-8b --out /tmp/qwen3-8b > $Y/synth-8b.log 2>&1; t "synth 8b rc=$?"
timeout 150 $B/run build/ab9/fusecheck-M bench --model /tmp/qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record M rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
for b in OL2 LO; do
  timeout 100 $B/run build/ab8/fusecheck-$b bench --model /tmp/qwen3-8b --engine dataflow --context 1024 --repeat 3 > $Y/8b-$b.log 2>&1; t "8b $b rc=$? $(grep -E '^\| dataflow ' $Y/8b-$b.log | tr '\n' ' ')"
done
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab8/fusecheck-PT \
  build/ab9/fusecheck-M build/ab8/fusecheck-LO build/ab8/fusecheck-QD build/ab8/fusecheck-P5 > $Y/ab.txt 2>&1
t "ab done"; tail -6 $Y/ab.txt | tee -a $L
# QD's A/B runs its qkv,gate_up,down kernel (13,056 SASS instructions); with gate/up's pages only it
# runs a kernel of main's size (11,640) and main's page behaviour: the code's size or the pages?
for b in PT QD; do
  FUSECHECK_DATAFLOW_PAGES=gate_up timeout 60 $B/run $(exe fusecheck-$b) bench --preset qwen3-0.6b --engine dataflow --context 128,1024 --repeat 3 > $Y/pages-gate-up-$b.log 2>&1
  t "$b with gate_up pages only rc=$? $(grep -E '^\| dataflow ' $Y/pages-gate-up-$b.log | cut -d'|' -f3,4 | tr '\n' ' ')"
done
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
