#!/usr/bin/env bash
# Builds what next-call.sh (beside this file) runs, each from its commit, in throwaway worktrees under
# /tmp, into build/ab8/ (beside the tenth session's); then packs them into .devbundle8/ (ignored by .gitignore's /.devbundle*/)
# with ../shared/device/bundle, the executables as one bin.tar.xz. Run from anywhere in the
# checkout; about a minute a build here. A bundle does not outlive the machine it was built on:
# rebuild it in the session that calls.
#
#   PT   5bfe28f  main's kernel since 8ed4454 (the batched waits and tile_finish's diet; NOTES v12)
#   PXR  4e34825  branch dataflow-runs-where-runs: runs of one projection's tiles, compiled only into
#                 the kernels that run them (qwen3-8b, 32 KB tiles), chosen by longest_run (v12)
#   BXR  2fac127  planted break on PXR (branch break-bxr, never merged): a run's next tile issued
#                 before this tile's dots; the 32 KB-tile matched profile must fail
#
# Then: `run` with carry [".devbundle8"], command `bash .devbundle8/next-call.sh`, timeout 560 s.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
here=reports/2026-12-07-session11
scratch=/tmp/fusecheck-bundle8
mkdir -p build/ab8 "$scratch"
exec 9> "$scratch.lock"
flock -n 9 || { echo "build-bundle: another build-bundle is running (it holds $scratch.lock)" >&2; exit 1; }

build() {  # label commit
    local label=$1 commit=$2 tree=$scratch/$1
    local started=$SECONDS
    git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
    git worktree add --detach "$tree" "$commit" > /dev/null 2>&1 ||
        { echo "build-bundle: cannot check out $commit for $label" >&2; exit 1; }
    cmake -S "$tree" -B "$tree/build" -G Ninja -DCMAKE_BUILD_TYPE=Release > "$scratch/$label.log" 2>&1 &&
        cmake --build "$tree/build" -j 2 --target fusecheck gpu_test_dataflow >> "$scratch/$label.log" 2>&1 ||
        { echo "build-bundle: the build of $label failed, see $scratch/$label.log" >&2; exit 1; }
    cp "$tree/build/fusecheck" "build/ab8/fusecheck-$label"
    cp "$tree/build/tests/gpu_test_dataflow" "build/ab8/gpu_test_dataflow-$label"
    git worktree remove --force "$tree"
    echo "build-bundle: $label ($commit) in $((SECONDS - started)) s"
}

build PT 5bfe28f
build PXR 4e34825
build BXR 2fac127

rm -rf .devbundle8
../shared/device/bundle .devbundle8 build/ab8/fusecheck-{PT,PXR} build/ab8/gpu_test_dataflow-{PXR,BXR}
(cd .devbundle8 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp reports/2026-12-07-session10/call-prelude.sh $here/next-call.sh .devbundle8/
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle8 | cut -f1) ))
echo "build-bundle: .devbundle8 $(du -sh .devbundle8 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle: over the 64 MiB a call may send" >&2; exit 1; }
