#!/usr/bin/env bash
# Build dist/trainer: one file holding Python, trainer, its dependencies and the bundled plugins.
#
# Runs PyInstaller in a clean virtual environment (build/binary/venv) with a regular install of
# this tree, so the binary contains exactly the declared dependencies and trainer's dist-info
# (entry points), whatever the developer's own environment holds. The binary runs on Linux machines
# of the same architecture with a glibc at least as new as this machine's.
#
#   packaging/build-binary.sh            build (reuses the venv when it exists)
#   CLEAN=1 packaging/build-binary.sh    rebuild the venv from scratch
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD=${TRAINER_BUILD_DIR:-$ROOT/build/binary}
VENV=$BUILD/venv
PYTHON=${PYTHON:-python3}
PYINSTALLER_SPEC=${PYINSTALLER_SPEC:-pyinstaller>=6.10,<7}

if [[ "${CLEAN:-0}" == 1 ]]; then rm -rf "$BUILD"; fi
if [[ ! -x "$VENV/bin/python" ]]; then "$PYTHON" -m venv "$VENV"; fi
"$VENV/bin/python" -m pip install --quiet --upgrade pip
# Not editable: PyInstaller follows a regular install, and its dist-info carries the entry points.
"$VENV/bin/python" -m pip install --quiet "$ROOT" "$PYINSTALLER_SPEC"
"$VENV/bin/python" -m pip install --quiet --force-reinstall --no-deps "$ROOT"  # this tree, even at the same version

"$VENV/bin/pyinstaller" --noconfirm --clean --log-level WARN \
    --distpath "$ROOT/dist" --workpath "$BUILD/work" "$ROOT/packaging/trainer.spec"

"$ROOT/dist/trainer" version
ls -l "$ROOT/dist/trainer"
