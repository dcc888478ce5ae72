#!/usr/bin/env bash
# Makes sure the build's system prerequisites are present: a C++17 compiler, pkg-config,
# libjpeg-turbo (TurboJPEG and libjpeg APIs), libspng and libdeflate. Installs what is missing with
# apt-get when we are root on Debian/Ubuntu; otherwise says exactly what to install and fails.
set -euo pipefail

python=${1:-python3}
missing=()

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
  echo "error: conveyor needs Python >= 3.10; '$python' is $("$python" --version 2>&1 || echo missing)." >&2
  echo "       Run make with PYTHON=/path/to/python3.10+ ." >&2
  exit 1
fi
"$python" -c 'import venv, ensurepip' 2>/dev/null || missing+=(python3-venv)
command -v c++ >/dev/null 2>&1 || missing+=(g++)
command -v make >/dev/null 2>&1 || missing+=(make)
if command -v pkg-config >/dev/null 2>&1; then
  pkg-config --exists libturbojpeg || missing+=(libturbojpeg0-dev)
  pkg-config --exists libjpeg || missing+=(libjpeg-dev)
  pkg-config --exists spng || missing+=(libspng-dev)
  pkg-config --exists libdeflate || missing+=(libdeflate-dev)
else
  missing+=(pkg-config libturbojpeg0-dev libjpeg-dev libspng-dev libdeflate-dev)
fi

[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "conveyor: installing system packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q >/dev/null
  apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  exit 0
fi

cat >&2 <<MSG
error: conveyor's build needs these system packages, which are missing: ${missing[*]}
  Debian/Ubuntu:  sudo apt-get install ${missing[*]}
  Fedora:         sudo dnf install gcc-c++ pkgconf turbojpeg-devel libjpeg-turbo-devel libspng-devel libdeflate-devel
  macOS:          brew install pkg-config jpeg-turbo libspng libdeflate
Then run make again.
MSG
exit 1
