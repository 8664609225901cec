#!/usr/bin/env bash
# The quick loop of a kernel change on a lent GPU machine: some GPU tests, the fused bench, and (NCU=1)
# each decode kernel timed alone by Nsight Compute over one decode step of qwen3-0.6b at context ~1000
# (duration, DRAM bytes and throughput, grid, registers), plus (SAN=1) compute-sanitizer memcheck and
# racecheck over the kernel tests. Bundle as for tools/gpu_validate.sh, with the executables packed:
#
#   here:  ../shared/device/bundle .devbundle build/fusecheck build/tests/gpu_test_* &&
#          (cd .devbundle && tar -cJf bin.tar.xz bin && rm -rf bin)     # the 64 MiB carry limit
#   there: TESTS="kernels layers" CTX=128,1024 NCU=1 OUT=/some/dir tools/gpu_profile.sh
#
# Prints one line per test, the bench table and the ncu summary; the logs come back as prof.tar.xz.
set -u
B=.devbundle; R=$B/run; [ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B; L=$OUT/logs; mkdir -p $L
export FUSECHECK_CACHE=/tmp/fc
for t in ${TESTS:-kernels layers engine}; do
  timeout 200 $R build/tests/gpu_test_$t --jobs 1 > $L/test_$t.log 2>&1; echo "test $t rc=$? $(grep Synthesis $L/test_$t.log)"
done
timeout 150 $R build/fusecheck bench --preset qwen3-0.6b --engine ${ENGINES:-fused} --context ${CTX:-128,1024} --tokens 64 --repeat 3 > $L/bench.log 2>&1
echo "bench rc=$?"; grep -E "^\| (fused|cublas)|^\| [a-z_]+ .*us" $L/bench.log | head -24
if [ -n "${NCU:-}" ]; then
[ -d /tmp/q06 ] || timeout 60 $R build/fusecheck synth --preset qwen3-0.6b --out /tmp/q06 > $L/synth.log 2>&1
M=gpu__time_duration.sum,dram__bytes_read.sum,dram__throughput.avg.pct_of_peak_sustained_elapsed,launch__grid_size,launch__registers_per_thread
timeout 200 ncu --csv --page raw --metrics $M -k 'regex:rmsnorm_qkv|attention_decode|output_projection_residual|mlp_fused|lm_head_argmax' --launch-skip 120 --launch-count 113 $R build/fusecheck generate --engine fused --model /tmp/q06 --prompt-len 1000 -n 6 > $L/ncu.csv 2> $L/ncu.err
echo "ncu rc=$?"
python3 - $L/ncu.csv <<'PY'
import csv,sys
from collections import defaultdict
rows=list(csv.reader(open(sys.argv[1])))
hi=[i for i,r in enumerate(rows) if 'Kernel Name' in r][0]; h=rows[hi]; ki=h.index('Kernel Name')
cols={m:h.index(m) for m in h if '__' in m}
def f(s):
    try: return float(s.replace(',',''))
    except: return 0.0
agg=defaultdict(list)
for r in rows[hi+2:]:
    if len(r)==len(h): agg[r[ki].split('(')[0].split('<')[0]].append({m:f(r[i]) for m,i in cols.items()})
for n,v in agg.items():
    a=lambda m: sum(x[m] for x in v)/len(v)
    print(f"ncu {n:34s} n={len(v):3d} {a('gpu__time_duration.sum')/1000:7.2f} us  {a('dram__bytes_read.sum')/1e6:7.2f} MB  dram {a('dram__throughput.avg.pct_of_peak_sustained_elapsed'):5.1f}%  grid {a('launch__grid_size'):.0f} regs {a('launch__registers_per_thread'):.0f}")
PY
fi
if [ -n "${SAN:-}" ]; then timeout 240 compute-sanitizer --tool memcheck --leak-check no $R build/tests/gpu_test_kernels --jobs 1 > $L/memcheck.log 2>&1; echo "memcheck rc=$? $(grep "ERROR SUMMARY" $L/memcheck.log | sort | uniq -c)"; timeout 240 compute-sanitizer --tool racecheck $R build/tests/gpu_test_kernels --jobs 1 > $L/racecheck.log 2>&1; echo "racecheck rc=$? $(grep "RACECHECK SUMMARY" $L/racecheck.log | sort | uniq -c)"; fi
tar -cJf $OUT/prof.tar.xz -C $OUT logs
