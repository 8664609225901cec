#!/usr/bin/env bash
# Builds what the seventeenth session's last call runs and packs it into .devbundle17/ (ignored by
# .gitignore's /.devbundle*/): main with PPS merged (PPSM, 7b79d1c) into build/ab15/ and main's kernel
# before it (MK, 7c03315, already in build/ab12/ from reports/2026-12-07-session15/build-bundle.sh),
# the candidates HW (branch dataflow-heads-by-warp) and MW (dataflow-merge-by-warp) into build/ab16/,
# with the call prelude, call-m.sh and call-m2.sh. A bundle does not outlive the machine it was built on: rebuild
# it in the session that calls.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
here=reports/2026-12-08-session17
tools/build_at_commits.sh build/ab12 MK=7c03315
tools/build_at_commits.sh build/ab15 PPSM=7b79d1c
tools/build_at_commits.sh build/ab16 HW=dataflow-heads-by-warp MW=dataflow-merge-by-warp
rm -rf .devbundle17
../shared/device/bundle .devbundle17 build/ab12/fusecheck-MK build/ab15/{fusecheck,gpu_test_dataflow}-PPSM \
    build/ab16/{fusecheck,gpu_test_dataflow}-{HW,MW}
(cd .devbundle17 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp reports/2026-12-07-session12/call-prelude.sh $here/call-m.sh $here/call-m2.sh .devbundle17/
sent=$(( $(git ls-files -z | xargs -0 du -cb | tail -1 | cut -f1) + $(du -sb .devbundle17 | cut -f1) ))
echo "build-bundle: .devbundle17 $(du -sh .devbundle17 | cut -f1); a call sends $((sent / 1048576)) MiB of 64"
[ $sent -le $((64 * 1048576)) ] || { echo "build-bundle: over the 64 MiB a call may send" >&2; exit 1; }
