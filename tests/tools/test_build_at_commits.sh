#!/bin/sh
# tools/build_at_commits.sh without building anything: bad usage is exit 2 with one line, an unknown
# commit exit 1 naming it, and a label whose executables already say they were built from the commit
# is skipped (exit 0, "already built"), all while another run holds the build lock. Skips (77)
# outside a git checkout.
set -u
root=$(cd "$(dirname "$0")/../.." && pwd)
tool=$root/tools/build_at_commits.sh
cd "$root"
git rev-parse --verify --quiet HEAD > /dev/null || { echo "not a git checkout: skipped"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
fail() { echo "FAIL: $*"; exit 1; }
# Every case runs while the build lock is held, as when another run builds: none of them builds, so
# none may wait for it or answer that it is held.
mkdir -p /tmp/fusecheck-builds
exec 9> /tmp/fusecheck-builds.lock
flock -n 9 || true  # held here, or by a run that builds: either way held

"$tool" > "$out/log" 2>&1; rc=$?
[ $rc -eq 2 ] || fail "no arguments: exit $rc, expected 2"
"$tool" "$out" no-equals-sign > "$out/log" 2>&1; rc=$?
[ $rc -eq 2 ] || fail "LABEL without =COMMIT: exit $rc, expected 2"
[ "$(wc -l < "$out/log")" -eq 1 ] && grep -q "expected LABEL=COMMIT, got 'no-equals-sign'" "$out/log" ||
    fail "LABEL without =COMMIT: $(cat "$out/log")"
"$tool" "$out" X=0000000000000000000000000000000000000bad > "$out/log" 2>&1; rc=$?
[ $rc -eq 1 ] || fail "unknown commit: exit $rc, expected 1"
[ "$(wc -l < "$out/log")" -eq 1 ] && grep -q "X: no commit '0000000000000000000000000000000000000bad'" "$out/log" ||
    fail "unknown commit: $(cat "$out/log")"
head=$(git rev-parse HEAD)
printf '#!/bin/sh\necho "fusecheck 0.1.0 (built from %s)"\n' "$(echo "$head" | cut -c1-12)" > "$out/fusecheck-X"
printf '#!/bin/sh\nexit 0\n' > "$out/gpu_test_dataflow-X"
chmod +x "$out/fusecheck-X" "$out/gpu_test_dataflow-X"
"$tool" "$out" X=HEAD > "$out/log" 2>&1; rc=$?
[ $rc -eq 0 ] || fail "a built label: exit $rc: $(cat "$out/log")"
grep -q "X (.*) already built" "$out/log" || fail "a built label was not skipped: $(cat "$out/log")"
echo "build_at_commits: usage, unknown commit and an already built label: ok"
