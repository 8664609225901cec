#!/usr/bin/env bash
# Builds fusecheck and tests/gpu_test_dataflow at each commit given, for A/B calls on the GPU machine:
#
#   tools/build_at_commits.sh OUTDIR LABEL=COMMIT...
#
# Each commit is checked out in a throwaway worktree under /tmp/fusecheck-builds, configured (Release)
# and built with 2 jobs; the two executables are copied to OUTDIR/fusecheck-LABEL and
# OUTDIR/gpu_test_dataflow-LABEL and the worktree is removed. A label whose OUTDIR/fusecheck-LABEL
# already says (--version) it was built from COMMIT, beside its gpu_test_dataflow, is skipped, so a
# rerun builds only what changed. About a minute a build on 2 cores. One build at a time (a lock): a
# run that must build while another builds exits 1 at once. Exits 1 naming the label whose checkout
# or build failed (its log is /tmp/fusecheck-builds/LABEL.log); 2 on bad usage.
set -euo pipefail
[ $# -ge 2 ] || { sed -n '2,12p' "$0"; exit 2; }
out=$1
shift
root=$(git rev-parse --show-toplevel)
cd "$root"
scratch=/tmp/fusecheck-builds
mkdir -p "$out" "$scratch"
# Every LABEL=COMMIT is checked before anything is built, and the lock is taken only for a build, so
# bad usage and already built labels answer the same while another run builds.
labels=() commits=()
for item in "$@"; do
    label=${item%%=*}
    commit=${item#*=}
    [ -n "$label" ] && [ "$label" != "$item" ] && [ -n "$commit" ] ||
        { echo "build_at_commits: expected LABEL=COMMIT, got '$item'" >&2; exit 2; }
    full=$(git rev-parse --verify --quiet "$commit^{commit}") ||
        { echo "build_at_commits: $label: no commit '$commit'" >&2; exit 1; }
    labels+=("$label") commits+=("$full")
done
locked=0
for i in "${!labels[@]}"; do
    label=${labels[$i]} full=${commits[$i]}
    if [ -x "$out/fusecheck-$label" ] && [ -x "$out/gpu_test_dataflow-$label" ] &&
        "$out/fusecheck-$label" --version 2>/dev/null | grep -q "built from ${full:0:12}"; then
        echo "build_at_commits: $label (${full:0:7}) already built"
        continue
    fi
    if [ $locked -eq 0 ]; then
        exec 9> "$scratch.lock"
        flock -n 9 || { echo "build_at_commits: another run holds $scratch.lock" >&2; exit 1; }
        locked=1
    fi
    tree=$scratch/$label
    started=$SECONDS
    git worktree remove --force "$tree" 2>/dev/null || rm -rf "$tree"
    git worktree add --detach "$tree" "$full" > /dev/null 2>&1 ||
        { echo "build_at_commits: cannot check out ${full:0:12} for $label" >&2; exit 1; }
    cmake -S "$tree" -B "$tree/build" -G Ninja -DCMAKE_BUILD_TYPE=Release > "$scratch/$label.log" 2>&1 &&
        cmake --build "$tree/build" -j 2 --target fusecheck gpu_test_dataflow >> "$scratch/$label.log" 2>&1 ||
        { echo "build_at_commits: the build of $label failed, see $scratch/$label.log" >&2; exit 1; }
    cp "$tree/build/fusecheck" "$out/fusecheck-$label"
    cp "$tree/build/tests/gpu_test_dataflow" "$out/gpu_test_dataflow-$label"
    git worktree remove --force "$tree"
    echo "build_at_commits: $label (${full:0:7}) in $((SECONDS - started)) s"
done
