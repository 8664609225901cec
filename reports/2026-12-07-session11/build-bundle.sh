#!/usr/bin/env bash
# Builds what next-call.sh and next-call-2.sh (beside this file) run, each from its commit
# (tools/build_at_commits.sh, into build/ab8/ beside the tenth session's; a build already there from
# its commit is kept), then packs them into .devbundle8/ (ignored by .gitignore's /.devbundle*/) with
# ../shared/device/bundle, the executables as one bin.tar.xz. Run from anywhere in the checkout; about
# a minute a build here, 13 minutes from nothing. A bundle does not outlive the machine it was built
# on: rebuild it in the session that calls.
#
#   PT   5bfe28f  main's kernel since 8ed4454 (the batched waits and tile_finish's diet; NOTES v12)
#   PXR  4e34825  branch dataflow-runs-where-runs: runs of one projection's tiles, compiled only into
#                 the kernels that run them (qwen3-8b, 32 KB tiles), chosen by longest_run (v12)
#   QD   a3a35b2  branch dataflow-pages-off-chain: QKV's page on the K/V buffers filled at o_proj,
#                 down's on gate/up's page filled when gate/up's tile leaves it, each also asked for
#                 at the other ops' points so every paged tile reaches its page (v12)
#   LMV  68c79e8  branch dataflow-lm-vec: the LM head's inputs read once a group, no divisions (v12)
#   P5   7ecfecf  branch dataflow-attn-p5: attention pieces of 65-80 positions in one pass of 5 (v12)
#   ALL  d1a53ca  branch dataflow-combined: main with LMV, P5, QD and PXR merged (runs only in the
#                 no-pages kernel, passes of 5 only without runs: the others spilled)
# Planted breaks, one commit each on top of the build they break (branches break-*, never merged):
#   BXR  2fac127  on PXR: a run's next tile issued before this tile's dots; the 32 KB-tile matched
#                 profile must fail
#   BQD  83c6100  on QD: QKV's page asked for even where an attention instruction comes first, onto
#                 the K/V buffers it copies to; page_sets_are_bit_identical must fail
#   BLMV de4d03a  on LMV: the LM head's row walk wraps one row late; the matched profile must fail
#   BP5  58575f8  on P5: a pass of 5 takes its scores at a pass of 4's lanes; the qwen3-0.6b long-split
#                 profile must fail
#
# Then: `run` with carry [".devbundle8"], command `bash .devbundle8/next-call.sh`, timeout 560 s;
# then next-call-2.sh and next-call-3.sh the same way.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
here=reports/2026-12-07-session11
tools/build_at_commits.sh build/ab8 PT=5bfe28f PXR=4e34825 QD=a3a35b2 LMV=68c79e8 P5=7ecfecf ALL=d1a53ca \
    BXR=2fac127 BQD=83c6100 BLMV=de4d03a BP5=58575f8
rm -rf .devbundle8
../shared/device/bundle .devbundle8 build/ab8/fusecheck-{PT,PXR,QD,LMV,P5,ALL} \
    build/ab8/gpu_test_dataflow-{PXR,QD,LMV,P5,ALL,BXR,BQD,BLMV,BP5}
(cd .devbundle8 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp reports/2026-12-07-session10/call-prelude.sh $here/next-call.sh $here/next-call-2.sh $here/next-call-3.sh .devbundle8/
# What a call sends: the tracked files and the bundle, at most 64 MiB together.
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle8 | cut -f1) ))
echo "build-bundle: .devbundle8 $(du -sh .devbundle8 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle: over the 64 MiB a call may send" >&2; exit 1; }
