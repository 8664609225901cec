#!/usr/bin/env bash
# The fifteenth session's second device call, on the machine call-a.sh left warm: racecheck of
# main's kernel (MK, K3's three buffers) over the long-splits test with a 300 s limit (v15's was cut
# off at 120 s before its summary); MK and PPSO with 16 and 8 attention splits a kv head at 1024 and
# 4096 (2 rounds, added in the sixteenth session); then racecheck of PPSO over the long-splits test.
# About 400 s. Run: `run` with carry [".devbundle15"], command `bash .devbundle15/call-b.sh`,
# timeout 560 s.
. "$(dirname "$0")/call-prelude.sh"
san racecheck MK 'dataflow/small_with_long_splits*' long-splits 300
# 8 splits a kv head lost to 16 (0.903x at 1024, v10) when a pass cost about 556 instructions; with
# PPSO's cheaper passes, longer splits and a cheaper merge may trade differently.
for r in 1 2; do for b in MK PPSO; do for splits in 16 8; do
  FUSECHECK_DATAFLOW_SPLITS=$splits timeout 90 $B/run $(exe fusecheck-$b) bench --preset qwen3-0.6b --engine dataflow \
    --context 1024,4096 --repeat 3 > $Y/splits-$r-$b-$splits.log 2>&1
  t "splits $splits round $r $b rc=$? $(grep -E '^\| dataflow ' $Y/splits-$r-$b-$splits.log | cut -d'|' -f3,4 | tr -s ' ' | tr '\n' ' ')"
done; done; done
san racecheck PPSO 'dataflow/small_with_long_splits*' long-splits 150
t done
