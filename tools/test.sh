#!/usr/bin/env bash
# The whole test suite: installs dependencies, builds, runs every test through ctest.
# GPU tests skip with their reason on a machine without a CUDA device.
# Then the CPU tests again in an ASan + UBSan build (build-sanitize/), unless FUSECHECK_SKIP_SANITIZE is set.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/build.sh "$@"
build=${FUSECHECK_BUILD_DIR:-build}
# Say up front why the GPU tests will skip, rather than leaving "Skipped" unexplained in ctest's list.
gpu_status=0
gpu_reason=$("$build/fusecheck" devices 2>&1 >/dev/null) || gpu_status=$?
case $gpu_status in
  0) echo "GPU tests: run (a CUDA device is usable)" ;;
  4) echo "GPU tests: skipped, ${gpu_reason#fusecheck devices: }" ;;
  *) echo "$gpu_reason" >&2; exit "$gpu_status" ;;
esac
ctest --test-dir "$build" --output-on-failure -j 2

if [ -z "${FUSECHECK_SKIP_SANITIZE:-}" ]; then
  # No CUDA: the sanitizers instrument host C only, and the GPU tests have no device here anyway.
  sanitize=build-sanitize
  cmake -S . -B "$sanitize" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DFUSECHECK_SANITIZE=ON -DFUSECHECK_NO_CUDA=ON >/dev/null
  cmake --build "$sanitize" -j "$(nproc)"
  ASAN_OPTIONS=detect_leaks=1 LSAN_OPTIONS=suppressions=$PWD/tests/fuzz/lsan.supp UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
    ctest --test-dir "$sanitize" --output-on-failure -j 2
fi
