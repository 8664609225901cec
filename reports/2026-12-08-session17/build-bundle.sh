#!/usr/bin/env bash
# Builds what the next session's calls (call-m.sh, call-n.sh, or call-m2.sh alone) run and packs it
# into .devbundle17/ (ignored by .gitignore's /.devbundle*/): main's kernel before PPS (MK, 7c03315)
# into build/ab12/, main with PPS merged (PPSM, 7b79d1c) into build/ab15/, the candidates HW (branch
# dataflow-heads-by-warp), MW (dataflow-merge-by-warp) and NW (dataflow-next-weights-early) into
# build/ab16/, with the call prelude and the three calls. A build whose --version matches is kept. A
# bundle does not outlive the machine it was built on: rebuild it in the session that calls.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
here=reports/2026-12-08-session17
tools/build_at_commits.sh build/ab12 MK=7c03315
tools/build_at_commits.sh build/ab15 PPSM=7b79d1c
tools/build_at_commits.sh build/ab16 HW=dataflow-heads-by-warp MW=dataflow-merge-by-warp NW=dataflow-next-weights-early
rm -rf .devbundle17
../shared/device/bundle .devbundle17 build/ab12/fusecheck-MK build/ab15/{fusecheck,gpu_test_dataflow}-PPSM \
    build/ab16/{fusecheck,gpu_test_dataflow}-{HW,MW,NW}
(cd .devbundle17 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp reports/2026-12-07-session12/call-prelude.sh $here/call-m.sh $here/call-n.sh $here/call-m2.sh .devbundle17/
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle17 | cut -f1) ))
echo "build-bundle: .devbundle17 $(du -sh .devbundle17 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle: over the 64 MiB a call may send" >&2; exit 1; }
