#!/usr/bin/env bash
# The next session's second device call (prepared in the eleventh, NOTES v12), after next-call.sh: the
# GPU suites of LMV, P5 and ALL, the planted breaks, memcheck. BXR (a run's next tile issued before the
# dots) must fail the 32 KB-tile profile; BQD (QKV's page asked for where an attention comes first,
# so its K/V copies land on it) page_sets_are_bit_identical; BLMV (the LM head's rows one late) the matched profile; BP5 (a pass of
# 5 takes its scores at a pass of 4's lanes) the qwen3-0.6b long-split profile. About 480 s.
# Run: `run` with carry [".devbundle8"], command `bash .devbundle8/next-call-2.sh`, timeout 560 s.
. "$(dirname "$0")/call-prelude.sh"
for b in LMV P5 ALL; do
  timeout 110 $B/run build/ab8/gpu_test_dataflow-$b --jobs 1 > $Y/tests-$b.log 2>&1; t "test $b rc=$?"
  grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-$b.log | head -24 | tee -a $L
done
brk() {  # label, test filter, what it breaks
  timeout 100 $B/run build/ab8/gpu_test_dataflow-$1 --filter "$2" --jobs 1 > $Y/break-$1.log 2>&1
  t "planted break $1 ($3) rc=$? $(grep -E 'matched profile \(|differ|Synthesis' $Y/break-$1.log | head -2 | tr '\n' ' ')"
}
brk BXR 'dataflow/qwen3_0_6b_with_several*' "a run's next tile issued before the dots"
brk BQD 'dataflow/page_sets*' "QKV's page where an attention's K/V copies land"
brk BLMV 'dataflow/small_matches*' "the LM head's rows one late"
brk BP5 'dataflow/qwen3_0_6b_with_long*' "a pass of 5 takes a pass of 4's score lanes"
san memcheck QD 'dataflow/small_matches*' small
san memcheck LMV 'dataflow/small_matches*' small
san memcheck PXR 'dataflow/qwen3_0_6b_with_several*' 32kb-tiles
san memcheck P5 'dataflow/qwen3_0_6b_with_long*' qwen3-long-splits
san memcheck ALL 'dataflow/small_with_long*' long-splits
