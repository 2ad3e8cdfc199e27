# Row-major wrappers over scipy.linalg.cython_blas for the `floating` fused
# type.  Inline only: a .pxd of inline functions needs no runtime import.
# A row-major (n, d) matrix is, to column-major BLAS, its (d, n) transpose.
from cython cimport floating
from scipy.linalg.cython_blas cimport dtrmm, strmm, dsyrk, ssyrk


cdef inline void trmm_right_upper(
    floating *rows,             # INOUT (n_rows, n_features): rows <- rows @ upper
    const floating *upper,      # IN (n_features, n_features) upper triangular
    int n_rows,
    int n_features,
) noexcept nogil:
    # rows @ U  ==  (U^T rows^T)^T, and U row-major is U^T (lower) column-major.
    cdef char side = b'L', uplo = b'L', trans = b'N', diag = b'N'
    cdef floating one = 1.0
    if floating is double:
        dtrmm(&side, &uplo, &trans, &diag, &n_features, &n_rows, &one,
              <double *> upper, &n_features, rows, &n_features)
    else:
        strmm(&side, &uplo, &trans, &diag, &n_features, &n_rows, &one,
              <float *> upper, &n_features, rows, &n_features)


cdef inline void syrk_rows(
    const floating *rows,       # IN (n_rows, n_features)
    floating *gram,             # INOUT (n_features, n_features): lower triangle += rows^T rows
    int n_rows,
    int n_features,
    floating beta,              # 0: overwrite gram, 1: accumulate into it
) noexcept nogil:
    # The column-major upper triangle of rows^T rows is the row-major lower one.
    cdef char uplo = b'U', trans = b'N'
    cdef floating one = 1.0
    if floating is double:
        dsyrk(&uplo, &trans, &n_features, &n_rows, &one, <double *> rows,
              &n_features, &beta, gram, &n_features)
    else:
        ssyrk(&uplo, &trans, &n_features, &n_rows, &one, <float *> rows,
              &n_features, &beta, gram, &n_features)
