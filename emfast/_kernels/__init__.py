"""Compiled kernels (private).  Importing this package checks they are built."""
import os

# OpenMP threads that spin while waiting take the core from the thread they wait
# for whenever the machine is busier than its core count: a 2-thread pass on a
# loaded 2-core machine measured 10x slower spinning than sleeping.  Sleeping
# costs a wake-up per parallel region, a few per pass.  The OpenMP runtime reads
# this once, when it loads; a value the user set wins.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

try:
    from . import _gaussian, _openmp  # noqa: F401
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "emfast's compiled kernels could not be imported. If you are working from "
        "a source checkout, build the package first: pip install . (or "
        "pip install --no-build-isolation -e . for development)."
    ) from exc
