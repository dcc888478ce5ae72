#!/usr/bin/env bash
# Installs the peers that benchmarks/bench_loader.py measures conveyor against, each in its own
# venv so none of them ever replaces the project's packages (pillow-simd shadows Pillow's `PIL`).
#
#   benchmarks/.venv-pillow-simd  torch + torchvision + pillow-simd built for AVX2: what a user
#                                 would try first to speed up a torchvision pipeline
#   benchmarks/.venv-dali         nvidia-dali-cuda120 (CPU pipelines, device_id=None; optional)
#   benchmarks/.venv-spdl         spdl (optional; needs Debian's FFmpeg 5 libraries)
#
# Idempotent: a venv that already passes its check is left alone. Safe to re-run.
# Usage: benchmarks/setup_peers.sh [--no-dali] [--no-spdl]    (PYTHON=python3.11 to pick one)
set -uo pipefail

here=$(cd "$(dirname "$0")" && pwd)
PYTHON=${PYTHON:-python3}
want_dali=1
want_spdl=1
for arg in "$@"; do
  case "$arg" in
    --no-dali) want_dali=0 ;;
    --no-spdl) want_spdl=0 ;;
    -h|--help) sed -n 2,11p "$0"; exit 0 ;;
    *) echo "setup_peers.sh: unknown option $arg" >&2; exit 2 ;;
  esac
done

declare -A status

log() { echo "[setup_peers] $*"; }

apt_install() {  # apt_install PKG... : installs the missing Debian packages when we can
  local missing=()
  for pkg in "$@"; do dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg"); done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "apt-get install ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
  else
    log "missing system packages: ${missing[*]} (install them as root: apt-get install ${missing[*]})"
    return 1
  fi
}

make_venv() {  # make_venv DIR
  [ -x "$1/bin/python" ] && return 0
  "$PYTHON" -m venv "$1" && "$1/bin/python" -m pip install -q --upgrade pip >/dev/null
}

pip_in() {  # pip_in VENV ARGS... : pip in that venv, without the noise about unused local indexes
  local venv=$1; shift
  "$venv/bin/python" -m pip --disable-pip-version-check -q "$@" 2>&1 | grep -v "^WARNING: Location '.*' is ignored"
  return "${PIPESTATUS[0]}"
}

# --- pillow-simd (AVX2) + torch + torchvision ------------------------------------------------
pillow_simd_ok() {
  "$1/bin/python" - <<'PY' 2>/dev/null
import PIL, torch, torchvision
from PIL import features
assert "post" in PIL.__version__, PIL.__version__
assert features.check("jpg"), "pillow-simd built without JPEG support"
PY
}

setup_pillow_simd() {
  local venv=$here/.venv-pillow-simd
  if pillow_simd_ok "$venv"; then status[pillow-simd]="ready (already set up)"; return; fi
  apt_install libjpeg-dev zlib1g-dev || { status[pillow-simd]="unavailable: libjpeg-dev/zlib1g-dev missing"; return; }
  make_venv "$venv" || { status[pillow-simd]="unavailable: could not create $venv"; return; }
  log "installing torch + torchvision into $venv"
  pip_in "$venv" install torch torchvision numpy || { status[pillow-simd]="unavailable: pip could not install torch/torchvision"; return; }
  # torchvision pulls in Pillow; pillow-simd must be the only PIL in this venv.
  pip_in "$venv" uninstall -y pillow >/dev/null 2>&1
  log "building pillow-simd with AVX2 (from source, ~20-60 s)"
  CC="cc -mavx2" pip_in "$venv" install --no-cache-dir --no-binary pillow-simd --force-reinstall --no-deps pillow-simd \
    || { status[pillow-simd]="unavailable: pillow-simd failed to build"; return; }
  if pillow_simd_ok "$venv"; then status[pillow-simd]="ready"; else status[pillow-simd]="unavailable: PIL in $venv is not pillow-simd"; fi
}

# --- DALI on the CPU ---------------------------------------------------------------------------
dali_ok() {
  "$1/bin/python" - <<'PY' 2>/dev/null
import numpy as np
from nvidia.dali import pipeline_def, fn
@pipeline_def(batch_size=2, num_threads=1, device_id=None)
def tiny():
    return fn.random.uniform(range=[0.0, 1.0], shape=[2])
p = tiny(); p.build(); p.run()
PY
}

setup_dali() {
  local venv=$here/.venv-dali
  if dali_ok "$venv"; then status[dali]="ready (already set up)"; return; fi
  make_venv "$venv" || { status[dali]="unavailable: could not create $venv"; return; }
  log "installing nvidia-dali-cuda120 into $venv (~0.4 GB)"
  pip_in "$venv" install numpy nvidia-dali-cuda120 || { status[dali]="unavailable: nvidia-dali-cuda120 did not install"; return; }
  if dali_ok "$venv"; then status[dali]="ready"; else status[dali]="unavailable: DALI installed but a CPU pipeline does not run"; fi
}

# --- SPDL -------------------------------------------------------------------------------------
spdl_ok() { "$1/bin/python" -c 'import spdl.io; spdl.io.load_image' 2>/dev/null; }

setup_spdl() {
  local venv=$here/.venv-spdl
  if spdl_ok "$venv"; then status[spdl]="ready (already set up)"; return; fi
  apt_install libavutil57 libavcodec59 libavformat59 libavfilter8 libswscale6 libswresample4 libavdevice59 \
    || { status[spdl]="unavailable: FFmpeg 5 libraries missing"; return; }
  make_venv "$venv" || { status[spdl]="unavailable: could not create $venv"; return; }
  pip_in "$venv" install numpy spdl || { status[spdl]="unavailable: spdl did not install"; return; }
  if spdl_ok "$venv"; then status[spdl]="ready"; else status[spdl]="unavailable: spdl installed but does not import"; fi
}

setup_pillow_simd
if [ $want_dali = 1 ]; then setup_dali; else status[dali]="skipped (--no-dali)"; fi
if [ $want_spdl = 1 ]; then setup_spdl; else status[spdl]="skipped (--no-spdl)"; fi

echo
echo "Peers for benchmarks/bench_loader.py:"
for peer in pillow-simd dali spdl; do printf '  %-12s %s\n' "$peer" "${status[$peer]}"; done
if [ -x "$here/.venv-pillow-simd/bin/python" ]; then
  "$here/.venv-pillow-simd/bin/python" -c 'import PIL, torch, torchvision; print("  pillow-simd venv: PIL", PIL.__version__, "| torch", torch.__version__, "| torchvision", torchvision.__version__)' 2>/dev/null
fi
if [ -x "$here/.venv-dali/bin/python" ]; then
  "$here/.venv-dali/bin/python" -c 'import nvidia.dali as d; print("  dali venv: DALI", d.__version__)' 2>/dev/null
fi
# The peers are optional: bench_loader.py records "not available" for any that is missing.
exit 0
