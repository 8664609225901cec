#!/bin/sh
# Runs the Python package's tests (python/fusecheck) under ctest: tests/python/run_tests.sh test_trace_io.py.
# Uses the first of $FUSECHECK_PYTHON, python3, /usr/bin/python3 that imports numpy and h5py (Debian's
# python3-numpy and python3-h5py serve /usr/bin/python3; a pyenv python3 may lack them); without one
# it says so and exits 77, which ctest reports as Skipped.
root=$(cd "$(dirname "$0")/../.." && pwd)
for python in ${FUSECHECK_PYTHON:-} python3 /usr/bin/python3; do
  if command -v "$python" >/dev/null 2>&1 && "$python" -c "import numpy, h5py" >/dev/null 2>&1; then
    PYTHONPATH="$root/python${PYTHONPATH:+:$PYTHONPATH}" exec "$python" "$root/tests/python/runner.py" "$@"
  fi
done
echo "skipped: no python3 with numpy and h5py (apt-get install python3-numpy python3-h5py)"
exit 77
