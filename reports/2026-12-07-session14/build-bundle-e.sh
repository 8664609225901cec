#!/usr/bin/env bash
# Builds what call-e.sh (beside this file) runs and packs it into .devbundle14e/ (ignored by
# .gitignore's /.devbundle*/): main's kernel (PLHQ, cd0df6c, in build/ab10/) and K3 (three K/V
# buffers) and its planted break BK3 into build/ab11/. A bundle does not outlive the machine it was
# built on: rebuild it in the session that calls.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
here=reports/2026-12-07-session14
tools/build_at_commits.sh build/ab10 PLHQ=cd0df6c
tools/build_at_commits.sh build/ab11 K3=dataflow-three-kv-buffers BK3=dataflow-three-kv-buffers-break
rm -rf .devbundle14e
../shared/device/bundle .devbundle14e build/ab10/fusecheck-PLHQ build/ab11/fusecheck-K3 build/ab11/gpu_test_dataflow-{K3,BK3}
(cd .devbundle14e && tar -cJf bin.tar.xz bin && rm -rf bin)
cp reports/2026-12-07-session12/call-prelude.sh $here/call-e.sh .devbundle14e/
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle14e | cut -f1) ))
echo "build-bundle-e: .devbundle14e $(du -sh .devbundle14e | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle-e: over the 64 MiB a call may send" >&2; exit 1; }
