# Declarations of the C helpers in src/ shared by the kernel modules.  Only
# extern declarations: cimporting this needs no runtime import.

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
