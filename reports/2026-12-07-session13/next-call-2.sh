#!/usr/bin/env bash
# Where the timed kernel's warps stall, by SASS instruction and source line: ncu's source counters
# (PC sampling) of main's timed kernel (MLI: ce824bc built with -lineinfo, its kernels' SASS identical
# to ce824bc's) at context 1024 and 16384, exported as CSV (SASS with its CUDA lines) for reading
# here. About 120 s. Run: `run` with carry [".devbundle13"], command `bash .devbundle13/next-call-2.sh`, timeout 300 s.
. "$(dirname "$0")/call-prelude.sh"
for ctx in 1024 16384; do
  timeout 100 ncu --clock-control none --section SourceCounters --section WarpStateStats --import-source no \
    -k regex:dataflow --launch-skip 6 --launch-count 1 -o $Y/src-$ctx \
    $B/run build/ab9/fusecheck-MLI bench --preset qwen3-0.6b --engine dataflow --context $ctx --tokens 16 --repeat 1 > $Y/src-$ctx.log 2>&1
  t "ncu source $ctx rc=$?"
  timeout 60 ncu -i $Y/src-$ctx.ncu-rep --page source --csv --print-source cuda,sass > $Y/src-$ctx-cuda-sass.csv 2> $Y/src-$ctx-export.err
  t "export cuda,sass rc=$? $(wc -c < $Y/src-$ctx-cuda-sass.csv) bytes; $(head -c 300 $Y/src-$ctx-export.err)"
  if [ ! -s $Y/src-$ctx-cuda-sass.csv ] || [ $(wc -c < $Y/src-$ctx-cuda-sass.csv) -lt 10000 ]; then
    timeout 60 ncu -i $Y/src-$ctx.ncu-rep --page source --csv --print-source sass > $Y/src-$ctx-sass.csv 2>> $Y/src-$ctx-export.err
    t "export sass rc=$? $(wc -c < $Y/src-$ctx-sass.csv) bytes"
  fi
  timeout 30 ncu -i $Y/src-$ctx.ncu-rep --page details > $Y/src-$ctx-details.txt 2>&1
  head -c 600 $Y/src-$ctx-cuda-sass.csv | tee -a $L
  gzip -f $Y/src-$ctx*.csv
  cp $Y/src-$ctx.ncu-rep $OUT/ 2>/dev/null; rm -f $Y/src-$ctx.ncu-rep
  t "ctx $ctx done"
done
