#!/usr/bin/env bash
# The call the fourth session could not make; the fifth added B (gpu_test_dataflow with the epoch
# reset's clearing removed: the epoch-reset test must fail) and --engine all (fused/dataflow/NOTES.md, Next 1 and 3). Bundle, here:
#   build/ab/fusecheck-M, build/ab/gpu_test_dataflow-M  HEAD's build/fusecheck and tests/gpu_test_dataflow
#   build/ab/fusecheck-S   a build with 4549db9 cherry-picked (the kernel specialized for its page set)
#   build/ab/fusecheck-F   a build with ec89cce cherry-picked (gate/up's page filled from o_proj's start)
#   build/ab/fusecheck-G   a build with e0a8821 cherry-picked (the last active split merges, no ticket)
#   build/ab/fusecheck-E, gpu_test_dataflow-E    6ccd78d (the attention split's first K/V piece asked at the QKV tile)
#   build/ab/fusecheck-E2, gpu_test_dataflow-E2  7e222b5 (... asked at the previous layer's down tile)
#   build/ab/fusecheck-K   a build with 860305b (a split's K/V in pieces of equal length; /tmp/wk)
# and set FUSECHECK_COMMIT below to HEAD's short hash. Run: OUT=... bash next-call.sh
set -u
B=.devbundle
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
L=$OUT/log.txt
mkdir -p $OUT/rep
nvidia-smi -L | tee -a $L
s=$(date +%s); timeout 130 $B/run build/ab/gpu_test_dataflow-M --jobs 1 >> $OUT/tests.log 2>&1; echo "test M rc=$? $(( $(date +%s) - s ))s" | tee -a $L
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $OUT/tests.log | head -30 | tee -a $L
for tool in memcheck racecheck; do
  timeout 80 compute-sanitizer --tool $tool $B/run build/ab/gpu_test_dataflow-M --filter 'dataflow/small_matches_reference' --jobs 1 > /tmp/san.log 2>&1
  echo "$tool M rc=$? $(tail -1 /tmp/san.log)" | tee -a $L; cat /tmp/san.log >> $OUT/san.log
done
FUSECHECK_COMMIT=1bfa9c9 timeout 240 $B/run build/ab/fusecheck-M bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $OUT/rep > $OUT/rep/all.log 2>&1; echo "record rc=$?" | tee -a $L; grep -E "^\| (fused|dataflow|cublas) |pages:" $OUT/rep/all.log | tee -a $L
rm -f $OUT/rep/BENCHMARKS.md $OUT/rep/throughput_history.svg
FUSECHECK_COMMIT=1bfa9c9 timeout 200 $B/run build/ab/fusecheck-M bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $OUT/rep > $OUT/rep/b8.log 2>&1; echo "8b M record rc=$?" | tee -a $L; grep -E "^\| (fused|dataflow) " $OUT/rep/b8.log | tee -a $L
rm -f $OUT/rep/BENCHMARKS.md $OUT/rep/throughput_history.svg
s=$(date +%s); timeout 60 $B/run build/ab/gpu_test_dataflow-B --filter 'dataflow/timed_and_traced*' --jobs 1 > /tmp/b.log 2>&1; echo "planted break B (no clearing at the epoch reset) rc=$? $(( $(date +%s) - s ))s: $(grep -E 'differ|Synthesis' /tmp/b.log | head -2 | tr '\n' ' ')" | tee -a $L
mkdir -p /tmp/ab
ENGINE=dataflow CTX=1024,4096 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab/fusecheck-M build/ab/fusecheck-S build/ab/fusecheck-F build/ab/fusecheck-G build/ab/fusecheck-K build/ab/fusecheck-E build/ab/fusecheck-E2 2>&1 | tee $OUT/ab.txt
FUSECHECK_DATAFLOW_TIMELINE=1 timeout 30 $B/run build/ab/fusecheck-M bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1; echo "tl M rc=$?" | tee -a $OUT/timeline.txt; grep -A9 'dataflow timeline' /tmp/tl.log | tee -a $OUT/timeline.txt
for v in E2 E; do
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 30 $B/run build/ab/fusecheck-$v bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1; echo "tl $v rc=$?" | tee -a $OUT/timeline.txt; grep -A9 'dataflow timeline' /tmp/tl.log | tee -a $OUT/timeline.txt
  s=$(date +%s); timeout 100 $B/run build/ab/gpu_test_dataflow-$v --jobs 1 > $OUT/tests-$v.log 2>&1; echo "test $v rc=$? $(( $(date +%s) - s ))s $(grep Synthesis $OUT/tests-$v.log)" | tee -a $L
  timeout 80 compute-sanitizer --tool racecheck $B/run build/ab/gpu_test_dataflow-$v --filter 'dataflow/small_matches_reference' --jobs 1 > /tmp/san.log 2>&1
  echo "racecheck $v rc=$? $(tail -1 /tmp/san.log)" | tee -a $L
done
