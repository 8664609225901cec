#!/usr/bin/env bash
# Regenerates the committed golden traces: for the tiny, tiny-eps and small presets (seed 0), the reference with
# an fp32 KV cache (the pure profile, compared with the oracle) and with a bf16 KV cache (the fused
# engine's matched profile), 12 seeded prompt tokens + 8 decode steps. tests/test_committed_goldens.c
# regenerates them the same way and fails on drift.
#
#   golden/regenerate.sh [FUSECHECK_BINARY]        (default: build/fusecheck)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-build/fusecheck}
# The same OpenBLAS kernels on every machine (tests/CMakeLists.txt sets the same): summation order,
# and so the last bits of every golden, would otherwise follow the CPU model.
export OPENBLAS_CORETYPE=Haswell
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for preset in tiny tiny-eps small; do
  "$bin" synth --preset "$preset" --seed 0 --out "$work/$preset" >/dev/null
  for kv in f32 bf16; do
    "$bin" golden --model "$work/$preset" --prompt-len 12 --seed 1 --steps 8 --kv-dtype "$kv" \
      --out "golden/$preset-kv-$kv.h5"
  done
done
