"""Input checks: every error names the argument and says what was wrong."""
import numbers
import sys

import numpy as np

_CHECK_ROWS = 1 << 16   # rows per finiteness check: bounded temporary memory
_FLOAT32_LIMIT = 1e20    # float32 squares of deviations overflow around here (3.4e38)


def _is_scipy_sparse(X):
    # X can only be a scipy.sparse container if scipy.sparse has been imported.
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def check_data(X, name="X", min_samples=1, n_features=None, dtype=None, owner="the model",
               allow_nan=False):
    """Return X as a C-contiguous float32/float64 2-D array, copying only if needed.

    float32 stays float32 and float64 stays float64; other real numeric dtypes
    (integers, booleans) become float64.  Read-only, big-endian, strided and
    Fortran-ordered arrays are accepted (the last three are copied).  The
    messages carry the phrases scikit-learn's own validation uses, so code
    matching them keeps working.  ``owner`` names the estimator in the
    feature-count message.  ``allow_nan`` lets NaN through (missing entries)
    and still rejects infinity.
    """
    if _is_scipy_sparse(X):
        raise TypeError(f"Sparse data was passed for {name}, but dense data is required. "
                        "Use '.toarray()' to convert to a dense numpy array.")
    if hasattr(X, "__dataframe__") or hasattr(X, "iloc"):
        X = X.to_numpy() if hasattr(X, "to_numpy") else np.asarray(X)
    try:
        X = np.asarray(X)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} could not be converted to a numeric array: {exc}") from exc
    if X.dtype.kind == "c":
        raise ValueError(f"Complex data not supported: {name} must hold real numbers; got "
                         f"dtype {X.dtype}.")
    if X.dtype.kind in "OUSVMm":
        try:
            X = X.astype(np.float64)
        except (TypeError, ValueError) as exc:
            # Keep the exception type numpy chose (TypeError for non-numbers, ValueError
            # for unparsable strings), as scikit-learn does.
            raise type(exc)(f"{name} must hold real numbers; got dtype {X.dtype} with "
                            f"values that are not numeric: {exc}") from exc
    if X.dtype.kind not in "fiub":
        raise ValueError(f"{name} must hold real numbers; got dtype {X.dtype}.")
    if X.ndim != 2:
        hint = (" Reshape your data either using array.reshape(-1, 1) if it has a single "
                "feature or array.reshape(1, -1) if it is a single sample." if X.ndim == 1
                else "")
        raise ValueError(f"Expected a 2-D array for {name} (n_samples, n_features); got "
                         f"{X.ndim}-D with shape {X.shape}.{hint}")
    if dtype is None:
        # Any byte order of float32/float64 keeps its precision (swapped below).
        dtype = X.dtype if X.dtype.kind == "f" and X.dtype.itemsize in (4, 8) else np.float64
    X = np.ascontiguousarray(X, dtype=np.dtype(dtype).newbyteorder("="))
    n_samples, n_feat = X.shape
    if n_samples < min_samples:
        raise ValueError(f"Found array with {n_samples} sample(s) (shape={X.shape}) while a "
                         f"minimum of {min_samples} is required ({name}).")
    if n_feat == 0:
        raise ValueError(f"Found array with 0 feature(s) (shape={X.shape}) while a minimum "
                         f"of 1 is required ({name}).")
    if n_features is not None and n_feat != n_features:
        raise ValueError(f"{name} has {n_feat} features, but {owner} is expecting "
                         f"{n_features} features as input.")
    for start in range(0, n_samples, _CHECK_ROWS):
        block = X[start:start + _CHECK_ROWS]
        if not (np.isfinite(block).all() or (allow_nan and not np.isinf(block).any())):
            what = "infinity" if allow_nan else "NaN or infinity"
            raise ValueError(f"{name} contains {what} (first at or after row {start}).")
        # float32 kernels square deviations in float32: beyond this they overflow
        if X.dtype == np.float32 and block.size and np.nanmax(np.abs(block)) > _FLOAT32_LIMIT:
            raise ValueError(
                f"{name} is float32 with values beyond {_FLOAT32_LIMIT:.0e} (first at or after "
                f"row {start}), whose squares overflow float32. Pass float64 data, or rescale.")
    return X


def check_sample_weight(sample_weight, n_samples, dtype):
    """Return non-negative, finite weights of shape (n_samples,) in X's dtype, or None."""
    if sample_weight is None:
        return None
    if isinstance(sample_weight, numbers.Number):
        sample_weight = np.full(n_samples, sample_weight)
    w = np.asarray(sample_weight)
    if w.dtype.kind not in "fiub":
        raise ValueError(f"sample_weight must hold real numbers; got dtype {w.dtype}.")
    if w.shape != (n_samples,):
        raise ValueError(f"sample_weight must have shape ({n_samples},) to match X; "
                         f"got {w.shape}.")
    w = np.ascontiguousarray(w, dtype=np.dtype(dtype).newbyteorder("="))
    if not np.isfinite(w).all():
        raise ValueError("sample_weight contains NaN or infinity.")
    if (w < 0).any():
        raise ValueError("sample_weight must be non-negative; found negative values.")
    if not w.sum() > 0:
        raise ValueError("sample_weight sums to zero: at least one sample needs positive weight.")
    return w


def as_real_array(array, name, dtype=np.float64):
    """A copy of ``array`` as real ``dtype``; strings, objects and complex values are refused."""
    try:
        raw = np.asarray(array)
        if raw.dtype.kind == "c":
            raise ValueError("complex values")
        return np.array(raw, dtype=dtype, copy=True)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must hold real numbers ({exc}).") from None


def check_shape(array, shape, name, dtype=np.float64, label=None):
    """Return ``array`` as a finite float64 array of exactly ``shape``.

    ``label`` is scikit-learn's name for the parameter ('weights', 'means',
    'full precision', ...): a wrong shape then gets scikit-learn's message,
    "The parameter '<label>' should have the shape of ...", followed by ``name``.
    """
    array = as_real_array(array, name, dtype)
    if array.shape != tuple(shape):
        if label is not None:
            raise ValueError(f"The parameter '{label}' should have the shape of {tuple(shape)}, "
                             f"but got {array.shape} ({name} must have shape {tuple(shape)}).")
        raise ValueError(f"{name} must have shape {tuple(shape)}; got {array.shape}.")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or infinity.")
    return array


def check_parameter(owner, name, value, kind, low, *, finite=False):
    """A constructor number: an int (``kind="int"``) or a real, at least ``low`` (and
    finite when ``finite``); the message is scikit-learn's."""
    ok_type = (isinstance(value, numbers.Integral) if kind == "int"
               else isinstance(value, numbers.Real)) and not isinstance(value, bool)
    if not (ok_type and value >= low) or (finite and not np.isfinite(value)):  # NaN fails
        noun = "an int" if kind == "int" else "a float"
        raise ValueError(f"The '{name}' parameter of {owner} must be {noun} in the range "
                         f"[{low}, inf). Got {value!r} instead.")
