#!/usr/bin/env bash
# Ninth session's short call: the final kernel of branch dataflow-l2 (F, da3813b) under the new long-split
# matched-profile test, and the planted break BW2 (da3813b with the warps' combine not rescaled).
set -u
B=$(dirname "$0")
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
Y=/tmp/s; mkdir -p $Y; L=$Y/log.txt
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/s.tgz -C /tmp s; }
nvidia-smi -L | tee -a $L
timeout 60 $B/run build/ab7/gpu_test_dataflow-F --filter 'dataflow/small*' --jobs 1 > $Y/tests-F.log 2>&1; t "test F small* rc=$?"
grep -E 'matched profile \(|Synthesis|FAIL' $Y/tests-F.log | tee -a $L
timeout 40 $B/run build/ab7/gpu_test_dataflow-BW2 --filter 'dataflow/small_with_long*' --jobs 1 > $Y/bw2.log 2>&1; t "planted break BW2 rc=$?"
grep -E 'matched profile \(|Synthesis|FAIL' $Y/bw2.log | tee -a $L
timeout 30 $B/run build/ab7/fusecheck-F bench --preset qwen3-0.6b --engine dataflow --context 1024 --repeat 3 > $Y/bench-F.log 2>&1; t "bench F rc=$?"; grep -E '^\| dataflow' $Y/bench-F.log | tee -a $L
