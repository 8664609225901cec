#!/usr/bin/env bash
# The eighth session's second device call (it never ran: no machine could be started; NOTES v9):
# attention by warps on main's kernel (N, c535ac5, branch dataflow-w) and with 8 positions a warp pass
# (N8, 12b3e77, branch dataflow-w-p8) against 33ff308's kernel (M), most important first; every step's
# output is tarred into $OUT/y.tgz as it goes.
# Bundle (.devbundle2, ignored: `.git/info/exclude`; on this machine if it survives):
#   build/ab3/fusecheck-M                       de6b838's build (33ff308's kernel, main's)
#   build/ab3/fusecheck-N, gpu_test_dataflow-N   c535ac5's build
#   build/ab3/fusecheck-N8, gpu_test_dataflow-N8 12b3e77's build
#   build/ab3/gpu_test_dataflow-BW              c535ac5 with the warps' combine not rescaled (in the
#                                               combine, factor = 1 for a warp with positions): a planted
#                                               break the matched profile must catch
#   build/ab3/gpu_test_dataflow-B               de6b838 without the epoch reset's three cudaMemsetAsync
# To rebuild: clean builds (README's cmake) of worktrees at those commits, copied under those names into
# build/ab3/, then `../shared/device/bundle .devbundle2 build/ab3/*` and
# `(cd .devbundle2 && tar -cJf bin.tar.xz bin && rm -rf bin lib)`, and this script as .devbundle2/next-call.sh.
# Run: `run` with carry [".devbundle2"], command `bash .devbundle2/next-call.sh`, timeout ~420 s.
set -u
B=.devbundle2
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
Y=/tmp/y; mkdir -p $Y/rep; L=$Y/log.txt
T0=$(date +%s); t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/y.tgz -C /tmp y; }
nvidia-smi -L | tee -a $L
$B/run build/ab3/fusecheck-N --version | tee -a $L
timeout 150 $B/run build/ab3/gpu_test_dataflow-N --jobs 1 > $Y/tests.log 2>&1; t "test N rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $Y/tests.log | head -20 | tee -a $L
san() {  # tool, build
  timeout 80 compute-sanitizer --tool $1 $B/run build/ab3/gpu_test_dataflow-$2 --filter 'dataflow/small_matches_reference' --jobs 1 > $Y/san-$1-$2.log 2>&1
  t "$1 $2 rc=$? $(tail -1 $Y/san-$1-$2.log)"
}
san memcheck N
timeout 150 $B/run build/ab3/gpu_test_dataflow-N8 --jobs 1 > $Y/tests-N8.log 2>&1; t "test N8 rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|fail' $Y/tests-N8.log | head -20 | tee -a $L
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=2 OUT=/tmp/ab tools/gpu_ab.sh build/ab3/fusecheck-M build/ab3/fusecheck-N build/ab3/fusecheck-N8 > $Y/ab.txt 2>&1; t "ab done"; tail -5 $Y/ab.txt | tee -a $L
timeout 150 $B/run build/ab3/fusecheck-N bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $Y/rep > $Y/record-0.6b.log 2>&1; t "record N rc=$?"; grep -E "^\| (fused|cublas|dataflow) " $Y/record-0.6b.log | tee -a $L
rm -f $Y/rep/BENCHMARKS.md $Y/rep/throughput_history.svg
timeout 60 $B/run build/ab3/gpu_test_dataflow-BW --filter 'dataflow/small_matches_reference' --jobs 1 > $Y/bw.log 2>&1; t "planted break BW (the warps' combine not rescaled) rc=$? $(grep -E 'matched profile \(' $Y/bw.log | head -1)"
san racecheck N; san memcheck N8
for ctx in 1024 16384; do
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 40 $B/run build/ab3/fusecheck-N bench --preset qwen3-0.6b --engine dataflow --context $ctx --tokens 32 --repeat 1 > /tmp/tl.log 2>&1
  echo "build N context $ctx" >> $Y/timeline.txt; grep -A10 'dataflow timeline' /tmp/tl.log >> $Y/timeline.txt
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 40 $B/run build/ab3/fusecheck-N8 bench --preset qwen3-0.6b --engine dataflow --context $ctx --tokens 32 --repeat 1 > /tmp/tl.log 2>&1
  echo "build N8 context $ctx" >> $Y/timeline.txt; grep -A10 'dataflow timeline' /tmp/tl.log >> $Y/timeline.txt
done
t timelines
timeout 150 $B/run build/ab3/fusecheck-N bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $Y/rep > $Y/record-8b.log 2>&1; t "8b record rc=$?"; grep -E "^\| (fused|dataflow) " $Y/record-8b.log | tee -a $L
rm -f $Y/rep/BENCHMARKS.md $Y/rep/throughput_history.svg
cp /tmp/ab/* $Y/ 2>/dev/null; t "ab logs"
san racecheck N8
timeout 125 $B/run build/ab3/gpu_test_dataflow-B --filter 'dataflow/epoch_reset*' --jobs 1 > $Y/b.log 2>&1; t "planted break B (no clearing at the epoch reset) rc=$? $(grep -E 'differ|Timed|timed|Synthesis' $Y/b.log | head -3 | tr '\n' ' ')"
