"""The one place that decides how many threads the kernels use."""
from contextlib import contextmanager
import numbers

from ._kernels import _openmp


def effective_n_threads(n_threads):
    """Resolve the estimator's ``n_threads`` to a positive count.

    None means OpenMP's default (which honours ``OMP_NUM_THREADS``); a negative
    value ``-m`` means all but ``m - 1`` of them, as in joblib.
    """
    default = _openmp.openmp_max_threads()
    if n_threads is None:
        return default
    if isinstance(n_threads, bool) or not isinstance(n_threads, numbers.Integral) or n_threads == 0:
        raise ValueError(
            f"n_threads must be None, a positive integer or a negative integer "
            f"(-1 means all cores); got {n_threads!r}."
        )
    if n_threads < 0:
        return max(1, default + 1 + int(n_threads))
    return int(n_threads)


@contextmanager
def sequential_blas():
    """Keep BLAS on one thread while the OpenMP kernels call it from several.

    Entered once around a whole fit or prediction, not per iteration: creating
    the controller costs milliseconds.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
