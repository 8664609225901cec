#!/usr/bin/env bash
# The next session's first device call (prepared in the eleventh, NOTES v12): which candidates win.
# Candidates, each a branch on main's kernel PT (5bfe28f): PXR (runs of a projection's tiles, compiled
# only into the kernels that run them: the 8B bar), QD (QKV's and down's weight pages off the chain),
# LMV (the LM head's inputs read once a group), P5 (attention pieces of 65-80 positions in one pass of
# 5 a warp), and ALL (the four merged). The A/B of the six at 128/1024/4096/16384; qwen3-8b of PT,
# PXR and ALL (fused in the same runs); the GPU suites of PXR and QD. About 420 s.
# Bundle: `bash reports/2026-12-07-session11/build-bundle.sh`.
# Run: `run` with carry [".devbundle8"], command `bash .devbundle8/next-call.sh`, timeout 560 s.
# Then next-call-2.sh (the other suites, the planted breaks, memcheck) and next-call-3.sh (racecheck,
# timelines); drop the lines of a candidate that lost.
. "$(dirname "$0")/call-prelude.sh"
$B/run build/ab8/fusecheck-PT --version | tee -a $L
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=3 OUT=/tmp/ab tools/gpu_ab.sh build/ab8/fusecheck-{PT,PXR,QD,LMV,P5,ALL} > $Y/ab.txt 2>&1; t "ab done"; tail -7 $Y/ab.txt | tee -a $L
cp /tmp/ab/* $Y/ 2>/dev/null
for b in PT PXR ALL; do timeout 100 $B/run build/ab8/fusecheck-$b bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 > $Y/8b-$b.log 2>&1; t "8b $b rc=$? $(grep -E '^\| (fused|dataflow) ' $Y/8b-$b.log | tr '\n' ' ')"; done
for b in PXR QD; do
  timeout 110 $B/run build/ab8/gpu_test_dataflow-$b --jobs 1 > $Y/tests-$b.log 2>&1; t "test $b rc=$?"
  grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-$b.log | head -24 | tee -a $L
done
