#!/usr/bin/env bash
# Builds the executables next-call.sh (beside this file) runs, each from its commit
# (tools/build_at_commits.sh), into build/ab8/; then packs them into .devbundle6/ (ignored by
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
# Then: `run` with carry [".devbundle6"], command `bash .devbundle6/next-call.sh`, timeout 560 s (it ran
# in the eleventh session: ../2026-12-07-session11/call1/; the second call prepared here, records,
# timelines and ncu, ran trimmed as ../2026-12-07-session11/call2/call.sh).
set -euo pipefail
root=$(git rev-parse --show-toplevel)
cd "$root"
here=reports/2026-12-07-session10
tools/build_at_commits.sh build/ab8 H=b3608ed M=de6b838 BW2=fd96622 LM=0688b73 X=2f667df BX=8e11360 \
    P=92764bb PT=5bfe28f SPT=0774c63 BS=9d489a6

rm -rf .devbundle6
../shared/device/bundle .devbundle6 build/ab8/fusecheck-{H,M,LM,X,P,PT,SPT} \
    build/ab8/gpu_test_dataflow-{H,BW2,X,BX,P,PT,SPT,BS}
(cd .devbundle6 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp $here/call-prelude.sh $here/next-call.sh .devbundle6/
# What a call sends: the tracked files and the bundle, at most 64 MiB together.
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle6 | cut -f1) ))
echo "build-bundle: .devbundle6 $(du -sh .devbundle6 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle: over the 64 MiB a call may send" >&2; exit 1; }
