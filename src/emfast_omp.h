/* OpenMP guard: the kernels call omp_* only through this header so that a
 * build without OpenMP still compiles (one thread, thread id 0). */
#ifndef EMFAST_OMP_H
#define EMFAST_OMP_H

#ifdef _OPENMP
#include <omp.h>
#define EMFAST_HAVE_OPENMP 1
#else
#define EMFAST_HAVE_OPENMP 0
static inline int omp_get_thread_num(void) { return 0; }
static inline int omp_get_max_threads(void) { return 1; }
#endif

#endif
