#!/usr/bin/env bash
# The fifteenth session's second device call, on the machine call-a.sh left warm: racecheck of main's
# kernel (MK, K3's three buffers) over the long-splits test with a 300 s limit (v15's was cut off at 120
# s before its summary), then racecheck of PPSO over it. About 330 s. Run: `run` with carry
# [".devbundle15"], command `bash .devbundle15/call-b.sh`, timeout 560 s.
. "$(dirname "$0")/call-prelude.sh"
san racecheck MK 'dataflow/small_with_long_splits*' long-splits 300
san racecheck PPSO 'dataflow/small_with_long_splits*' long-splits 200
t done
