#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every test through ctest.
# GPU tests skip with their reason on a machine without a CUDA device.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh "$@"
build=${FUSECHECK_BUILD_DIR:-build}
ctest --test-dir "$build" --output-on-failure -j 2
