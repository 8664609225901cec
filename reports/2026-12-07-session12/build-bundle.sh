#!/usr/bin/env bash
# Builds what next-call.sh and next-call-2.sh (beside this file) run and packs it into
# .devbundle9/ (ignored by .gitignore's /.devbundle*/): main after PXR and LMV merged (M, 01e10c8)
# into build/ab9/, and PT (5bfe28f), LMV (68c79e8), QD (a3a35b2), P5 (7ecfecf), LEAN (5d1bc3a, branch
# dataflow-lean-instance: the kernel without instrumentation for timed steps), its planted break
# BLEAN (4120f4b) and OL2 (1cd7179, branch dataflow-8b-oproj-l2: o_proj's tiles asked of L2 at
# attention's start in the kernels with runs) into build/ab8/ (kept where already built from their
# commits). A bundle does not outlive the machine it was built on: rebuild it in the session that
# calls.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
here=reports/2026-12-07-session12
tools/build_at_commits.sh build/ab9 M=01e10c8
tools/build_at_commits.sh build/ab8 PT=5bfe28f LMV=68c79e8 QD=a3a35b2 P5=7ecfecf LEAN=5d1bc3a BLEAN=4120f4b OL2=1cd7179
rm -rf .devbundle9
../shared/device/bundle .devbundle9 build/ab9/fusecheck-M build/ab9/gpu_test_dataflow-M build/ab8/fusecheck-{PT,LMV,QD,P5,LEAN,OL2} \
    build/ab8/gpu_test_dataflow-{LEAN,BLEAN,OL2}
(cd .devbundle9 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp $here/call-prelude.sh $here/next-call.sh $here/next-call-2.sh .devbundle9/
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle9 | cut -f1) ))
echo "build-bundle: .devbundle9 $(du -sh .devbundle9 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle: over the 64 MiB a call may send" >&2; exit 1; }
