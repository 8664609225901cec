#!/usr/bin/env bash
# Builds what call-c.sh and call-d.sh (beside this file) run and packs it into .devbundle14/ (ignored by
# .gitignore's /.devbundle*/): main (MN, 5527642: NR merged), PL (one-pass pieces), HQ (q heads in
# registers), PLHQ (both) and the planted break BPL into build/ab10/. A bundle does not outlive the
# machine it was built on: rebuild it in the session that calls.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
here=reports/2026-12-07-session14
tools/build_at_commits.sh build/ab10 MN=5527642 PL=dataflow-one-pass-pieces HQ=dataflow-heads-in-registers \
    PLHQ=dataflow-pl-hq BPL=dataflow-one-pass-pieces-break
rm -rf .devbundle14
../shared/device/bundle .devbundle14 build/ab10/fusecheck-{MN,PL,HQ,PLHQ} build/ab10/gpu_test_dataflow-{PL,PLHQ,BPL}
(cd .devbundle14 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp reports/2026-12-07-session12/call-prelude.sh $here/call-c.sh $here/call-d.sh .devbundle14/
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle14 | cut -f1) ))
echo "build-bundle-c: .devbundle14 $(du -sh .devbundle14 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle-c: over the 64 MiB a call may send" >&2; exit 1; }
