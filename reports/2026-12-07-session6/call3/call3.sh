#!/usr/bin/env bash
# Bundle (here): build/ab2/fusecheck-M (1bfa9c9), fusecheck-SG and gpu_test_dataflow-SG (33ff308) via
#   ../shared/device/bundle .devbundle/sg build/ab2/* && (cd .devbundle/sg && tar -cJf bin.tar.xz bin && rm -rf bin)
# Run there: bash .devbundle/call-sg.sh 33ff308   (the commit stamped on the record rows)
# Validate S+G re-applied on main (HEAD), A/B against 1bfa9c9's kernel (M), record dataflow rows.
set -u
B=.devbundle/sg
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
X=/tmp/x; mkdir -p $X/rep; L=$X/log.txt
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/x.tgz -C /tmp x; }
nvidia-smi -L | tee -a $L
timeout 100 $B/run build/ab2/gpu_test_dataflow-SG --jobs 1 > $X/tests.log 2>&1; t "test SG rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $X/tests.log | head -12 | tee -a $L
for tool in memcheck racecheck; do
  timeout 80 compute-sanitizer --tool $tool $B/run build/ab2/gpu_test_dataflow-SG --filter 'dataflow/small_matches_reference' --jobs 1 > $X/san-$tool.log 2>&1
  t "$tool SG rc=$? $(tail -1 $X/san-$tool.log)"
done
mkdir -p /tmp/ab2
BUNDLE=$B ENGINE=dataflow CTX=1024,4096 ROUNDS=2 OUT=/tmp/ab2 tools/gpu_ab.sh build/ab2/fusecheck-M build/ab2/fusecheck-SG > $X/ab.txt 2>&1; t "ab done"; tail -4 $X/ab.txt | tee -a $L
FUSECHECK_COMMIT=$1 timeout 100 $B/run build/ab2/fusecheck-SG bench --preset qwen3-0.6b --engine fused,dataflow --repeat 3 --record --reports $X/rep > $X/record-0.6b.log 2>&1; t "record rc=$?"; grep -E "^\| (fused|dataflow) " $X/record-0.6b.log | tee -a $L
rm -f $X/rep/BENCHMARKS.md $X/rep/throughput_history.svg
for sk in 0 1; do FUSECHECK_DATAFLOW_SKELETON=$sk FUSECHECK_DATAFLOW_TIMELINE=1 timeout 30 $B/run build/ab2/fusecheck-SG bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1; echo "skeleton $sk" >> $X/timeline.txt; grep -A9 "dataflow timeline" /tmp/tl.log >> $X/timeline.txt; done; t timelines
FUSECHECK_COMMIT=$1 timeout 120 $B/run build/ab2/fusecheck-SG bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $X/rep > $X/record-8b.log 2>&1; t "8b record rc=$?"; grep -E "^\| (fused|dataflow) " $X/record-8b.log | tee -a $L
rm -f $X/rep/BENCHMARKS.md $X/rep/throughput_history.svg
cp /tmp/ab2/* $X/ 2>/dev/null; t end
