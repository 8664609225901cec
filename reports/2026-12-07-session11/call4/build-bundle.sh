#!/usr/bin/env bash
# Packs call.sh's executables (it ran as .devbundle7/next-call-4.sh, the session's third call) into
# .devbundle7: fusecheck-PT (5bfe28f, built by ../../2026-12-07-session10/build-bundle.sh into
# build/ab8) and PX, built from branch dataflow-poll-runs (36b5a5d) in its worktree /work/px (cmake
# --build build --target fusecheck gpu_test_dataflow).
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"
px=${PX_BUILD:-/work/px/build}
cp "$px/fusecheck" build/ab8/fusecheck-PX
cp "$px/tests/gpu_test_dataflow" build/ab8/gpu_test_dataflow-PX
rm -rf .devbundle7
../shared/device/bundle .devbundle7 build/ab8/fusecheck-{PT,PX} build/ab8/gpu_test_dataflow-PX
(cd .devbundle7 && tar -cJf bin.tar.xz bin && rm -rf bin)
cp reports/2026-12-07-session10/call-prelude.sh .devbundle7/
cp reports/2026-12-07-session11/call4/call.sh .devbundle7/next-call-4.sh
du -sh .devbundle7
