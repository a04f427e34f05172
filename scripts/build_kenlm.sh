#!/usr/bin/env bash
# Build KenLM's lmplz and build_binary (not shipped in any wheel) once, into .cache/kenlm/bin.
#
# The source is the kenlm sdist from PyPI at the version of the installed python module (the
# sdist carries the full C++ tree, lmplz included), fetched with pip. Needs cmake, a C++
# compiler and Debian's boost (program-options, system, thread), zlib, bz2 and lzma dev
# packages: scripts/setup.sh installs them. Skips when both binaries exist and run.
#
# Usage: PY=.venv/bin/python bash scripts/build_kenlm.sh     (FORCE=1 rebuilds)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PREFIX=${KENLM_PREFIX:-.cache/kenlm}
JOBS=${JOBS:-2}
log() { echo "[build_kenlm $(date +%H:%M:%S)] $*"; }

# Both binaries exist and lmplz runs (its --help exits 1, so look at what it prints).
runs() { local out; out=$("$PREFIX/bin/lmplz" --help 2>&1 || true); [[ $out == *Kneser-Ney* ]]; }
if [ -z "${FORCE:-}" ] && [ -x "$PREFIX/bin/lmplz" ] && [ -x "$PREFIX/bin/build_binary" ] && runs; then
  log "lmplz and build_binary already built in $PREFIX/bin ($(cat "$PREFIX/VERSION" 2>/dev/null || echo unknown version))"
  exit 0
fi

start=$(date +%s)
VERSION=$("$PY" -c "import importlib.metadata as m; print(m.version('kenlm'))" 2>/dev/null || echo "0.3.0")
log "building KenLM $VERSION (lmplz, build_binary) into $PREFIX/bin"
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
# --no-binary kenlm (not :all:): the build requirements of the sdist (setuptools, cmake) come as
# wheels, otherwise pip compiles cmake itself from source just to read kenlm's metadata.
"$PY" -m pip download -q --no-deps --no-binary kenlm "kenlm==$VERSION" -d "$WORK"
tar xzf "$WORK"/kenlm-"$VERSION".tar.gz -C "$WORK"
SRC="$WORK/kenlm-$VERSION"
cmake -S "$SRC" -B "$WORK/build" -DCMAKE_BUILD_TYPE=Release -DCOMPILE_TESTS=OFF -DENABLE_PYTHON=OFF >"$WORK/cmake.log" 2>&1 \
  || { cat "$WORK/cmake.log"; log "cmake failed: install the Debian packages listed in scripts/setup.sh (DEB_PKGS)"; exit 1; }
cmake --build "$WORK/build" --target lmplz build_binary -j "$JOBS" >"$WORK/make.log" 2>&1 \
  || { tail -40 "$WORK/make.log"; log "compilation failed"; exit 1; }
mkdir -p "$PREFIX/bin"
for b in lmplz build_binary; do
  install -m 755 "$WORK/build/bin/$b" "$PREFIX/bin/$b.tmp" && mv "$PREFIX/bin/$b.tmp" "$PREFIX/bin/$b"
done
echo "$VERSION" > "$PREFIX/VERSION"
log "done in $(( $(date +%s) - start )) s: $PREFIX/bin/lmplz, $PREFIX/bin/build_binary"
