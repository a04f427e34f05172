#!/usr/bin/env bash
# Set up everything wav2vec-u needs on a Debian machine, idempotently:
#   Debian packages (espeak-ng, libsndfile, cmake/boost for KenLM's lmplz), a virtual
#   environment, torch pinned to a CPU build (an existing torch is kept), the package with its
#   test extras, and KenLM's lmplz/build_binary built from source once.
# Usage: scripts/setup.sh            (VENV=.venv by default; WITH_EXTRAS="test" by default)
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
EXTRAS=${WITH_EXTRAS:-test}
TORCH_VERSION=${TORCH_VERSION:-2.13.0}
log() { echo "[setup $(date +%H:%M:%S)] $*"; }

# 1. Debian packages, only when something is missing.
# chromium: the headless-browser test of w2vu transcribe's review page
DEB_PKGS=(espeak-ng libespeak-ng1 libsndfile1 sox build-essential cmake zlib1g-dev libbz2-dev liblzma-dev
          libboost-program-options-dev libboost-system-dev libboost-thread-dev libboost-test-dev chromium)
missing=()
for p in "${DEB_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# 2. Virtual environment.
if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtual environment $VENV"
  python3 -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -q --upgrade pip >/dev/null

# 3. torch: keep an existing install; otherwise the pinned CPU build. The constraints file keeps
#    any dependency from replacing it with a multi-GB CUDA build.
CONSTRAINTS=$(mktemp); trap 'rm -f "$CONSTRAINTS"' EXIT
if have=$("$PY" -c "import torch; print(torch.__version__.split('+')[0])" 2>/dev/null); then
  log "keeping installed torch $have"
  echo "torch==$have" > "$CONSTRAINTS"
else
  log "installing torch==$TORCH_VERSION"
  "$PY" -m pip install -q "torch==$TORCH_VERSION"
  echo "torch==$TORCH_VERSION" > "$CONSTRAINTS"
fi
grep -v '^torch' constraints.txt | grep -v '^#' >> "$CONSTRAINTS" || true

# 4. The package and its extras.
log "installing wav2vec-u[$EXTRAS]"
"$PY" -m pip install -q -c "$CONSTRAINTS" -e ".[$EXTRAS]"

# 5. KenLM's lmplz and build_binary (not in any wheel): built once, cached under .cache/kenlm.
if [ -f scripts/build_kenlm.sh ]; then
  PY="$PY" bash scripts/build_kenlm.sh
fi
log "done: activate with 'source $VENV/bin/activate' or call $VENV/bin/w2vu"
