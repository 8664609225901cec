#!/usr/bin/env bash
# The next session's first device call (prepared in the eleventh, v12): PXR (runs of a projection's
# tiles compiled only into the kernels that run them) against PT (main's kernel). PXR's GPU suite, the
# planted break BXR, memcheck (long splits, 32 KB tiles), racecheck of the kernel with runs (two
# decode steps of qwen3-0.6b at 32 KB tiles through `fusecheck generate`: the 32 KB-tile test under
# racecheck takes over 5 minutes), the A/B at 128/1024/4096/16384, qwen3-8b of both, PXR's timelines.
# About 480 s. Bundle: `bash reports/2026-12-07-session11/build-bundle.sh`.
# Run: `run` with carry [".devbundle8"], command `bash .devbundle8/next-call.sh`, timeout 560 s.
# Merge PXR if its suite passes, BXR fails, the sanitizers are clean, 0.6B holds within the A/B's noise
# (about 1%) of PT and qwen3-8b reaches 0.98x fused; then record main's build (bench --record).
. "$(dirname "$0")/call-prelude.sh"
$B/run build/ab8/fusecheck-PXR --version | tee -a $L
timeout 100 $B/run build/ab8/gpu_test_dataflow-PXR --jobs 1 > $Y/tests-PXR.log 2>&1; t "test PXR rc=$?"
grep -E 'matched profile \(|bit-identical|Synthesis|FAIL' $Y/tests-PXR.log | head -24 | tee -a $L
timeout 100 $B/run build/ab8/gpu_test_dataflow-BXR --filter 'dataflow/qwen3_0_6b_with_several*' --jobs 1 > $Y/bxr.log 2>&1; t "planted break BXR (a run's next tile issued before the dots) rc=$? $(grep -E 'matched profile \(|Synthesis' $Y/bxr.log | head -2 | tr '\n' ' ')"
san memcheck PXR 'dataflow/small_with_long*' long-splits
san memcheck PXR 'dataflow/qwen3_0_6b_with_several*' 32kb-tiles
$B/run build/ab8/fusecheck-PXR synth --preset qwen3-0.6b --out /tmp/m06 > /dev/null 2>&1
for pages in gate_up none; do
  FUSECHECK_DATAFLOW_TILE_KB=32 FUSECHECK_DATAFLOW_PAGES=$pages timeout 150 compute-sanitizer --tool racecheck \
    $B/run build/ab8/fusecheck-PXR generate --engine dataflow --model /tmp/m06 --prompt-len 4 -n 2 > $Y/san-racecheck-PXR-32kb-$pages.log 2>&1
  t "racecheck PXR 32 KB tiles, pages $pages rc=$? $(tail -1 $Y/san-racecheck-PXR-32kb-$pages.log)"
done
mkdir -p /tmp/ab
BUNDLE=$B ENGINE=dataflow CTX=128,1024,4096,16384 ROUNDS=3 OUT=/tmp/ab tools/gpu_ab.sh build/ab8/fusecheck-{PT,PXR} > $Y/ab.txt 2>&1; t "ab done"; tail -3 $Y/ab.txt | tee -a $L
cp /tmp/ab/* $Y/ 2>/dev/null
for b in PT PXR; do timeout 100 $B/run build/ab8/fusecheck-$b bench --preset qwen3-8b --engine fused,dataflow --context 1024 --repeat 3 > $Y/8b-$b.log 2>&1; t "8b $b rc=$? $(grep -E '^\| (fused|dataflow) ' $Y/8b-$b.log | tr '\n' ' ')"; done
timeline PXR qwen3-0.6b 1024 32
timeline PXR qwen3-8b 1024 8
t timelines
