#!/usr/bin/env bash
# Call 1 was reports/2026-12-06-session5/next-call.sh, run unchanged (its output: log.txt, ab.txt, tests*.log, san.log here).
# Second call, same warm H100: call1's record rows had not come back ($OUT holds few files), so the
# records were redone and everything tarred; timelines of M, E2, E, S, G; the epoch reset's planted
# break (B) with a longer limit: it hung (no output in 200 s), so the test cannot pass without the clearing.
B=.devbundle; [ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B; export FUSECHECK_CACHE=/tmp/fc-cache; mkdir -p $OUT/x/rep; X=$OUT/x
FUSECHECK_COMMIT=1bfa9c9 timeout 120 $B/run build/ab/fusecheck-M bench --preset qwen3-0.6b --engine all --repeat 3 --record --reports $X/rep > $X/all.log 2>&1; echo rec=$?
rm -f $X/rep/BENCHMARKS.md $X/rep/throughput_history.svg
FUSECHECK_COMMIT=1bfa9c9 timeout 150 $B/run build/ab/fusecheck-M bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 --record --reports $X/rep > $X/b8.log 2>&1; echo rec8=$?
rm -f $X/rep/BENCHMARKS.md $X/rep/throughput_history.svg
for v in M E2 E S G; do FUSECHECK_DATAFLOW_TIMELINE=1 timeout 30 $B/run build/ab/fusecheck-$v bench --preset qwen3-0.6b --engine dataflow --context 1024 --tokens 32 --repeat 1 > /tmp/tl.log 2>&1; echo "tl $v rc=$?" >> $X/timeline.txt; grep -A9 'dataflow timeline' /tmp/tl.log >> $X/timeline.txt; done
timeout 200 $B/run build/ab/gpu_test_dataflow-B --filter 'dataflow/timed_and_traced*' --jobs 1 > $X/b.log 2>&1; echo B=$?; tail -5 $X/b.log
cp /tmp/ab/* $X/ 2>/dev/null; tar -czf $OUT/x.tgz -C $OUT x && rm -rf $X
