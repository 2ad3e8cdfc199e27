"""Independent: mixed types, blocks of columns each with its own family."""

import numpy as np

from ._base import ColumnLayout, LinearFamily, Natural, forbid_arrays, get_family


class Independent(LinearFamily):
    """Blocks of columns, each its own family, independent given the component.

    ``Independent([(columns, family), ...])``: ``columns`` a sequence of column
    indices of X, ``family`` a family object or name; together the blocks must
    cover every column of X exactly once.  The log-density is the sum of the
    blocks' log-densities and the statistics are the blocks' statistics, so
    every driver runs it like any other family.  ``params_ = {"blocks": [p_0,
    p_1, ...]}`` with ``p_b`` block b's parameters, and the prior is
    ``{"blocks": [prior_0, ...]}`` (None entries: maximum likelihood).
    """

    name = "independent"
    params_keys = ("blocks",)

    def __init__(self, blocks):
        self.blocks = blocks
        self._parts = _check_blocks(blocks)

    def get_config(self):
        return {"blocks": [[[int(c) for c in cols],
                            {"family": fam.name, "config": fam.get_config()}]
                           for cols, fam in self._parts]}

    @classmethod
    def from_config(cls, config):
        return cls([(cols, get_family(spec["family"], spec["config"]))
                    for cols, spec in config["blocks"]])

    def _columns_of(self, n_features):
        covered = np.concatenate([cols for cols, _ in self._parts])
        if covered.max() >= n_features or len(covered) != n_features:
            raise ValueError(f"The blocks of the independent family cover the columns "
                             f"{sorted(covered.tolist())}; X has {n_features} columns and "
                             "every column must be in exactly one block.")
        return [cols for cols, _ in self._parts]

    def validate(self, block, first_row=0, columns=None):
        columns_of = self._columns_of(block.shape[1])
        extents = []
        for cols, (_, fam) in zip(columns_of, self._parts):
            outer = cols if columns is None else np.asarray(columns)[cols]
            extents.append(fam.validate(np.ascontiguousarray(block[:, cols]), first_row, outer))
        return extents

    def merge_extents(self, a, b):
        return [fam.merge_extents(x, y) for (_, fam), x, y in zip(self._parts, a, b)]

    def layout(self, n_features, extent=None, params=None):
        columns_of = self._columns_of(n_features)
        parts = [fam.layout(len(cols), None if extent is None else extent[b],
                            None if params is None else params["blocks"][b])
                 for b, (cols, (_, fam)) in enumerate(zip(columns_of, self._parts))]
        return ColumnLayout.concat(parts, columns_of, n_features)

    def natural(self, params, layout):
        K = len(np.asarray(_first_array(params)))
        coef = np.zeros((K, layout.n_base))
        per_column = np.zeros((K, layout.n_columns))
        forbid = []
        for (cols, fam), p in zip(self._parts, params["blocks"]):
            nat = fam.natural(p, layout.select(cols))
            coef[:, layout.feature_index(cols)] = nat.coef
            per_column[:, cols] = nat.per_column
            if len(nat.forbid):
                rows = nat.forbid.copy()
                rows[:, 1] = cols[rows[:, 1]]
                forbid.append((rows, nat.forbid_value))
        return Natural(coef, per_column, *forbid_arrays(forbid))

    def m_step(self, s, observed, prior, layout):
        priors = [None] * len(self._parts) if prior is None else prior["blocks"]
        return {"blocks": [fam.m_step(s[:, layout.feature_index(cols)], observed[:, cols],
                                      block_prior, layout.select(cols))
                           for (cols, fam), block_prior in zip(self._parts, priors)]}

    def check_prior(self, prior):
        if prior is None:
            return None
        if (not isinstance(prior, dict) or set(prior) != {"blocks"}
                or len(prior["blocks"]) != len(self._parts)):
            raise ValueError(f"prior for the independent family must be None or "
                             f"{{'blocks': [...]}} with one entry (a prior or None) per block "
                             f"({len(self._parts)}); got {prior!r}.")
        return {"blocks": [fam.check_prior(p) for (_, fam), p in zip(self._parts, prior["blocks"])]}

    def log_prior(self, params, prior):
        if prior is None:
            return 0.0
        return float(sum(fam.log_prior(p, q) for (_, fam), p, q
                         in zip(self._parts, params["blocks"], prior["blocks"])))

    def check_params(self, params, n_components, n_features):
        columns_of = self._columns_of(n_features)
        if (not isinstance(params, dict) or set(params) != {"blocks"}
                or len(params["blocks"]) != len(self._parts)):
            raise ValueError(f"params_init for the independent family must be "
                             f"{{'blocks': [...]}} with one parameter dict per block "
                             f"({len(self._parts)}).")
        return {"blocks": [fam.check_params(p, n_components, len(cols))
                           for cols, (_, fam), p in zip(columns_of, self._parts,
                                                        params["blocks"])]}

    def n_parameters(self, params):
        return sum(fam.n_parameters(p) for (_, fam), p in zip(self._parts, params["blocks"]))

    def sample(self, params, labels, random_state):
        n_features = sum(len(cols) for cols, _ in self._parts)
        out = np.empty((len(labels), n_features))
        for (cols, fam), p in zip(self._parts, params["blocks"]):
            out[:, cols] = fam.sample(p, labels, random_state)
        return out


def _first_array(params):
    """Any parameter array (its first axis is the number of components)."""
    value = params
    while isinstance(value, (dict, list, tuple)):
        value = next(iter(value.values())) if isinstance(value, dict) else value[0]
    return value


def _check_blocks(blocks):
    if not isinstance(blocks, (list, tuple)) or not blocks:
        raise ValueError("Independent needs a non-empty list of (columns, family) pairs; got "
                         f"{blocks!r}.")
    parts, seen = [], set()
    for b, item in enumerate(blocks):
        if not (isinstance(item, (list, tuple)) and len(item) == 2):
            raise ValueError(f"Independent block {b} must be a (columns, family) pair; got "
                             f"{item!r}.")
        cols, fam = item
        cols = np.atleast_1d(np.asarray(cols))
        if (cols.ndim != 1 or cols.size == 0 or cols.dtype.kind not in "iu"
                or (cols < 0).any()):
            raise ValueError(f"Independent block {b}: columns must be a non-empty sequence of "
                             f"column indices >= 0; got {item[0]!r}.")
        repeated = seen.intersection(cols.tolist())
        if repeated or len(set(cols.tolist())) != cols.size:
            raise ValueError(f"Independent block {b}: columns {sorted(repeated) or cols.tolist()}"
                             " appear more than once; every column belongs to one block.")
        seen.update(cols.tolist())
        fam = get_family(fam)
        if not isinstance(fam, LinearFamily):
            raise ValueError(f"Independent block {b}: the {fam.name} family cannot be a block.")
        parts.append((cols.astype(np.intp), fam))
    return parts
