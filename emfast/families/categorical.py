"""Categorical: integer codes per column, each column its own number of categories;
probabilities a list of D arrays (K, C_j); Dirichlet prior."""
import numbers

import numpy as np

from ._base import (BASE_NONE, FORBID_EQ, ONEHOT, ColumnLayout, LinearFamily, Natural,
                    check_hyper, check_prior_keys, first_bad, finite_or_forbid, forbid_arrays,
                    _check_keys)


MAX_CODE = 2 ** 31 - 2     # the largest code: category counts stay 32-bit integers


class Categorical(LinearFamily):
    """Independent categorical columns (latent class analysis).

    ``params_ = {"probs": [P_0, ..., P_{D-1}]}`` with ``P_j`` of shape (K, C_j),
    rows summing to 1.  Data: integer codes 0 .. C_j - 1 (NaN marks a missing
    entry).  ``n_categories``: None (inferred at fit as the largest code of each
    column plus one), an int for every column, or one int per column.  Prior
    (MAP-EM): a symmetric Dirichlet ``{"concentration": c >= 1}`` on each
    column's probabilities, mode ``(counts + c - 1) / (sum r + C_j (c - 1))``.
    A category a component never saw has probability 0 (legal): that
    component's log-density is -inf where the column takes it.  So is a code
    at or beyond a column's fitted number of categories in data scored after
    a fit that inferred them (no component saw it): every component's
    log-density is -inf there, ``score_samples`` is -inf and the row's
    responsibilities are 0.  Declare ``n_categories`` to have such codes
    refused with a ValueError instead.
    """

    name = "categorical"
    params_keys = ("probs",)

    def __init__(self, n_categories=None):
        self.n_categories = n_categories

    def get_config(self):
        n = self.n_categories
        return {"n_categories": None if n is None else
                int(n) if isinstance(n, numbers.Integral) else [int(v) for v in n]}

    def _declared(self, n_features):
        n = self.n_categories
        if n is None:
            return None
        sizes = np.broadcast_to(np.asarray(n), (n_features,)) if np.ndim(n) == 0 else np.asarray(n)
        if (sizes.shape != (n_features,) or sizes.dtype.kind not in "iu"
                or not (sizes >= 1).all()):
            raise ValueError(f"n_categories of the categorical family must be None, an int >= 1 "
                             f"or {n_features} ints >= 1 (one per column); got {n!r}.")
        return sizes.astype(np.intp)

    def validate(self, block, first_row=0, columns=None):
        observed = ~np.isnan(block)
        with np.errstate(invalid="ignore"):
            bad = observed & ~((block >= 0) & (block == np.floor(block)) & np.isfinite(block))
        first_bad(block, bad, first_row, columns,
                  "X column {column} has the value {value!r} at row {row}: "
                  "categorical codes must be integers >= 0 (NaN marks a missing entry).")
        # the kernels index categories with 32-bit integers
        first_bad(block, observed & (block >= MAX_CODE + 1), first_row, columns,
                  "X column {column} has the code {value!r} at row {row}: categorical codes "
                  f"must be at most {MAX_CODE}.")
        sizes = self._declared(block.shape[1])
        if sizes is not None:
            first_bad(block, observed & (block >= sizes), first_row, columns,
                      "X column {column} has the code {value!r} at row {row}, beyond "
                      "n_categories (codes must be below the column's number of categories).")
        if block.shape[0] == 0:
            return np.full(block.shape[1], -1, dtype=np.intp)
        top = np.where(observed, block, -1).max(axis=0)
        return top.astype(np.intp)

    def merge_extents(self, a, b):
        return np.maximum(a, b)

    def layout(self, n_features, extent=None, params=None):
        sizes = self._declared(n_features)
        if params is not None:
            sizes = np.array([p.shape[1] for p in params["probs"]], dtype=np.intp)
        elif sizes is None:
            sizes = np.maximum(np.asarray(extent, dtype=np.intp) + 1, 1)
        return ColumnLayout(np.full(n_features, ONEHOT, dtype=np.intp), sizes.astype(np.intp),
                            np.full(n_features, BASE_NONE, dtype=np.intp))

    def natural(self, params, layout):
        # all columns' probabilities as one (K, F) table: one log and one scan for
        # zeros per iteration, not one per column (the per-column calls cost 7% of a
        # latent class iteration at 20 columns)
        probs = params["probs"]
        with np.errstate(divide="ignore"):
            logs = np.log(np.hstack(probs))
        rows = []
        coef = finite_or_forbid(logs, rows, FORBID_EQ, 0.0)
        forbid = []
        if rows:
            (kfo, _), = rows            # (k, feature, op): forbid x_j == c in component k
            sizes = np.array([p.shape[1] for p in probs], dtype=np.intp)
            column = np.repeat(np.arange(len(probs), dtype=np.intp), sizes)[kfo[:, 1]]
            category = kfo[:, 1] - (np.cumsum(sizes) - sizes)[column]
            forbid.append((np.stack([kfo[:, 0], column, kfo[:, 2]], axis=1),
                           category.astype(np.float64)))
        K = probs[0].shape[0]
        return Natural(coef, np.zeros((K, len(probs))), *forbid_arrays(forbid))

    def m_step(self, s, observed, prior, layout):
        c = 1.0 if prior is None else prior["concentration"]
        probs = []
        for j, features in enumerate(layout.feature_slices()):
            size = features.stop - features.start
            probs.append((s[:, features] + (c - 1.0))
                         / (observed[:, j:j + 1] + size * (c - 1.0)))
        return {"probs": probs}

    def check_prior(self, prior):
        if prior is None:
            return None
        check_prior_keys(prior, ("concentration",), self.name)
        return {"concentration": check_hyper(prior, "concentration", 1.0, 1.0, self.name)}

    def log_prior(self, params, prior):
        if prior is None or prior["concentration"] == 1:
            return 0.0
        with np.errstate(divide="ignore"):
            return float(sum(np.sum((prior["concentration"] - 1.0) * np.log(p))
                             for p in params["probs"]))

    def check_params(self, params, n_components, n_features):
        _check_keys(params, self.params_keys, self.name)
        probs = params["probs"]
        if not isinstance(probs, (list, tuple)) or len(probs) != n_features:
            raise ValueError(f"params_init['probs'] of the categorical family must be a list of "
                             f"{n_features} arrays (one per column) of shape (n_components, "
                             f"n_categories_j); got {type(probs).__name__} of length "
                             f"{len(probs) if hasattr(probs, '__len__') else '?'}.")
        sizes = self._declared(n_features)
        checked = []
        for j, p in enumerate(probs):
            p = np.array(p, dtype=np.float64)
            if p.ndim != 2 or p.shape[0] != n_components or (
                    sizes is not None and p.shape[1] != sizes[j]):
                want = f"({n_components}, {sizes[j] if sizes is not None else 'C_j'})"
                raise ValueError(f"params_init['probs'][{j}] must have shape {want}; got "
                                 f"{p.shape}.")
            if not (np.isfinite(p).all() and (p >= 0).all()
                    and np.allclose(p.sum(axis=1), 1.0, rtol=0, atol=1e-6)):
                raise ValueError(f"params_init['probs'][{j}] (column {j}) must hold "
                                 f"probabilities >= 0 with rows summing to 1; got row sums "
                                 f"{p.sum(axis=1).round(6).tolist()}.")
            checked.append(p)
        return {"probs": checked}

    def n_parameters(self, params):
        return sum(p.shape[0] * (p.shape[1] - 1) for p in params["probs"])

    def sample(self, params, labels, random_state):
        out = np.empty((len(labels), len(params["probs"])))
        for j, p in enumerate(params["probs"]):
            cumulative = np.cumsum(p[labels], axis=1)
            u = random_state.uniform(size=(len(labels), 1)) * cumulative[:, -1:]
            out[:, j] = (u >= cumulative).sum(axis=1)
        return out
