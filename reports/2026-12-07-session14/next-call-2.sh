#!/usr/bin/env bash
# The next session's second call, on the machine next-call.sh left warm: racecheck of main's kernel
# (MK, K3's three buffers) over the long-splits test with a 300 s limit (v15's was cut off at 120 s
# before its summary), and memcheck of K3S over it. About 330 s. Run: `run` with carry
# [".devbundle15"], command `bash .devbundle15/next-call-2.sh`, timeout 420 s.
. "$(dirname "$0")/call-prelude.sh"
san memcheck K3S 'dataflow/small_with_long_splits*' long-splits
san racecheck MK 'dataflow/small_with_long_splits*' long-splits 300
t done
