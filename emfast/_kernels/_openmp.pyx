"""What the compiled kernels were built with."""

cdef extern from "emfast_omp.h" nogil:
    int EMFAST_HAVE_OPENMP
    int omp_get_max_threads()


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(EMFAST_HAVE_OPENMP)


def openmp_max_threads():
    """OpenMP's default team size (honours OMP_NUM_THREADS); 1 without OpenMP."""
    return omp_get_max_threads()
