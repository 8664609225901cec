#!/usr/bin/env bash
# The next session's first device call: correctness and the A/B. Prepared in the ninth session (as
# session9/next-call-h.sh) and the tenth, which had no device time. Main's kernel H (b3608ed) has not
# run as such (08b9d1a, the same kernel plus the default-off L2 prefetch, ran on an H100: NOTES v10).
# Candidates: P (branch dataflow-poll: the batched waits, v11), PT (dataflow-tile-diet: P with fewer
# instructions in tile_finish, v11), SPT (dataflow-stager-page: PT with stager warps, v11), LM
# (dataflow-lm) and X (dataflow-runs, for qwen3-8b); M is 33ff308's kernel, the baseline of v9 and
# v10. BW2, BX and BS are planted breaks: of the long-split and 32 KB-tile matched profiles, which no
# GPU has run, and of the stagers' page. About 440 s.
# Bundle: `bash reports/2026-12-07-session10/build-bundle.sh`.
# Run: `run` with carry [".devbundle6"], command `bash .devbundle6/next-call.sh`, timeout 560 s; on the H200.
# Then merge what passed and won, rebuild, and run next-call-2.sh (records, timelines, ncu).
. "$(dirname "$0")/call-prelude.sh"
$B/run build/ab8/fusecheck-H --version | tee -a $L
for b in H P PT SPT; do
  timeout 150 $B/run build/ab8/gpu_test_dataflow-$b --jobs 1 > $Y/tests-$b.log 2>&1; t "test $b rc=$?"
  grep -E 'matched profile \(|bit-identical|Synthesis|FAIL' $Y/tests-$b.log | head -24 | tee -a $L
done
timeout 60 $B/run build/ab8/gpu_test_dataflow-BW2 --filter 'dataflow/small_with_long*' --jobs 1 > $Y/bw2.log 2>&1; t "planted break BW2 (the warps' combine not rescaled) rc=$? $(grep -E 'matched profile \(|Synthesis' $Y/bw2.log | head -2 | tr '\n' ' ')"
timeout 150 $B/run build/ab8/gpu_test_dataflow-X --filter 'dataflow/qwen3_0_6b*' --jobs 1 > $Y/tests-X.log 2>&1; t "test X (qwen3-0.6b: default and 32 KB tiles) rc=$?"
grep -E 'matched profile \(|Synthesis|FAIL' $Y/tests-X.log | head -8 | tee -a $L
timeout 100 $B/run build/ab8/gpu_test_dataflow-BS --filter 'dataflow/qwen3_0_6b_matches*' --jobs 1 > $Y/bs.log 2>&1; t "planted break BS (a stager takes its neighbour's slots) rc=$? $(grep -E 'matched profile \(|Synthesis' $Y/bs.log | head -2 | tr '\n' ' ')"
timeout 100 $B/run build/ab8/gpu_test_dataflow-BX --filter 'dataflow/qwen3_0_6b_with_several*' --jobs 1 > $Y/bx.log 2>&1; t "planted break BX (a run's next tile issued before the dots) rc=$? $(grep -E 'matched profile \(|Synthesis' $Y/bx.log | head -2 | tr '\n' ' ')"
san memcheck H 'dataflow/small_with_long*' long-splits
san memcheck SPT 'dataflow/small_with_long*' long-splits
san racecheck SPT 'dataflow/small_with_long*' long-splits
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab8/fusecheck-{M,H,P,PT,SPT,LM,X} > $Y/ab.txt 2>&1; t "ab done"; tail -8 $Y/ab.txt | tee -a $L
cp /tmp/ab/* $Y/ 2>/dev/null
