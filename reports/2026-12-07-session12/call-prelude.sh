# Sourced by this session's call scripts (in the bundle beside it): unpacks the bundle, and defines t
# (log a line with the seconds since the start, and tar the logs into $OUT/h.tgz), san
# (compute-sanitizer over a build's gpu_test_dataflow) and timeline (one bench with the timeline on).
# A build label is looked up in build/ab*/ (each label is built into one of them).
set -u
B=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
Y=/tmp/h; mkdir -p $Y/rep; L=$Y/log.txt
T0=$(date +%s)
t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/h.tgz -C /tmp h; }
exe() { (cd $B/bin && ls -d build/ab*/$1 2>/dev/null | head -1); }  # executable name (labels are unique across build/ab*/)
san() {  # tool, build label, test filter, log label[, limit in seconds: 120]
  timeout ${5:-120} compute-sanitizer --tool $1 $B/run $(exe gpu_test_dataflow-$2) --filter "$3" --jobs 1 > $Y/san-$1-$2-$4.log 2>&1
  t "$1 $2 $4 rc=$? $(tail -1 $Y/san-$1-$2-$4.log)"
}
timeline() {  # build label, preset or model directory (/...), context, tokens
  local model="--preset $2"; [ "${2#/}" != "$2" ] && model="--model $2"
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 150 $B/run $(exe fusecheck-$1) bench $model --engine dataflow --context $3 --tokens $4 --repeat 1 > /tmp/tl.log 2>&1
  echo "build $1 $2 context $3" >> $Y/timeline.txt; grep -A10 'dataflow timeline' /tmp/tl.log >> $Y/timeline.txt
}
nvidia-smi -L | tee -a $L
