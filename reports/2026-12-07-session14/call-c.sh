#!/usr/bin/env bash
# The fourteenth session's A/B of main (MN, 5527642) against PL (a split longer than a K/V buffer in
# pieces of one pass of every warp), HQ (the q heads' slices in registers once a split) and PLHQ
# (both); PLHQ's GPU suite; the planted break BPL, which must fail; HQ's and PLHQ's bits against MN's
# and PL's at tolerance 0; memcheck and racecheck of PLHQ over the long-splits test (PL's pieces);
# PL's suite last. About 480 s. Bundle: `bash reports/2026-12-07-session14/build-bundle-c.sh`. Run:
# `run` with carry [".devbundle14"], command `bash .devbundle14/call-c.sh`, timeout 580 s.
. "$(dirname "$0")/call-prelude.sh"
for b in MN PL HQ PLHQ; do $B/run $(exe fusecheck-$b) --version | tee -a $L; done
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh \
    $(exe fusecheck-MN) $(exe fusecheck-PL) $(exe fusecheck-HQ) $(exe fusecheck-PLHQ) > $Y/ab.txt 2>&1
t "ab done"; tail -5 $Y/ab.txt | tee -a $L
timeout 120 $B/run $(exe gpu_test_dataflow-PLHQ) --jobs 1 > $Y/tests-PLHQ.log 2>&1; t "test PLHQ rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-PLHQ.log | head -24 | tee -a $L
timeout 90 $B/run $(exe gpu_test_dataflow-BPL) --filter 'dataflow/*long_splits*' --jobs 1 > $Y/break-BPL.log 2>&1
t "planted break BPL (a long split's piece counted as 80 positions, 64 copied) rc=$? $(grep -E 'Synthesis' $Y/break-BPL.log | tr '\n' ' ')"
grep -E 'matched profile \(' $Y/break-BPL.log | head -4 | tee -a $L
$B/run $(exe fusecheck-MN) synth --preset qwen3-0.6b --out /tmp/m06 > $Y/synth-0.6b.log 2>&1
$B/run $(exe fusecheck-MN) golden --model /tmp/m06 --prompt-len 16 --steps 8 --kv-dtype bf16 --quiet --out /tmp/g.h5 > $Y/golden.log 2>&1
for b in MN PL HQ PLHQ; do
  timeout 60 $B/run $(exe fusecheck-$b) run --engine dataflow --model /tmp/m06 --golden /tmp/g.h5 --out /tmp/run-$b.h5 --quiet > $Y/run-$b.log 2>&1
done
timeout 30 $B/run $(exe fusecheck-MN) compare /tmp/run-HQ.h5 /tmp/run-MN.h5 --max-rel-l2 0 --max-norm-max 0 > $Y/same-bits-HQ.log 2>&1
t "HQ against MN at tolerance 0 rc=$? $(grep -iE '^summary' $Y/same-bits-HQ.log | head -1)"
timeout 30 $B/run $(exe fusecheck-MN) compare /tmp/run-PLHQ.h5 /tmp/run-PL.h5 --max-rel-l2 0 --max-norm-max 0 > $Y/same-bits-PLHQ.log 2>&1
t "PLHQ against PL at tolerance 0 rc=$? $(grep -iE '^summary' $Y/same-bits-PLHQ.log | head -1)"
san memcheck PLHQ 'dataflow/small_with_long_splits*' long-splits
san racecheck PLHQ 'dataflow/small_with_long_splits*' long-splits
timeout 120 $B/run $(exe gpu_test_dataflow-PL) --jobs 1 > $Y/tests-PL.log 2>&1; t "test PL rc=$?"
grep -E 'Synthesis|FAIL' $Y/tests-PL.log | tee -a $L
t done
