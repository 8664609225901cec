#!/usr/bin/env bash
# The fifth session's call (fused/dataflow/NOTES.md, Next 1 and 3): HEAD validated and recorded, the
# candidates A/B'd, most important first (output lands in $OUT as it goes). Bundle, here:
#   build/ab/fusecheck-M, gpu_test_dataflow-M   HEAD 1bfa9c9 (= 1584a16's kernel + the host's epoch reset)
#   build/ab/gpu_test_dataflow-B   M with the epoch reset's clearing removed: the reset test must fail
#   build/ab/fusecheck-S   4549db9 cherry-picked (the kernel specialized for its page set)
#   build/ab/fusecheck-F   ec89cce cherry-picked (gate/up's page filled from o_proj's start)
#   build/ab/fusecheck-G   e0a8821 cherry-picked (the last active split merges, no ticket)
#   build/ab/fusecheck-K   e6cc8d5 (a split's K/V in pieces of equal length)
#   build/ab/fusecheck-E, gpu_test_dataflow-E    7a94f27 (the split's first K/V piece asked at the QKV tile)
#   build/ab/fusecheck-E2, gpu_test_dataflow-E2  2fba31b (... asked on top of it at the previous layer's down tile)
#   build/ab/fusecheck-P8, gpu_test_dataflow-P8  8e04f19 (a page refilled with the next same-op tile when taken: qwen3-8b)
set -u
B=.devbundle
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
L=$OUT/log.txt
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; }
mkdir -p $OUT/rep
nvidia-smi -L | tee -a $L
timeout 130 $B/run build/ab/gpu_test_dataflow-M --jobs 1 > $OUT/tests.log 2>&1; t "test M rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $OUT/tests.log | head -30 | tee -a $L
for tool in memcheck racecheck; do
  timeout 80 compute-sanitizer --tool $tool $B/run build/ab/gpu_test_dataflow-M --filter 'dataflow/small_matches_reference' --jobs 1 > /tmp/san.log 2>&1
  t "$tool M rc=$? $(tail -1 /tmp/san.log)"; cat /tmp/san.log >> $OUT/san.log
done
mkdir -p /tmp/ab
ENGINE=dataflow CTX=1024,4096 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab/fusecheck-M build/ab/fusecheck-S build/ab/fusecheck-F build/ab/fusecheck-G build/ab/fusecheck-K build/ab/fusecheck-E build/ab/fusecheck-E2 build/ab/fusecheck-P8 > $OUT/ab.txt 2>&1; t "ab done"; tail -10 $OUT/ab.txt | tee -a $L
FUSECHECK_COMMIT=1bfa9c9 timeout 240 $B/run build/ab/fusecheck-M bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $OUT/rep > $OUT/rep/all.log 2>&1; t "record rc=$?"; grep -E "^\| (fused|dataflow|cublas) |pages:" $OUT/rep/all.log | tee -a $L
rm -f $OUT/rep/BENCHMARKS.md $OUT/rep/throughput_history.svg
FUSECHECK_COMMIT=1bfa9c9 timeout 200 $B/run build/ab/fusecheck-M bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $OUT/rep > $OUT/rep/b8.log 2>&1; t "8b M record rc=$?"; grep -E "^\| (fused|dataflow) " $OUT/rep/b8.log | tee -a $L
rm -f $OUT/rep/BENCHMARKS.md $OUT/rep/throughput_history.svg
timeout 100 $B/run build/ab/fusecheck-P8 bench --preset qwen3-8b --engine dataflow --context 1024 --repeat 3 > $OUT/b8-P8.log 2>&1; t "8b P8 rc=$?"; grep -E "^\| dataflow " $OUT/b8-P8.log | tee -a $L
timeout 60 $B/run build/ab/gpu_test_dataflow-B --filter 'dataflow/timed_and_traced*' --jobs 1 > /tmp/b.log 2>&1; t "planted break B (no clearing at the epoch reset) rc=$? $(grep -E 'differ|Synthesis' /tmp/b.log | head -2 | tr '\n' ' ')"
for v in M E2; do
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 30 $B/run build/ab/fusecheck-$v bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1; echo "tl $v rc=$?" >> $OUT/timeline.txt; grep -A9 'dataflow timeline' /tmp/tl.log >> $OUT/timeline.txt
done
t "timelines done"
for v in E2 E; do
  timeout 100 $B/run build/ab/gpu_test_dataflow-$v --jobs 1 > $OUT/tests-$v.log 2>&1; t "test $v rc=$? $(grep Synthesis $OUT/tests-$v.log)"
  timeout 80 compute-sanitizer --tool racecheck $B/run build/ab/gpu_test_dataflow-$v --filter 'dataflow/small_matches_reference' --jobs 1 > /tmp/san.log 2>&1
  t "racecheck $v rc=$? $(tail -1 /tmp/san.log)"
done
# P8's path runs only where a block has several tiles of an op: 32 KB tiles on qwen3-0.6b
FUSECHECK_DATAFLOW_TILE_KB=32 timeout 100 $B/run build/ab/gpu_test_dataflow-P8 --jobs 1 > $OUT/tests-P8.log 2>&1; t "test P8 (32 KB tiles) rc=$? $(grep Synthesis $OUT/tests-P8.log)"
FUSECHECK_DATAFLOW_TILE_KB=32 timeout 90 compute-sanitizer --tool racecheck $B/run build/ab/fusecheck-P8 bench --preset qwen3-0.6b --engine dataflow --context 128 --tokens 2 --repeat 1 > /tmp/san.log 2>&1; t "racecheck P8 bench (32 KB tiles) rc=$? $(grep -E 'SUMMARY' /tmp/san.log | tail -1)"
