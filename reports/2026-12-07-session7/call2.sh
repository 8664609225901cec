#!/usr/bin/env bash
# Second call of the seventh session: o_proj by kv head and the new page sets (478ff20).
# Bundle, here (.devbundle2 is excluded from git in .git/info/exclude):
#   build/ab2/fusecheck-M            de6b838's build (the kernel of 33ff308, HEAD before this session)
#   build/ab2/fusecheck-N, gpu_test_dataflow-N   478ff20 (defaults: o_proj by rows, the gate/up page)
#   ../shared/device/bundle .devbundle2 build/ab2/* && (cd .devbundle2 && tar -cJf bin.tar.xz bin && rm -rf bin lib)
# Run: `run` with carry [".devbundle2"], command `bash reports/2026-12-07-session7/call2.sh`, timeout ~540 s.
# Variants of N, as wrappers (so tools/gpu_ab.sh runs each as a build of its own):
#   H   o_proj by kv head                 HD  ... and down's page on the K/V buffers
#   HQ  ... and QKV's page (not down's)   D   o_proj by rows, down's page on the K/V buffers
set -u
B=.devbundle2
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
variant() {  # name, o_proj by kv head (0/1), pages
  printf '#!/bin/sh\nFUSECHECK_DATAFLOW_OPROJ_BY_KV_HEAD=%s FUSECHECK_DATAFLOW_PAGES=%s exec "$(dirname "$0")/fusecheck-N" "$@"\n' "$2" "$3" > $B/bin/build/ab2/fusecheck-$1
  chmod +x $B/bin/build/ab2/fusecheck-$1
}
variant H 1 gate_up; variant HD 1 gate_up,down; variant HQ 1 qkv,gate_up; variant D 0 gate_up,down
export FUSECHECK_CACHE=/tmp/fc-cache
X=/tmp/x2; mkdir -p $X; L=$X/log.txt
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/x2.tgz -C /tmp x2; }
nvidia-smi -L | tee -a $L
$B/run build/ab2/fusecheck-N --version | tee -a $L
timeout 400 $B/run build/ab2/gpu_test_dataflow-N --jobs 1 > $X/tests.log 2>&1; t "test N rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $X/tests.log | head -20 | tee -a $L
for tool in memcheck racecheck; do
  FUSECHECK_DATAFLOW_PAGES=gate_up,down timeout 80 compute-sanitizer --tool $tool $B/run build/ab2/gpu_test_dataflow-N --filter 'dataflow/small_oproj_by_kv_head*' --jobs 1 > $X/san-$tool.log 2>&1
  t "$tool HD rc=$? $(tail -1 $X/san-$tool.log)"
done
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab2/fusecheck-M build/ab2/fusecheck-N build/ab2/fusecheck-H build/ab2/fusecheck-HD build/ab2/fusecheck-HQ build/ab2/fusecheck-D > $X/ab.txt 2>&1; t "ab done"; tail -8 $X/ab.txt | tee -a $L
for v in N H HD; do
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 30 $B/run build/ab2/fusecheck-$v bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1
  echo "build $v" >> $X/timeline.txt; grep -A9 'dataflow timeline' /tmp/tl.log >> $X/timeline.txt
done; t timelines
cp /tmp/ab/* $X/ 2>/dev/null; t end
