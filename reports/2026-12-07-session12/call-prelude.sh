# Sourced by this session's call scripts (in the bundle beside it): unpacks the bundle, and defines t
# (log a line with the seconds since the start, and tar the logs into $OUT/h.tgz), san
# (compute-sanitizer over a build's gpu_test_dataflow), suite (a build's gpu_test_dataflow), same_bits
# (two builds' dataflow runs compared at tolerance 0), timeline (one bench with the timeline on),
# synth_8b and rounds_8b (qwen3-8b's weights once a machine; builds' tok/s on it in turns).
# A build label is looked up in build/ab*/ (each label is built into one of them).
set -u
B=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
# The reference's OpenBLAS kernels pinned as ctest pins them (tests/CMakeLists.txt): the test binaries
# run here without ctest, and their goldens' last bits would otherwise follow the host's CPU model.
export OPENBLAS_CORETYPE=Haswell
Y=/tmp/h; mkdir -p $Y/rep; L=$Y/log.txt
T0=$(date +%s)
t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/h.tgz -C /tmp h; }
exe() { (cd $B/bin && ls -d build/ab*/$1 2>/dev/null | head -1); }  # executable name (labels are unique across build/ab*/)
san() {  # tool, build label, test filter, log label[, limit in seconds: 120]
  timeout ${5:-120} compute-sanitizer --tool $1 $B/run $(exe gpu_test_dataflow-$2) --filter "$3" --jobs 1 > $Y/san-$1-$2-$4.log 2>&1
  t "$1 $2 $4 rc=$? $(tail -1 $Y/san-$1-$2-$4.log)"
}
suite() {  # build label[, limit in seconds: 150]: its gpu_test_dataflow, the report lines logged
  timeout ${2:-150} $B/run $(exe gpu_test_dataflow-$1) --jobs 1 > $Y/tests-$1.log 2>&1; t "test $1 rc=$?"
  grep -E 'matched profile \(|bit-identical|Synthesis|FAIL|differ' $Y/tests-$1.log | head -24 | tee -a $L
}
same_bits() {  # build label, baseline label, prompt length, steps[, VARIABLE=VALUE...]: their dataflow
  # runs of qwen3-0.6b replaying one reference golden (the settings set for both), compared at tolerance 0
  local b=$1 base=$2 prompt=$3 steps=$4; shift 4
  [ -d /tmp/m06 ] || $B/run $(exe fusecheck-$base) synth --preset qwen3-0.6b --out /tmp/m06 > $Y/synth-0.6b.log 2>&1
  timeout 120 $B/run $(exe fusecheck-$base) golden --model /tmp/m06 --prompt-len $prompt --steps $steps --kv-dtype bf16 \
    --quiet --out /tmp/g-$prompt-$steps.h5 > $Y/golden-$prompt-$steps.log 2>&1
  for x in $base $b; do
    env "$@" timeout 60 $B/run $(exe fusecheck-$x) run --engine dataflow --model /tmp/m06 --golden /tmp/g-$prompt-$steps.h5 \
      --out /tmp/run-$x.h5 --quiet > $Y/run-$x.log 2>&1
  done
  timeout 30 $B/run $(exe fusecheck-$base) compare /tmp/run-$b.h5 /tmp/run-$base.h5 --max-rel-l2 0 --max-norm-max 0 > $Y/same-bits-$b.log 2>&1
  t "$b against $base at tolerance 0 ($prompt + $steps positions $*) rc=$? $(grep -iE '^summary' $Y/same-bits-$b.log | head -1)"
}
timeline() {  # build label, preset or model directory (/...), context, tokens
  local model="--preset $2"; [ "${2#/}" != "$2" ] && model="--model $2"
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 150 $B/run $(exe fusecheck-$1) bench $model --engine dataflow --context $3 --tokens $4 --repeat 1 > /tmp/tl.log 2>&1
  echo "build $1 $2 context $3" >> $Y/timeline.txt; grep -A10 'dataflow timeline' /tmp/tl.log >> $Y/timeline.txt
}
synth_8b() {  # build label: qwen3-8b's synthetic weights into /tmp/qwen3-8b, once a machine
  [ -d /tmp/qwen3-8b ] && return
  timeout 150 $B/run $(exe fusecheck-$1) synth --preset qwen3-8b --out /tmp/qwen3-8b > $Y/synth-8b.log 2>&1; t "synth 8b rc=$?"
}
rounds_8b() {  # rounds, build labels...: their dataflow tok/s on qwen3-8b at 1024, the builds in turn
  local rounds=$1; shift; local tag=$(IFS=-; echo "$*")
  for r in $(seq 1 $rounds); do for b in "$@"; do
    timeout 60 $B/run $(exe fusecheck-$b) bench --model /tmp/qwen3-8b --engine dataflow --context 1024 --repeat 3 > $Y/ab8b-$tag-$r-$b.log 2>&1
    t "8b round $r $b rc=$? $(grep -E '^\| dataflow ' $Y/ab8b-$tag-$r-$b.log | cut -d'|' -f3,4 | tr -s ' ')"
  done; done
}
nvidia-smi -L | tee -a $L
