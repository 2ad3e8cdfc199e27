#!/usr/bin/env bash
# Memory-safety run: build emfast with AddressSanitizer + UndefinedBehaviorSanitizer in a
# throwaway virtual environment and run the kernel tests under it.
#
#   bash ci/sanitize.sh                       # tests/kernels + the kernel properties
#   bash ci/sanitize.sh tests/kernels -x      # any pytest arguments instead
#
# In short, it runs:
#   python -m venv /tmp/emfast-asan && pip install numpy scipy ... (the build and test deps)
#   pip install --no-build-isolation -Cbuild-dir=/tmp/emfast-asan/build-<id> \
#       -Csetup-args=-Db_sanitize=address,undefined -Csetup-args=-Db_lundef=false \
#       -Csetup-args=-Dbuildtype=debugoptimized .
#   LD_PRELOAD=<the libasan the extension links> ASAN_OPTIONS=detect_leaks=0 \
#       UBSAN_OPTIONS=halt_on_error=1 python -m pytest tests/kernels tests/test_properties.py::...
#
# The venv does not see the system site-packages, so an editable install of emfast
# there is neither used nor rebuilt.  Python itself is not instrumented, hence
# LD_PRELOAD; b_lundef=false because extension modules leave Python's symbols undefined;
# detect_leaks=0 because CPython keeps objects alive until exit by design.
# Environment: EMFAST_ASAN_VENV (default /tmp/emfast-asan), PYTHON (default python3).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${EMFAST_ASAN_VENV:-/tmp/emfast-asan}
PYTHON=${PYTHON:-python3}

echo "== venv $VENV"
if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
fi
PY="$VENV/bin/python"
"$PY" -m pip install -qq --disable-pip-version-check \
    numpy scipy threadpoolctl cython meson-python meson ninja pytest hypothesis

echo "== build with -Db_sanitize=address,undefined"
# one build folder per checkout: meson refuses a folder configured for another source tree
BUILD="$VENV/build-$(printf '%s' "$ROOT" | cksum | cut -d' ' -f1)"
"$PY" -m pip install -q --disable-pip-version-check --no-build-isolation --force-reinstall \
    --no-deps -Cbuild-dir="$BUILD" \
    -Csetup-args=-Db_sanitize=address,undefined -Csetup-args=-Db_lundef=false \
    -Csetup-args=-Dbuildtype=debugoptimized "$ROOT"

# Run from outside the source tree so that `import emfast` is the instrumented build.
cd "$VENV"
EXT=$("$PY" -c "import glob, os, emfast._kernels as k; \
print(glob.glob(os.path.join(os.path.dirname(k.__file__), '_gaussian*.so'))[0])" \
    2>/dev/null || true)
if [ -z "$EXT" ]; then
    # importing an ASan-linked extension without the runtime preloaded fails: find it by path
    EXT=$(ls "$VENV"/lib/python3*/site-packages/emfast/_kernels/_gaussian*.so)
fi
ASAN_LIB=$(ldd "$EXT" | awk '/libasan/ {print $3}')
if [ -z "$ASAN_LIB" ] || ! ldd "$EXT" | grep -q libubsan; then
    echo "error: $EXT is not linked against libasan and libubsan; the sanitizers are off" >&2
    exit 1
fi
echo "== runtime $ASAN_LIB"

export LD_PRELOAD="$ASAN_LIB"
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1"
export PYTHONMALLOC=malloc        # Python objects through malloc too, so ASan sees them

# Canary: a deliberate heap overflow through a kernel (exp_nonpos writes len(x) values into
# a shorter `out`) must be caught, or this run proves nothing.
echo "== canary: an out-of-bounds write must be reported"
status=0
{ "$PY" -c "
import numpy as np
from emfast._kernels import _gaussian
x = -np.ones(100_000)
_gaussian.exp_nonpos(x, np.empty(50_000))
" >"$VENV/canary.log" 2>&1; } 2>/dev/null || status=$?    # (hides bash's 'Aborted' notice)
if [ "$status" -eq 0 ]; then
    echo "error: ASan missed a deliberate heap-buffer-overflow" >&2
    exit 1
fi
if ! grep -q "heap-buffer-overflow" "$VENV/canary.log"; then
    echo "error: the canary failed without an ASan report:" >&2
    cat "$VENV/canary.log" >&2
    exit 1
fi
echo "   caught"

echo "== tests under ASan + UBSan"
if [ $# -eq 0 ]; then       # the compiled pass: fixed cases, then random shapes and chunk sizes
    set -- tests/kernels tests/test_properties.py::test_pass_matches_reference \
        tests/test_properties.py::test_pass_is_thread_count_agnostic_and_chunk_size_agnostic
fi
args=()
for arg in "$@"; do          # test paths are relative to the repository
    if [ -e "$ROOT/$arg" ] || [ -e "$ROOT/${arg%%::*}" ]; then
        args+=("$ROOT/$arg")
    else
        args+=("$arg")
    fi
done
# The repository's addopts name plugins the venv does not have: replace them.
exec "$PY" -m pytest -q -p no:cacheprovider -o addopts="" --import-mode=importlib "${args[@]}"
