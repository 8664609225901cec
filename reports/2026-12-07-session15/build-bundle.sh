#!/usr/bin/env bash
# Builds what this session's calls run and packs it into .devbundle15/ (ignored by .gitignore's
# /.devbundle*/): main's kernel with K3 (MK, 7c03315), the candidate K3S (branch
# dataflow-second-piece-after-staging) and the planted break BSP (branch break-bsp) into build/ab12/;
# the candidates PP (dataflow-pass-pairs), PPEX (dataflow-pass-pairs-exp2), PPS
# (dataflow-pass-pairs-exp2-slices2) and PPSO (dataflow-pass-combine-stores) into build/ab13/; NF
# (dataflow-norm-folded, the sixteenth session's) into build/ab14/; with the call prelude, call-a.sh,
# call-b.sh, call-c.sh and call-short.sh. A bundle does not outlive the machine it was built on:
# rebuild it in the session that calls.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
here=reports/2026-12-07-session15
tools/build_at_commits.sh build/ab12 MK=7c03315 K3S=dataflow-second-piece-after-staging BSP=break-bsp
tools/build_at_commits.sh build/ab13 PP=dataflow-pass-pairs PPEX=dataflow-pass-pairs-exp2 PPS=dataflow-pass-pairs-exp2-slices2 \
    PPSO=dataflow-pass-combine-stores
tools/build_at_commits.sh build/ab14 NF=dataflow-norm-folded
rm -rf .devbundle15
../shared/device/bundle .devbundle15 build/ab12/fusecheck-{MK,K3S} build/ab12/gpu_test_dataflow-{MK,K3S,BSP} \
    build/ab13/fusecheck-{PP,PPEX,PPS,PPSO} build/ab13/gpu_test_dataflow-PPSO build/ab14/{fusecheck,gpu_test_dataflow}-NF
(cd .devbundle15 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp reports/2026-12-07-session12/call-prelude.sh $here/call-a.sh $here/call-b.sh $here/call-c.sh $here/call-short.sh \
    .devbundle15/
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle15 | cut -f1) ))
echo "build-bundle: .devbundle15 $(du -sh .devbundle15 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle: over the 64 MiB a call may send" >&2; exit 1; }
