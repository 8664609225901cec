#!/usr/bin/env bash
# The ninth session's device call for branch dataflow-l2 (worktree /work/l2): E (08b9d1a) = attention by
# warps (c535ac5) + L2 prefetch of chosen projections' next tiles at attention's start
# (FUSECHECK_DATAFLOW_L2_PREFETCH, f897b2f) + the warps' combine unrolled (837b0e2) + the argmax by a warp
# and the LM head split on the timeline (df2688c) + FUSECHECK_DATAFLOW_SPLITS (08b9d1a; host only, the
# default program is df2688c's); against main's kernel M (33ff308's), N (c535ac5), N8 (12b3e77) and C8
# (0c48808: f897b2f and 837b0e2 on N8, branch dataflow-l2-p8). Every step's output is tarred into
# $OUT/z.tgz as it goes.
# Bundle (ignored by `.git/info/exclude`): build/ab5/
#   fusecheck-M, -N, -N8                  as in reports/2026-12-07-session8/call2.sh
#   fusecheck-C8 (0c48808), -E, gpu_test_dataflow-E (08b9d1a): clean builds
#   fusecheck-Ed, -Eq, -Edq, -Eall, -C8dq scripts: that build with FUSECHECK_DATAFLOW_L2_PREFETCH=down /
#                                         qkv / down,qkv / qkv,o_proj,down
#   fusecheck-Es8dq, -Es4dq               scripts: E with FUSECHECK_DATAFLOW_SPLITS=8 / 4 and L2 prefetch
#                                         of down,qkv
#   gpu_test_dataflow-BL                  837b0e2 with a planted break: the L2 prefetch of a down tile
#                                         also nudges a q head (the L2 test must fail)
#   gpu_test_dataflow-BW, -B              as in call2.sh (the warps' combine not rescaled; no clearing at
#                                         the epoch reset)
# To rebuild: copy those builds into build/ab5/, `../shared/device/bundle .devbundle4 build/ab5/*`,
# write the scripts into .devbundle4/bin/build/ab5/, `(cd .devbundle4 && tar -cJf bin.tar.xz bin &&
# rm -rf bin)`. Run: `run` with carry [".devbundle4"], command `bash .devbundle4/next-call.sh`, timeout 560 s.
set -u
B=$(dirname "$0")
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
Y=/tmp/z; mkdir -p $Y/rep; L=$Y/log.txt
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/z.tgz -C /tmp z; }
nvidia-smi -L | tee -a $L
$B/run build/ab5/fusecheck-E --version | tee -a $L
timeout 170 $B/run build/ab5/gpu_test_dataflow-E --jobs 1 > $Y/tests-E.log 2>&1; t "test E rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $Y/tests-E.log | head -20 | tee -a $L
san() {  # tool, build, label (env set by the caller)
  timeout 80 compute-sanitizer --tool $1 $B/run build/ab5/gpu_test_dataflow-$2 --filter 'dataflow/small_matches_reference' --jobs 1 > $Y/san-$1-$3.log 2>&1
  t "$1 $3 rc=$? $(tail -1 $Y/san-$1-$3.log)"
}
san memcheck E E
FUSECHECK_DATAFLOW_L2_PREFETCH=qkv,o_proj,gate_up,down san memcheck E E-l2all
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh $(for b in M N N8 C8dq E Ed Eq Edq Eall Es8dq Es4dq; do echo build/ab5/fusecheck-$b; done) > $Y/ab.txt 2>&1; t "ab done"; tail -13 $Y/ab.txt | tee -a $L
cp /tmp/ab/* $Y/ 2>/dev/null
timeout 60 $B/run build/ab5/fusecheck-E bench --preset qwen3-0.6b --engine dataflow --repeat 3 --record --reports $Y/rep > $Y/record-E.log 2>&1; t "record E rc=$?"; grep -E "^\| dataflow " $Y/record-E.log | tee -a $L
rm -f $Y/rep/BENCHMARKS.md $Y/rep/throughput_history.svg
timeout 90 $B/run build/ab5/gpu_test_dataflow-BL --filter 'dataflow/l2_prefetch*' --jobs 1 > $Y/bl.log 2>&1; t "planted break BL (L2 prefetch nudges a q head) rc=$? $(grep -E 'differ|Synthesis' $Y/bl.log | head -2 | tr '\n' ' ')"
timeout 60 $B/run build/ab5/gpu_test_dataflow-BW --filter 'dataflow/small_matches_reference' --jobs 1 > $Y/bw.log 2>&1; t "planted break BW (the warps' combine not rescaled) rc=$? $(grep -E 'matched profile \(' $Y/bw.log | head -1)"
FUSECHECK_DATAFLOW_SPLITS=4 timeout 60 $B/run build/ab5/gpu_test_dataflow-E --filter 'dataflow/small_matches_reference' --jobs 1 > $Y/splits4.log 2>&1; t "E with 4 splits rc=$? $(grep -E 'matched profile \(' $Y/splits4.log | head -1)"
for v in "E 1024" "Edq 1024" "Es8dq 1024" "Edq 16384"; do set -- $v
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 40 $B/run build/ab5/fusecheck-$1 bench --preset qwen3-0.6b --engine dataflow --context $2 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1
  echo "build $1 context $2" >> $Y/timeline.txt; grep -A10 'dataflow timeline' /tmp/tl.log >> $Y/timeline.txt
done
t timelines
san racecheck E E
timeout 150 $B/run build/ab5/fusecheck-E bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
rm -f $Y/rep/BENCHMARKS.md $Y/rep/throughput_history.svg
timeout 125 $B/run build/ab5/gpu_test_dataflow-B --filter 'dataflow/epoch_reset*' --jobs 1 > $Y/b.log 2>&1; t "planted break B (no clearing at the epoch reset) rc=$? $(grep -E 'differ|Timed|timed|Synthesis' $Y/b.log | head -3 | tr '\n' ' ')"
