#!/usr/bin/env bash
# Packs what call-e.sh runs into .devbundle11/: main before LEAN (M, 01e10c8) and after (ML, ce824bc)
# into build/ab9/, LO (a7dbba3) into build/ab8/. Rebuild it in the session that calls.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
here=reports/2026-12-07-session13
tools/build_at_commits.sh build/ab9 M=01e10c8 ML=ce824bc
tools/build_at_commits.sh build/ab8 LO=a7dbba3
rm -rf .devbundle11
../shared/device/bundle .devbundle11 build/ab9/fusecheck-{M,ML} build/ab9/gpu_test_dataflow-ML build/ab8/fusecheck-LO
(cd .devbundle11 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp reports/2026-12-07-session12/call-prelude.sh $here/call-e.sh .devbundle11/
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle11 | cut -f1) ))
echo "build-bundle-e: .devbundle11 $(du -sh .devbundle11 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle-e: over the 64 MiB a call may send" >&2; exit 1; }
