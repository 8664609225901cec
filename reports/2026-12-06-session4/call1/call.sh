#!/usr/bin/env bash
# Candidates against H (HEAD 589d003): P (pages), K80 (K/V bulk, 80-position pieces), PK80 (both),
# PKT (PK80 + L2 prefetch of a block's next same-op tile; committed 72fc451), L1 (landing build),
# T/T2 (H + the L2 prefetch, 1 / 2 tiles ahead). Tests, A/B, PKT's record, sanitizers, 8B, timelines.
set -u
B=.devbundle
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
L=$OUT/log.txt
mkdir -p $OUT/rep
nvidia-smi -L | tee -a $L
s=$(date +%s); timeout 100 $B/run build/ab/gpu_test_dataflow-PKT --jobs 1 >> $OUT/tests.log 2>&1; echo "test PKT rc=$? $(( $(date +%s) - s ))s" | tee -a $L
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $OUT/tests.log | head -30 | tee -a $L
mkdir -p /tmp/ab
ENGINE=dataflow CTX=1024,4096 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab/fusecheck-H build/ab/fusecheck-P build/ab/fusecheck-K80 build/ab/fusecheck-PK80 build/ab/fusecheck-PKT build/ab/fusecheck-L1 2>&1 | tee $OUT/ab.txt
FUSECHECK_COMMIT=72fc451 timeout 180 $B/run build/ab/fusecheck-PKT bench --preset qwen3-0.6b --engine fused,dataflow --repeat 3 --record --reports $OUT/rep > $OUT/rep/all.log 2>&1; echo "record rc=$?" | tee -a $L; grep -E "^\| (fused|dataflow) |pages:" $OUT/rep/all.log | tee -a $L
rm -f $OUT/rep/BENCHMARKS.md $OUT/rep/throughput_history.svg
for tool in memcheck racecheck; do
  timeout 80 compute-sanitizer --tool $tool $B/run build/ab/gpu_test_dataflow-PKT --filter 'dataflow/small_matches_reference' --jobs 1 > /tmp/san.log 2>&1
  echo "$tool PKT rc=$? $(tail -1 /tmp/san.log)" | tee -a $L; cat /tmp/san.log >> $OUT/san.log
done
FUSECHECK_DATAFLOW_TILE_KB=32 timeout 120 compute-sanitizer --tool memcheck $B/run build/ab/fusecheck-PKT bench --preset qwen3-0.6b --engine dataflow --context 128 --tokens 4 --repeat 1 > /tmp/san.log 2>&1; echo "memcheck PKT tile32 bench rc=$? $(grep -E 'ERROR SUMMARY' /tmp/san.log)" | tee -a $L; cat /tmp/san.log >> $OUT/san.log
FUSECHECK_COMMIT=72fc451 timeout 200 $B/run build/ab/fusecheck-PKT bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $OUT/rep > $OUT/rep/b8.log 2>&1; echo "8b PKT record rc=$?" | tee -a $L; grep -E "^\| (fused|dataflow) " $OUT/rep/b8.log | tee -a $L
rm -f $OUT/rep/BENCHMARKS.md $OUT/rep/throughput_history.svg
for v in H PKT; do
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 30 $B/run build/ab/fusecheck-$v bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1; echo "tl $v rc=$?" | tee -a $OUT/timeline.txt; grep -A9 'dataflow timeline' /tmp/tl.log | tee -a $OUT/timeline.txt
done
ls -R $OUT | tee -a $L
