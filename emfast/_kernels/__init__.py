"""Compiled kernels (private).  Importing this package checks they are built."""
try:
    from . import _gaussian, _openmp  # noqa: F401
except ImportError as exc:  # pragma: no cover - only on a broken install
    raise ImportError(
        "emfast's compiled kernels could not be imported. If you are working from "
        "a source checkout, build the package first: pip install . (or "
        "pip install --no-build-isolation -e . for development)."
    ) from exc
