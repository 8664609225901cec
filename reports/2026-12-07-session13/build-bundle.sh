#!/usr/bin/env bash
# Builds what call-c.sh and call-d.sh (beside this file) ran and packs it into .devbundle10/ (ignored
# by .gitignore's /.devbundle*/): main (M, 01e10c8's kernel) into build/ab9/; PT (5bfe28f, the A/B's
# baseline), QD (a3a35b2), P5 (7ecfecf), OL2 (1cd7179, branch dataflow-8b-oproj-l2), LO (a7dbba3,
# branch dataflow-lean-ol2: main with LEAN and OL2 merged; on qwen3-0.6b its timed kernel is LEAN's)
# and BLEAN (4120f4b, LEAN's planted break) into build/ab8/ (kept where already built from their
# commits). A bundle does not outlive the machine it was built on: rebuild it in the session that calls.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
here=reports/2026-12-07-session13
tools/build_at_commits.sh build/ab9 M=01e10c8
tools/build_at_commits.sh build/ab8 PT=5bfe28f QD=a3a35b2 P5=7ecfecf OL2=1cd7179 LO=a7dbba3 BLEAN=4120f4b
rm -rf .devbundle10
../shared/device/bundle .devbundle10 build/ab9/fusecheck-M build/ab9/gpu_test_dataflow-M build/ab8/fusecheck-{PT,QD,P5,OL2,LO} \
    build/ab8/gpu_test_dataflow-{LO,BLEAN}
(cd .devbundle10 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp reports/2026-12-07-session12/call-prelude.sh $here/call-c.sh $here/call-d.sh .devbundle10/
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle10 | cut -f1) ))
echo "build-bundle: .devbundle10 $(du -sh .devbundle10 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle: over the 64 MiB a call may send" >&2; exit 1; }
