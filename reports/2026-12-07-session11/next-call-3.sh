#!/usr/bin/env bash
# The next session's third device call (prepared in the eleventh, NOTES v12): racecheck and timelines.
# `small` covers QD's page on the K/V buffers (its QKV tiles fit there); PXR's runs and P5's passes run
# only on qwen3-0.6b shapes, where racecheck of a whole test takes over 5 minutes, so two decode steps
# through `fusecheck generate` instead. Then whether LMV, QD and PXR (designed to change no sum) give
# PT's bits: each build's traced, teacher-forced run of the same golden, compared with PT's at
# tolerance 0 (every tensor, layer and step, logits included). About 520 s.
# Run: `run` with carry [".devbundle8"], command `bash .devbundle8/next-call-3.sh`, timeout 560 s.
. "$(dirname "$0")/call-prelude.sh"
san racecheck QD 'dataflow/small_matches*' small
san racecheck ALL 'dataflow/small_matches*' small
$B/run build/ab8/fusecheck-PT synth --preset qwen3-0.6b --out /tmp/m06 > /dev/null 2>&1
rc_gen() {  # label, log label, prompt length, then VARIABLE=VALUE settings
  local b=$1 what=$2 prompt=$3; shift 3
  env "$@" timeout 120 compute-sanitizer --tool racecheck $B/run build/ab8/fusecheck-$b generate --engine dataflow \
    --model /tmp/m06 --prompt-len $prompt -n 2 --quiet > $Y/san-racecheck-$b-$what.log 2>&1
  t "racecheck $b $what rc=$? $(tail -1 $Y/san-racecheck-$b-$what.log)"
}
rc_gen PXR 32kb-tiles 4 FUSECHECK_DATAFLOW_TILE_KB=32 FUSECHECK_DATAFLOW_PAGES=none
rc_gen P5 one-split 70 FUSECHECK_DATAFLOW_SPLITS=1  # 71-72 positions: a pass of 5
$B/run build/ab8/fusecheck-PT golden --model /tmp/m06 --prompt-len 16 --steps 8 --kv-dtype bf16 --quiet --out /tmp/g.h5 > $Y/golden.log 2>&1
for b in PT LMV QD PXR; do
  timeout 60 $B/run build/ab8/fusecheck-$b run --engine dataflow --model /tmp/m06 --golden /tmp/g.h5 --out /tmp/run-$b.h5 --quiet > $Y/run-$b.log 2>&1
  [ $b = PT ] && continue
  timeout 30 $B/run build/ab8/fusecheck-PT compare /tmp/run-$b.h5 /tmp/run-PT.h5 --max-rel-l2 0 --max-norm-max 0 > $Y/same-bits-$b.log 2>&1
  t "$b against PT at tolerance 0 rc=$? $(grep -iE 'fail|pass' $Y/same-bits-$b.log | head -2 | tr '\n' ' ')"
done
timeline ALL qwen3-0.6b 1024 32
timeline ALL qwen3-0.6b 16384 32
timeline ALL qwen3-8b 1024 8
timeline QD qwen3-0.6b 1024 32
timeline P5 qwen3-0.6b 1024 32
t timelines
