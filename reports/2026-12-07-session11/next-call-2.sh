#!/usr/bin/env bash
# The next session's second device call (prepared in the eleventh, NOTES v12), after next-call.sh: the
# candidates' planted breaks and sanitizers, and timelines. Drop the lines of a candidate that lost.
# BXR (a run's next tile issued before the dots) must fail the 32 KB-tile profile; BQD (QKV's page
# onto the K/V buffers during attention) page_sets_are_bit_identical; BLMV (the LM head's rows one
# late) the matched profile; BP5 (a pass of 5 takes its scores at a pass of 4's lanes) the qwen3-0.6b
# long-split profile. Sanitizers: `small` covers QD's page on the K/V buffers and LMV; PXR's runs and
# P5's passes run only on qwen3-0.6b shapes, where the racecheck of a whole test takes over 5 minutes,
# so two decode steps through `fusecheck generate` instead. About 520 s.
# Run: `run` with carry [".devbundle8"], command `bash .devbundle8/next-call-2.sh`, timeout 560 s.
. "$(dirname "$0")/call-prelude.sh"
brk() {  # label, test filter, what it breaks
  timeout 100 $B/run build/ab8/gpu_test_dataflow-$1 --filter "$2" --jobs 1 > $Y/break-$1.log 2>&1
  t "planted break $1 ($3) rc=$? $(grep -E 'matched profile \(|differ|Synthesis' $Y/break-$1.log | head -2 | tr '\n' ' ')"
}
brk BXR 'dataflow/qwen3_0_6b_with_several*' "a run's next tile issued before the dots"
brk BQD 'dataflow/page_sets*' "QKV's page onto the K/V buffers during attention"
brk BLMV 'dataflow/small_matches*' "the LM head's rows one late"
brk BP5 'dataflow/qwen3_0_6b_with_long*' "a pass of 5 takes a pass of 4's score lanes"
san memcheck QD 'dataflow/small_matches*' small
san racecheck QD 'dataflow/small_matches*' small
san memcheck LMV 'dataflow/small_matches*' small
san memcheck PXR 'dataflow/qwen3_0_6b_with_several*' 32kb-tiles
san memcheck P5 'dataflow/qwen3_0_6b_with_long*' qwen3-long-splits
$B/run build/ab8/fusecheck-PT synth --preset qwen3-0.6b --out /tmp/m06 > /dev/null 2>&1
rc_gen() {  # label, log label, then VARIABLE=VALUE settings
  local b=$1 what=$2; shift 2
  env "$@" timeout 120 compute-sanitizer --tool racecheck $B/run build/ab8/fusecheck-$b generate --engine dataflow \
    --model /tmp/m06 --prompt-len 70 -n 2 --quiet > $Y/san-racecheck-$b-$what.log 2>&1
  t "racecheck $b $what rc=$? $(tail -1 $Y/san-racecheck-$b-$what.log)"
}
rc_gen PXR 32kb-tiles FUSECHECK_DATAFLOW_TILE_KB=32
rc_gen P5 one-split FUSECHECK_DATAFLOW_SPLITS=1
timeline QD qwen3-0.6b 1024 32
timeline LMV qwen3-0.6b 1024 32
timeline P5 qwen3-0.6b 1024 32
timeline P5 qwen3-0.6b 16384 32
timeline PXR qwen3-8b 1024 8
t timelines
