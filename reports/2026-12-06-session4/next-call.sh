#!/usr/bin/env bash
# The call the fourth session could not make (fused/dataflow/NOTES.md, Next 1 and 3). Bundle, here:
#   build/ab/fusecheck-M, build/ab/gpu_test_dataflow-M  HEAD's build/fusecheck and tests/gpu_test_dataflow
#   build/ab/fusecheck-S   a build with 4549db9 cherry-picked (the kernel specialized for its page set)
#   build/ab/fusecheck-F   a build with ec89cce cherry-picked (gate/up's page filled from o_proj's start)
#   build/ab/fusecheck-G   a build with e0a8821 cherry-picked (the last active split merges, no ticket)
# and set FUSECHECK_COMMIT below to HEAD's short hash. Run: OUT=... bash next-call.sh
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
mkdir -p /tmp/ab
ENGINE=dataflow CTX=1024,4096 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab/fusecheck-M build/ab/fusecheck-S build/ab/fusecheck-F build/ab/fusecheck-G 2>&1 | tee $OUT/ab.txt
FUSECHECK_DATAFLOW_TIMELINE=1 timeout 30 $B/run build/ab/fusecheck-M bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1; echo "tl M rc=$?" | tee -a $OUT/timeline.txt; grep -A9 'dataflow timeline' /tmp/tl.log | tee -a $OUT/timeline.txt
