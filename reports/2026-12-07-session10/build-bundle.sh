#!/usr/bin/env bash
# Builds the executables next-call.sh and next-call-2.sh (beside this file) run, each from its commit, in
# throwaway worktrees under /tmp, into build/ab8/; then packs them into .devbundle6/ (ignored by
# .gitignore's /.devbundle*/) with ../shared/device/bundle, the executables as one bin.tar.xz. Run from
# anywhere in the checkout; about a minute a build here, 10 minutes in all. A bundle does not outlive
# the machine it was built on: rebuild it in the session that calls.
#
#   H    b3608ed  main's kernel (attention by warps, the combine unrolled, the argmax by a warp, no L2
#                 prefetch), with the long-split and 32 KB-tile matched-profile tests
#   M    de6b838  33ff308's kernel, the A/B baseline of v9 and v10
#   LM   0688b73  branch dataflow-lm: the LM head's next group's loads before this group's sums
#   X    2f667df  branch dataflow-runs: LM plus a block's tiles of one projection as a run
#   P    92764bb  branch dataflow-poll: tagged values a thread has in flight waited for as a batch, one
#                 trip to L2 a round (NOTES v11)
#   PT   5bfe28f  branch dataflow-tile-diet: P with fewer instructions in tile_finish (NOTES v11)
#   SPT  0774c63  branch dataflow-stager-page: PT with the input staged by 4 stager warps whose slots
#                 come through a shared-memory page (NOTES v11)
# Planted breaks, one commit each on top of the build they break (branches break-*, never merged):
#   BW2  fd96622  on H: the warps' combine not rescaled; the long-split matched profile must fail
#   BX   8e11360  on X: a run's next tile issued before this tile's dots; the 32 KB-tile profile must fail
#   BS   9d489a6  on SPT: a stager takes its neighbour's slots from the page; the matched profile must fail
#
# Then: `run` with carry [".devbundle6"], command `bash .devbundle6/next-call.sh`, timeout 560 s; after
# the merge of what won, `REC=<label> bash .devbundle6/next-call-2.sh` (records, timelines, ncu).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
here=reports/2026-12-07-session10
scratch=/tmp/fusecheck-bundle
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

build H b3608ed
build M de6b838
build BW2 fd96622
build LM 0688b73
build X 2f667df
build BX 8e11360
build P 92764bb
build PT 5bfe28f
build SPT 0774c63
build BS 9d489a6

rm -rf .devbundle6
../shared/device/bundle .devbundle6 build/ab8/fusecheck-{H,M,LM,X,P,PT,SPT} \
    build/ab8/gpu_test_dataflow-{H,BW2,X,BX,P,PT,SPT,BS}
(cd .devbundle6 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp $here/call-prelude.sh $here/next-call.sh $here/next-call-2.sh .devbundle6/
# What a call sends: the tracked files and the bundle, at most 64 MiB together.
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle6 | cut -f1) ))
echo "build-bundle: .devbundle6 $(du -sh .devbundle6 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle: over the 64 MiB a call may send" >&2; exit 1; }
