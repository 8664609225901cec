# Sourced by next-call.sh and next-call-2.sh (both in the bundle beside it): unpacks the bundle, and
# defines t (log a line with the seconds since the start, and tar the logs into $OUT/h.tgz) and san
# (compute-sanitizer over a build's gpu_test_dataflow).
set -u
B=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
[ -d $B/bin ] || tar -xJf $B/bin.tar.xz -C $B
export FUSECHECK_CACHE=/tmp/fc-cache
Y=/tmp/h; mkdir -p $Y/rep; L=$Y/log.txt
T0=$(date +%s)
t() { echo "[$(( $(date +%s) - T0 ))s] $*" | tee -a $L; tar -czf $OUT/h.tgz -C /tmp h; }
san() {  # tool, build label, test filter, log label
  timeout 120 compute-sanitizer --tool $1 $B/run build/ab8/gpu_test_dataflow-$2 --filter "$3" --jobs 1 > $Y/san-$1-$2-$4.log 2>&1
  t "$1 $2 $4 rc=$? $(tail -1 $Y/san-$1-$2-$4.log)"
}
timeline() {  # build label, preset, context, tokens
  FUSECHECK_DATAFLOW_TIMELINE=1 timeout 60 $B/run build/ab8/fusecheck-$1 bench --preset $2 --engine dataflow --context $3 --tokens $4 --repeat 1 > /tmp/tl.log 2>&1
  echo "build $1 $2 context $3" >> $Y/timeline.txt; grep -A10 'dataflow timeline' /tmp/tl.log >> $Y/timeline.txt
}
nvidia-smi -L | tee -a $L
