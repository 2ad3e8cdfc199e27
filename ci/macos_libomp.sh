#!/usr/bin/env bash
# macOS wheels: install Homebrew's libomp (delocate bundles it into emfast/.dylibs/) and
# check that it can run on the wheel's minimum macOS.
#
#   bash ci/macos_libomp.sh            install; fail if MACOSX_DEPLOYMENT_TARGET is older
#                                      than the macOS libomp was built for
#   bash ci/macos_libomp.sh --target   install, then print that macOS version (the oldest
#                                      usable MACOSX_DEPLOYMENT_TARGET)
#
# Homebrew builds libomp for the runner's own macOS, so the wheels need that macOS or
# newer. meson (>= 1.5) finds Homebrew's libomp for Apple clang by itself.
set -euo pipefail

brew list libomp >/dev/null 2>&1 || brew install libomp >&2
dylib="$(brew --prefix libomp)/lib/libomp.dylib"
minos="$(otool -l "$dylib" | awk '$1 == "minos" { print $2; exit }')"
if [[ -z "$minos" ]]; then
    echo "macos_libomp.sh: cannot read the minimum macOS of $dylib" >&2
    exit 1
fi
if [[ "${1:-}" == "--target" ]]; then
    echo "$minos"
    exit 0
fi
target="${MACOSX_DEPLOYMENT_TARGET:-}"
if [[ -n "$target" ]] && ! python3 -c '
import sys
version = lambda text: tuple(int(part) for part in text.split("."))
sys.exit(version(sys.argv[1]) < version(sys.argv[2]))' "$target" "$minos"; then
    echo "macos_libomp.sh: libomp needs macOS $minos but MACOSX_DEPLOYMENT_TARGET is" \
         "$target; delocate would refuse to bundle it. Set MACOSX_DEPLOYMENT_TARGET=$minos." >&2
    exit 1
fi
echo "libomp: $dylib (macOS $minos or newer)" >&2
