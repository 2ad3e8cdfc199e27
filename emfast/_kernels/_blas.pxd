# Wrappers over scipy.linalg.cython_blas for the `floating` fused type, on the
# kernels' column layouts: a row-major (D, n_pad) block of columns is, to
# column-major BLAS, the (n_pad, D) matrix of rows with leading dimension n_pad.
# Inline only: a .pxd of inline functions needs no runtime import.
from cython cimport floating
from scipy.linalg.cython_blas cimport dtrmm, strmm, dsyrk, ssyrk


cdef inline void trmm_columns_upper(
    floating *columns,          # INOUT (D, ld): the rows Z (n_rows, D) <- Z @ upper
    const floating *upper,      # IN (D, D) upper triangular, row-major
    int n_rows,
    int D,
    int ld,
) noexcept nogil:
    # U row-major is U^T (lower) column-major, so Z @ U is side R, lower, transposed.
    cdef char side = b'R', uplo = b'L', trans = b'T', diag = b'N'
    cdef floating one = 1.0
    if floating is double:
        dtrmm(&side, &uplo, &trans, &diag, &n_rows, &D, &one, <double *> upper, &D,
              columns, &ld)
    else:
        strmm(&side, &uplo, &trans, &diag, &n_rows, &D, &one, <float *> upper, &D,
              columns, &ld)


cdef inline void syrk_columns(
    const floating *columns,    # IN (D, ld): the rows P (n_rows, D)
    floating *gram,             # INOUT (D, D) row-major: lower triangle <- beta * it + P^T P
    int n_rows,
    int D,
    int ld,
    floating beta,              # 0: overwrite gram, 1: accumulate into it
) noexcept nogil:
    # The column-major upper triangle of P^T P is the row-major lower one.
    cdef char uplo = b'U', trans = b'T'
    cdef floating one = 1.0
    if floating is double:
        dsyrk(&uplo, &trans, &D, &n_rows, &one, <double *> columns, &ld, &beta, gram, &D)
    else:
        ssyrk(&uplo, &trans, &D, &n_rows, &one, <float *> columns, &ld, &beta, gram, &D)
