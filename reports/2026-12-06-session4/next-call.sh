#!/usr/bin/env bash
# HEAD 4c6c3d0 (M: weight pages + K/V bulk in 80-position pieces): tests, sanitizers, record (0.6B, 8B);
# then 8B dataflow of H (589d003), M, PKT (72fc451), T (H + L2 prefetch); H vs M at 128 / 16384.
set -u
B=.devbundle
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
L=$OUT/log.txt
mkdir -p $OUT/rep
nvidia-smi -L | tee -a $L
s=$(date +%s); timeout 100 $B/run build/ab/gpu_test_dataflow-M --jobs 1 >> $OUT/tests.log 2>&1; echo "test M rc=$? $(( $(date +%s) - s ))s" | tee -a $L
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $OUT/tests.log | head -30 | tee -a $L
for tool in memcheck racecheck; do
  timeout 80 compute-sanitizer --tool $tool $B/run build/ab/gpu_test_dataflow-M --filter 'dataflow/small_matches_reference' --jobs 1 > /tmp/san.log 2>&1
  echo "$tool M rc=$? $(tail -1 /tmp/san.log)" | tee -a $L; cat /tmp/san.log >> $OUT/san.log
done
FUSECHECK_COMMIT=4c6c3d0 timeout 180 $B/run build/ab/fusecheck-M bench --preset qwen3-0.6b --engine fused,dataflow --repeat 3 --record --reports $OUT/rep > $OUT/rep/all.log 2>&1; echo "record rc=$?" | tee -a $L; grep -E "^\| (fused|dataflow) |pages:" $OUT/rep/all.log | tee -a $L
rm -f $OUT/rep/BENCHMARKS.md $OUT/rep/throughput_history.svg
FUSECHECK_COMMIT=4c6c3d0 timeout 200 $B/run build/ab/fusecheck-M bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $OUT/rep > $OUT/rep/b8.log 2>&1; echo "8b M record rc=$?" | tee -a $L; grep -E "^\| (fused|dataflow) " $OUT/rep/b8.log | tee -a $L
rm -f $OUT/rep/BENCHMARKS.md $OUT/rep/throughput_history.svg
FUSECHECK_DATAFLOW_TIMELINE=1 timeout 30 $B/run build/ab/fusecheck-M bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1; echo "tl M rc=$?" | tee -a $OUT/timeline.txt; grep -A9 'dataflow timeline' /tmp/tl.log | tee -a $OUT/timeline.txt
