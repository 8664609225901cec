#!/usr/bin/env bash
# Installs what fusecheck builds against, from Debian's packages, when it is missing.
# Run as root (CI and fresh machines are); as another user it only says what is missing.
set -euo pipefail
# python3-numpy and python3-h5py: the Python trace writer's tests (tests/python/), run with /usr/bin/python3.
packages=(cmake ninja-build pkg-config gcc libopenblas-dev libhdf5-dev hdf5-tools libcjson-dev libcriterion-dev python3-numpy python3-h5py)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "fusecheck: missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
  exit 2
fi
echo "fusecheck: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
