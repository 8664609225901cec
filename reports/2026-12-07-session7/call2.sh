#!/usr/bin/env bash
# Second call of the seventh session: o_proj by kv head (22b2bb1, FUSECHECK_DATAFLOW_OPROJ_BY_KV_HEAD=1).
# Bundle, here (.devbundle2 is excluded from git in .git/info/exclude):
#   build/ab2/fusecheck-M            de6b838's build (the kernel of 33ff308, HEAD before this session)
#   build/ab2/fusecheck-N, gpu_test_dataflow-N   22b2bb1 (o_proj by rows unless the variable is set)
#   ../shared/device/bundle .devbundle2 build/ab2/* && (cd .devbundle2 && tar -cJf bin.tar.xz bin && rm -rf bin lib)
# Run: `run` with carry [".devbundle2"], command `bash reports/2026-12-07-session7/call2.sh`, timeout ~480 s.
set -u
B=.devbundle2
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
# H: N with o_proj by kv head (a wrapper, so tools/gpu_ab.sh runs it as a build of its own)
printf '#!/bin/sh\nFUSECHECK_DATAFLOW_OPROJ_BY_KV_HEAD=1 exec "$(dirname "$0")/fusecheck-N" "$@"\n' > $B/bin/build/ab2/fusecheck-H
chmod +x $B/bin/build/ab2/fusecheck-H
export FUSECHECK_CACHE=/tmp/fc-cache
X=/tmp/x2; mkdir -p $X; L=$X/log.txt
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/x2.tgz -C /tmp x2; }
nvidia-smi -L | tee -a $L
$B/run build/ab2/fusecheck-N --version | tee -a $L
timeout 320 $B/run build/ab2/gpu_test_dataflow-N --jobs 1 > $X/tests.log 2>&1; t "test N rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $X/tests.log | head -16 | tee -a $L
for tool in memcheck racecheck; do
  timeout 80 compute-sanitizer --tool $tool $B/run build/ab2/gpu_test_dataflow-N --filter 'dataflow/small_oproj_by_kv_head*' --jobs 1 > $X/san-$tool.log 2>&1
  t "$tool H rc=$? $(tail -1 $X/san-$tool.log)"
done
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab2/fusecheck-M build/ab2/fusecheck-N build/ab2/fusecheck-H > $X/ab.txt 2>&1; t "ab done"; tail -5 $X/ab.txt | tee -a $L
for v in N H; do for sk in 0 1; do
  FUSECHECK_DATAFLOW_SKELETON=$sk FUSECHECK_DATAFLOW_TIMELINE=1 timeout 30 $B/run build/ab2/fusecheck-$v bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1
  echo "build $v skeleton $sk" >> $X/timeline.txt; grep -A9 'dataflow timeline' /tmp/tl.log >> $X/timeline.txt
done; done; t timelines
cp /tmp/ab/* $X/ 2>/dev/null; t end
