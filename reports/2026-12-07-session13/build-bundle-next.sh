#!/usr/bin/env bash
# Builds what next-call.sh and next-call-2.sh (beside this file) run and packs it into .devbundle13/
# (ignored by .gitignore's /.devbundle*/): main (ML, ce824bc: LEAN merged) into build/ab9/, with MLI
# (ce824bc built with -lineinfo, for ncu's source view: its kernels' SASS is identical to ML's); NR
# (072b251, branch dataflow-newest-row) and its planted break BNR (93dd509) into build/ab8/. A bundle
# does not outlive the machine it was built on: rebuild it in the session that calls.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
here=reports/2026-12-07-session13
tools/build_at_commits.sh build/ab9 ML=ce824bc
tools/build_at_commits.sh build/ab8 NR=072b251 BNR=93dd509
if ! build/ab9/fusecheck-MLI --version 2>/dev/null | grep -q "built from ce824bc"; then
    rm -rf /tmp/mli && git worktree add --detach /tmp/mli ce824bc > /dev/null
    cmake -S /tmp/mli -B /tmp/mli/build -G Ninja -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_FLAGS=-lineinfo > /tmp/mli.log
    cmake --build /tmp/mli/build -j 2 --target fusecheck >> /tmp/mli.log
    cp /tmp/mli/build/fusecheck build/ab9/fusecheck-MLI && git worktree remove --force /tmp/mli
fi
rm -rf .devbundle13
../shared/device/bundle .devbundle13 build/ab9/fusecheck-{ML,MLI} build/ab9/gpu_test_dataflow-ML build/ab8/fusecheck-NR \
    build/ab8/gpu_test_dataflow-{NR,BNR}
(cd .devbundle13 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp reports/2026-12-07-session12/call-prelude.sh $here/next-call.sh $here/next-call-2.sh .devbundle13/
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle13 | cut -f1) ))
echo "build-bundle-next: .devbundle13 $(du -sh .devbundle13 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle-next: over the 64 MiB a call may send" >&2; exit 1; }
