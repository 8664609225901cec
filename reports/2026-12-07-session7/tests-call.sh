#!/usr/bin/env bash
# last-call.sh cut to the device time left (247 s): the new defaults' GPU tests, then one A/B round at 1024.
# Run: `run` with carry [".devbundle"], command `bash reports/2026-12-07-session7/tests-call.sh`, timeout 150 s.
set -u
B=.devbundle
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
printf '#!/bin/sh\nFUSECHECK_DATAFLOW_OPROJ_BY_KV_HEAD=0 FUSECHECK_DATAFLOW_PAGES=gate_up exec "$(dirname "$0")/fusecheck-X" "$@"\n' > $B/bin/build/ab2/fusecheck-XN
chmod +x $B/bin/build/ab2/fusecheck-XN
export FUSECHECK_CACHE=/tmp/fc-cache
X=/tmp/x; mkdir -p $X; L=$X/log.txt
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/x.tgz -C /tmp x; }
nvidia-smi -L | tee -a $L
$B/run build/ab2/fusecheck-X --version | tee -a $L
timeout 110 $B/run build/ab2/gpu_test_dataflow-X --jobs 1 > $X/tests.log 2>&1; t "test X rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $X/tests.log | head -20 | tee -a $L
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=1024 ROUNDS=1 OUT=/tmp/ab tools/gpu_ab.sh build/ab2/fusecheck-M build/ab2/fusecheck-XN build/ab2/fusecheck-X > $X/ab.txt 2>&1; cp /tmp/ab/* $X/; t "ab done"; tail -5 $X/ab.txt | tee -a $L
