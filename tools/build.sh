#!/usr/bin/env bash
# Configures and builds fusecheck into build/ (CUDA parts only when nvcc is on PATH).
# Extra arguments go to the CMake configure step, e.g. tools/build.sh -DFUSECHECK_SANITIZE=ON.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install_deps.sh
build=${FUSECHECK_BUILD_DIR:-build}
cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Release "$@" >/dev/null
cmake --build "$build" -j "$(nproc)"
