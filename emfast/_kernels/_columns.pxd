# Declarations of the C helpers in src/ shared by the kernel modules, and
# inline wrappers that pick the float32 or float64 helper for the `floating`
# fused type.  Externs and inline functions only: cimporting this needs no
# runtime import.
from cython cimport floating

cdef extern from "emfast_omp.h" nogil:
    int omp_get_thread_num()

cdef extern from "emfast_lse.h" nogil:
    void emfast_exp_nonpos_array(const double *x, double *out, Py_ssize_t n)

cdef extern from "emfast_columns.h" nogil:
    enum:
        EMFAST_NONE
        EMFAST_FULL
        EMFAST_TIED
        EMFAST_DIAG
        EMFAST_SPHERICAL
    Py_ssize_t emfast_padded(Py_ssize_t n_rows)
    int emfast_isa()
    double emfast_weighted_loglik_f64(const double *log_norm, const double *w, Py_ssize_t n_pad)
    double emfast_weighted_loglik_f32(const double *log_norm, const float *w, Py_ssize_t n_pad)
    void emfast_transpose_f64(const double *x, const double *weights, Py_ssize_t n_rows,
                              Py_ssize_t D, Py_ssize_t n_pad, double *xt)
    void emfast_transpose_f32(const float *x, const float *weights, Py_ssize_t n_rows,
                              Py_ssize_t D, Py_ssize_t n_pad, float *xt)
    void emfast_log_prob_columns_f64(int kind, const double *xt, Py_ssize_t n_pad, Py_ssize_t D,
                                     Py_ssize_t K, const double *means, const double *prec,
                                     const double *log_const, double *zt, double *logpt)
    void emfast_log_prob_columns_f32(int kind, const float *xt, Py_ssize_t n_pad, Py_ssize_t D,
                                     Py_ssize_t K, const float *means, const float *prec,
                                     const double *log_const, float *zt, double *logpt)
    void emfast_accumulate_columns_f64(int kind, const double *xt, Py_ssize_t n_pad,
                                       Py_ssize_t D, Py_ssize_t K, const double *centres,
                                       const double *respt, double *zt, double *rz, double *rw,
                                       double *nk, double *s1, double *s2)
    void emfast_accumulate_columns_f32(int kind, const float *xt, Py_ssize_t n_pad,
                                       Py_ssize_t D, Py_ssize_t K, const float *centres,
                                       const double *respt, float *zt, float *rz, float *rw,
                                       double *nk, double *s1, double *s2)
    void emfast_centre_columns_f64(const double *xt, Py_ssize_t n_pad, Py_ssize_t D,
                                   const double *mu, double *zt)
    void emfast_centre_columns_f32(const float *xt, Py_ssize_t n_pad, Py_ssize_t D,
                                   const float *mu, float *zt)
    void emfast_half_sq_columns_f64(const double *yt, Py_ssize_t n_pad, Py_ssize_t D, double c,
                                    double *out)
    void emfast_half_sq_columns_f32(const float *yt, Py_ssize_t n_pad, Py_ssize_t D, double c,
                                    double *out)
    Py_ssize_t emfast_scaled_rows_f64(const double *x, const double *xt, Py_ssize_t n_rows,
                                      Py_ssize_t n_pad, Py_ssize_t D, const double *c,
                                      const double *r, double *rw, double *sroot, double *pt,
                                      double *nk, double *s1)
    Py_ssize_t emfast_scaled_rows_f32(const float *x, const float *xt, Py_ssize_t n_rows,
                                      Py_ssize_t n_pad, Py_ssize_t D, const float *c,
                                      const double *r, float *rw, float *sroot, float *pt,
                                      double *nk, double *s1)
    void emfast_softmax_columns(double *logpt, Py_ssize_t n_pad, Py_ssize_t K,
                                double *log_norm, double *row_max)
    void emfast_argmax_columns(const double *logpt, Py_ssize_t n_pad, Py_ssize_t K,
                               double *max_out, double *best)
    void emfast_onehot_columns(double *logpt, Py_ssize_t n_pad, Py_ssize_t K,
                               double *log_norm, double *best)


# --- one name per helper for both dtypes (arguments as in src/emfast_columns_type.h)

cdef inline void transpose_columns(const floating *x, const floating *weights,
                                   Py_ssize_t n_rows, Py_ssize_t D, Py_ssize_t n_pad,
                                   floating *xt) noexcept nogil:
    if floating is double:
        emfast_transpose_f64(x, weights, n_rows, D, n_pad, xt)
    else:
        emfast_transpose_f32(x, weights, n_rows, D, n_pad, xt)


cdef inline double weighted_loglik(const double *log_norm, const floating *w,
                                   Py_ssize_t n_pad) noexcept nogil:
    if floating is double:
        return emfast_weighted_loglik_f64(log_norm, w, n_pad)
    else:
        return emfast_weighted_loglik_f32(log_norm, w, n_pad)


cdef inline void log_prob_columns(int kind, const floating *xt, Py_ssize_t n_pad, Py_ssize_t D,
                                  Py_ssize_t K, const floating *means, const floating *prec,
                                  const double *log_const, floating *zt,
                                  double *logpt) noexcept nogil:
    if floating is double:
        emfast_log_prob_columns_f64(kind, xt, n_pad, D, K, means, prec, log_const, zt, logpt)
    else:
        emfast_log_prob_columns_f32(kind, xt, n_pad, D, K, means, prec, log_const, zt, logpt)


cdef inline void accumulate_columns(int kind, const floating *xt, Py_ssize_t n_pad,
                                    Py_ssize_t D, Py_ssize_t K, const floating *centres,
                                    const double *respt, floating *zt, floating *rz,
                                    floating *rw, double *nk, double *s1,
                                    double *s2) noexcept nogil:
    if floating is double:
        emfast_accumulate_columns_f64(kind, xt, n_pad, D, K, centres, respt, zt, rz, rw,
                                      nk, s1, s2)
    else:
        emfast_accumulate_columns_f32(kind, xt, n_pad, D, K, centres, respt, zt, rz, rw,
                                      nk, s1, s2)


cdef inline void centre_columns(const floating *xt, Py_ssize_t n_pad, Py_ssize_t D,
                                const floating *mu, floating *zt) noexcept nogil:
    if floating is double:
        emfast_centre_columns_f64(xt, n_pad, D, mu, zt)
    else:
        emfast_centre_columns_f32(xt, n_pad, D, mu, zt)


cdef inline void half_sq_columns(const floating *yt, Py_ssize_t n_pad, Py_ssize_t D, double c,
                                 double *out) noexcept nogil:
    if floating is double:
        emfast_half_sq_columns_f64(yt, n_pad, D, c, out)
    else:
        emfast_half_sq_columns_f32(yt, n_pad, D, c, out)


cdef inline Py_ssize_t scaled_rows(const floating *x, const floating *xt, Py_ssize_t n_rows,
                                   Py_ssize_t n_pad, Py_ssize_t D, const floating *c,
                                   const double *r, floating *rw, floating *sroot,
                                   floating *pt, double *nk, double *s1) noexcept nogil:
    if floating is double:
        return emfast_scaled_rows_f64(x, xt, n_rows, n_pad, D, c, r, rw, sroot, pt, nk, s1)
    else:
        return emfast_scaled_rows_f32(x, xt, n_rows, n_pad, D, c, r, rw, sroot, pt, nk, s1)


# --- the per-sample outputs of a scoring pass, shared by the Gaussian and t kernels

cdef inline void chunk_outputs(
    double *logpt,              # IN (K, n_pad) log pi_k + log p_k(x); SCRATCH after
    double *log_norm,           # SCRATCH (n_pad,)
    double *row_max,            # SCRATCH (n_pad,)
    Py_ssize_t n_rows,
    Py_ssize_t n_pad,
    Py_ssize_t K,
    double *log_norm_out,       # OUT (n_rows,) log p(x), or NULL
    double *resp_out,           # OUT (n_rows, K) p(k | x), or NULL
    Py_ssize_t *labels_out,     # OUT (n_rows,) arg-max component, or NULL
    double *log_prob_out,       # OUT (n_rows, K) the weighted log-densities, or NULL
) noexcept nogil:
    cdef Py_ssize_t i, k
    if log_prob_out != NULL:
        for i in range(n_rows):
            for k in range(K):
                log_prob_out[i * K + k] = logpt[k * n_pad + i]
    if labels_out != NULL:
        # the arg-max index lands in the (not yet needed) row_max column
        emfast_argmax_columns(logpt, n_pad, K, log_norm, row_max)
        for i in range(n_rows):
            labels_out[i] = <Py_ssize_t> row_max[i]
    if log_norm_out != NULL or resp_out != NULL:
        emfast_softmax_columns(logpt, n_pad, K, log_norm, row_max)
        if log_norm_out != NULL:
            for i in range(n_rows):
                log_norm_out[i] = log_norm[i]
        if resp_out != NULL:
            for i in range(n_rows):
                for k in range(K):
                    resp_out[i * K + k] = logpt[k * n_pad + i]
