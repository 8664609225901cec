#!/usr/bin/env bash
# Builds what next-call.sh and next-call-2.sh (beside this file) run and packs it into .devbundle15/
# (ignored by .gitignore's /.devbundle*/): main's kernel with K3 (MK, 7c03315) and the candidate K3S
# (a long split's second K/V piece asked for after the q/k/v staging, branch
# dataflow-second-piece-after-staging) into build/ab12/. A bundle does not outlive the machine it was
# built on: rebuild it in the session that calls.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
here=reports/2026-12-07-session14
tools/build_at_commits.sh build/ab12 MK=7c03315 K3S=dataflow-second-piece-after-staging
rm -rf .devbundle15
../shared/device/bundle .devbundle15 build/ab12/fusecheck-{MK,K3S} build/ab12/gpu_test_dataflow-{MK,K3S}
(cd .devbundle15 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp reports/2026-12-07-session12/call-prelude.sh $here/next-call.sh $here/next-call-2.sh .devbundle15/
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle15 | cut -f1) ))
echo "build-bundle-next: .devbundle15 $(du -sh .devbundle15 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle-next: over the 64 MiB a call may send" >&2; exit 1; }
