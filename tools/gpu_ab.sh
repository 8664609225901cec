#!/usr/bin/env bash
# Same-machine A/B of an engine's decode throughput (ENGINE, default fused) on a lent GPU machine. Machines of one card type differ
# by a few percent, so a kernel change is judged only against a baseline run in the same call: the
# bundled fusecheck builds run in turns (A B C A B C ...), and the summary gives each build's median
# tok/s per context and its ratio to the first build.
#
#   here:  cp /path/to/baseline/build/fusecheck build/fusecheck-base &&
#          ../shared/device/bundle .devbundle build/fusecheck-base build/fusecheck &&
#          (cd .devbundle && tar -cJf bin.tar.xz bin && rm -rf bin)       # the 64 MiB carry limit
#   there: ROUNDS=2 CTX=1024,4096 OUT=/some/dir tools/gpu_ab.sh build/fusecheck-base build/fusecheck
#
# Each run is `fusecheck bench --preset qwen3-0.6b --engine $ENGINE` (64 tokens, 3 repeats); env such as
# FUSECHECK_PDL passes through. Logs go to $OUT/ab_<round>_<build>.log. E.g. two dataflow builds:
#   ENGINE=dataflow CTX=1024 OUT=/some/dir tools/gpu_ab.sh build/fusecheck-base build/fusecheck
set -u
[ $# -ge 1 ] || { echo "usage: tools/gpu_ab.sh BUILD [BUILD ...] (bundled paths, e.g. build/fusecheck)" >&2; exit 2; }
B=${BUNDLE:-.devbundle}
[ -d "$B/bin" ] || tar -xJf "$B/bin.tar.xz" -C "$B" || { echo "gpu_ab.sh: no $B/bin and no $B/bin.tar.xz" >&2; exit 2; }
: "${OUT:?set OUT to a folder for the logs}"
ENGINE=${ENGINE:-fused}
export FUSECHECK_CACHE=${FUSECHECK_CACHE:-/tmp/fusecheck-cache}
nvidia-smi -L
for round in $(seq 1 "${ROUNDS:-2}"); do
  for build in "$@"; do
    log=$OUT/ab_${round}_$(basename "$build").log
    timeout 120 "$B/run" "$build" bench --preset qwen3-0.6b --engine "$ENGINE" --context "${CTX:-128,1024,4096,16384}" \
      --tokens 64 --repeat 3 > "$log" 2>&1
    echo "round $round $build rc=$? $(grep -E "^\| $ENGINE " "$log" | cut -d'|' -f3,4 | tr -s ' ' | tr '\n' ' ')"
  done
done
python3 - "$OUT" "$ENGINE" "$@" <<'PY'
import glob, os, statistics, sys
out, engine, builds = sys.argv[1], sys.argv[2], sys.argv[3:]
runs = {}  # build -> context -> [tok/s]
for build in builds:
    for log in sorted(glob.glob(os.path.join(out, "ab_*_" + os.path.basename(build) + ".log"))):
        for line in open(log):
            cells = [c.strip() for c in line.split("|")]
            if len(cells) > 3 and cells[1] == engine:
                runs.setdefault(build, {}).setdefault(int(cells[2]), []).append(float(cells[3]))
if not runs:
    sys.exit("gpu_ab.sh: no bench table in any log")
contexts = sorted({c for r in runs.values() for c in r})
print("| build | " + " | ".join(f"ctx {c}" for c in contexts) + " |")
print("| --- |" + " ---: |" * len(contexts))
base = runs.get(builds[0], {})
for build in builds:
    cells = []
    for c in contexts:
        values = runs.get(build, {}).get(c)
        if not values:
            cells.append("-")
            continue
        median = statistics.median(values)
        ratio = f" ({median / statistics.median(base[c]):.3f}x)" if base.get(c) and build != builds[0] else ""
        cells.append(f"{median:.1f}{ratio}")
    print(f"| {build} | " + " | ".join(cells) + " |")
PY
