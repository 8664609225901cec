#!/usr/bin/env bash
# Builds the libFuzzer harnesses (clang, ASan + UBSan + LeakSanitizer) and runs one of them.
#   tools/fuzz.sh TARGET [SECONDS] [extra libFuzzer flags]     TARGET: safetensors index config trace
# The seed corpus is tests/fuzz/corpus/TARGET (read only); new inputs go to build-fuzz/corpus/TARGET,
# crashes, hangs and leaks to build-fuzz/findings/TARGET/. A finding becomes a fix plus a copy of the
# input in tests/fuzz/regressions/TARGET/, which tests/test_fuzz_regressions.c replays in ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: tools/fuzz.sh safetensors|index|config|trace [SECONDS] [libFuzzer flags]}
seconds=${2:-600}
shift $(( $# >= 2 ? 2 : 1 ))
case "$target" in safetensors|index|config|trace) ;; *) echo "fuzz.sh: unknown target '$target'" >&2; exit 2;; esac
command -v clang >/dev/null || { echo "fuzz.sh: clang is missing (apt-get install clang libclang-rt-dev)" >&2; exit 2; }

build=${FUSECHECK_FUZZ_BUILD_DIR:-build-fuzz}
if [ ! -f "$build/build.ninja" ]; then
  cmake -S . -B "$build" -G Ninja -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    -DFUSECHECK_FUZZ=ON -DFUSECHECK_SANITIZE=ON -DFUSECHECK_NO_CUDA=ON >/dev/null
fi
cmake --build "$build" --target "fuzz_$target" -j 2 >/dev/null

corpus="$build/corpus/$target" findings="$build/findings/$target"
mkdir -p "$corpus" "$findings"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/tests/fuzz/lsan.supp}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
dict=()
[ -f "tests/fuzz/$target.dict" ] && dict=(-dict="tests/fuzz/$target.dict")
exec "$build/fuzz/fuzz_$target" "$corpus" "tests/fuzz/corpus/$target" "${dict[@]}" \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
  -artifact_prefix="$findings/" "$@"
