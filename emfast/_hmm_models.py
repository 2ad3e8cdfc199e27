"""hmmlearn's discrete-emission model classes on emfast's generic HMM.

Thin subclasses of :class:`emfast.HMM` that name their family and map
hmmlearn's parameters, attributes, initialisation and MAP priors onto it:
``CategoricalHMM`` (symbols, ``emissionprob_``) on the categorical family,
``PoissonHMM`` (counts, ``lambdas_``) on the Poisson family, and
``MultinomialHMM`` (counts of ``n_trials`` draws, ``emissionprob_``) also on
the Poisson family: with rates ``p_k`` (summing to 1 over the columns) the
Poisson log-density is the multinomial one less ``1 + log n_t!``, a term the
same in every state, which the model adds back.  The E-step and
the statistics are the generic model's (the family's compiled pass and the
compiled forward-backward); the emission M-steps below are hmmlearn's
formulas on those statistics.
"""
import numbers

import numpy as np
from scipy.special import gammaln

from ._base import check_random_state
from ._hmm_common import check_shape_finite, prior
from ._hmm_family import HMM
from ._validation import check_data
from .families import Categorical, Poisson


def _emission_random_state(seed, chain_random_state):
    """hmmlearn's generator for the emissions' initialisation: a fresh one from an int seed
    (or None), the chain's own when ``random_state`` is a generator."""
    if isinstance(seed, np.random.RandomState):
        return chain_random_state
    return check_random_state(seed)


def _check_rows_sum_to_one(probs):
    sums = probs.sum(axis=1)
    bad = np.flatnonzero(~np.isclose(sums, 1.0))
    if (probs < 0).any() or bad.size:
        which = f"row {bad[0]} sums to {sums[bad[0]]:.6g}" if bad.size else "negative entry"
        raise ValueError(f"emissionprob_ rows must be non-negative and sum to 1; {which}.")


def _normalised_rows(values, old):
    """Rows divided by their sums; a row summing to 0 keeps ``old`` (no state mass)."""
    sums = values.sum(axis=1)
    out = np.array(old, dtype=np.float64)
    seen = sums > 0
    out[seen] = values[seen] / sums[seen, None]
    return out


class CategoricalHMM(HMM):
    """Hidden Markov model with categorical (discrete symbol) emissions.

    hmmlearn's :class:`hmmlearn.hmm.CategoricalHMM` on emfast's kernels: the
    same parameters, defaults, attributes and MAP prior, so code switches by
    changing the import.  ``X`` has shape ``(n_samples, 1)`` and holds the
    symbols ``0 .. n_features - 1`` (integers; floats with integral values
    are accepted too).

    Parameters
    ----------
    n_components : int, default=1
    startprob_prior, transmat_prior : float or array-like, default=1.0
        Dirichlet priors of the chain (as hmmlearn).
    emissionprob_prior : float or array-like of shape (n_components, n_features), default=1.0
        Dirichlet prior on each row of ``emissionprob_``: the M-step is
        ``max(emissionprob_prior - 1 + counts, 0)``, normalised.
    n_features : int, default=None
        Number of symbols; None: the largest symbol seen by ``fit`` plus one
        (set on the estimator, as hmmlearn), or ``emissionprob_.shape[1]``.
    algorithm, random_state, n_iter, tol, verbose, implementation, n_threads
        As :class:`emfast.GaussianHMM`.
    params, init_params : str, default='ste'
        's' startprob, 't' transmat, 'e' emissionprob.  'e' initialises
        ``emissionprob_`` with uniform random rows, normalised (hmmlearn's).

    Attributes
    ----------
    startprob_, transmat_, monitor_, lower_bounds_, lower_bound_, n_iter_, converged_
    emissionprob_ : ndarray of shape (n_components, n_features)

    Notes
    -----
    A state without posterior mass keeps its row of ``emissionprob_``
    (hmmlearn leaves a row of zeros when the prior adds nothing).
    """

    _codes = {"s": "startprob", "t": "transmat", "e": "emissionprob"}
    _emission_code = "e"
    _emission_attribute = "emissionprob_"
    n_features = None       # a constructor parameter here (not the generic read-only one)

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0, *,
                 emissionprob_prior=1.0, n_features=None, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="ste",
                 init_params="ste", implementation="log", n_threads=None):
        self._set_options(locals())

    def _n_symbols(self):
        if self.n_features is not None:
            if isinstance(self.n_features, bool) or \
                    not isinstance(self.n_features, numbers.Integral) or self.n_features < 1:
                raise ValueError(f"The 'n_features' parameter of CategoricalHMM must be an int "
                                 f">= 1 (the number of symbols). Got {self.n_features!r} "
                                 "instead.")
            return int(self.n_features)
        if hasattr(self, "emissionprob_"):
            return np.shape(np.atleast_2d(self.emissionprob_))[1]
        return None

    def _family(self):
        return Categorical(n_categories=self._n_symbols())

    def _emission_prior(self, family):
        return None

    def _family_data(self, X, family, n_features=None):
        X = check_data(X, owner="CategoricalHMM")
        if X.shape[1] != 1:
            raise ValueError(f"X must have shape (n_samples, 1): one symbol per row; got "
                             f"{X.shape}.")
        symbols = X[:, 0]
        bad = np.flatnonzero(~((symbols >= 0) & (symbols == np.floor(symbols))))
        if bad.size:
            raise ValueError(f"X holds symbols, integers >= 0; X[{bad[0]}] is "
                             f"{float(symbols[bad[0]]):g}.")
        n_symbols = self._n_symbols()
        if n_symbols is None:
            # hmmlearn sets n_features from the data
            n_symbols = int(symbols.max()) + 1 if symbols.size else 1
        if self.n_features is None:
            self.n_features = n_symbols
            family = self._family()
        too_large = np.flatnonzero(symbols >= n_symbols)
        if too_large.size:
            raise ValueError(f"X must hold symbols 0 .. {n_symbols - 1} (n_features={n_symbols}); "
                             f"X[{too_large[0]}] is {int(symbols[too_large[0]])}.")
        return X, family.validate(X), False

    def _get_emission(self):
        return {"probs": [self.emissionprob_]}

    def _set_emission(self, emission):
        self.emissionprob_ = emission["probs"][0]

    def _checked_emission(self, family, n_features):
        K, n_symbols = self.n_components, self._n_symbols()
        probs = np.array(np.atleast_2d(self.emissionprob_), dtype=np.float64)
        check_shape_finite("emissionprob_", probs, (K, n_symbols),
                           f"n_components={K}, n_features={n_symbols}")
        _check_rows_sum_to_one(probs)
        return {"probs": [probs]}

    def _initial_emission(self, X, family, family_pass, random_state):
        random_state = _emission_random_state(self.random_state, random_state)
        probs = random_state.rand(self.n_components, self._n_symbols())
        return {"probs": [probs / probs.sum(axis=1, keepdims=True)]}

    def _emission_m_step(self, stats, family, family_pass, old, prior_unused):
        K, n_symbols = self.n_components, self._n_symbols()
        counts = stats.s[:, :n_symbols]
        weights = prior("emissionprob_prior", self.emissionprob_prior, (K, n_symbols))
        return {"probs": [_normalised_rows(np.maximum(weights - 1.0 + counts, 0.0),
                                           old["probs"][0])]}

    def _fitted_n_features(self):
        return 1

    def _sample_n_features(self):
        return 1

    def _n_emission_parameters(self, family):
        return self.n_components * (self._n_symbols() - 1)

    def _emission_sample(self, family, emission, states, rng):
        return family.sample(emission, states, rng).astype(int)


class _CountColumnsHMM(HMM):
    """What PoissonHMM and MultinomialHMM share: count columns read by the Poisson
    family's pass, the rates stored in ``_emission_attribute`` (K, n_features)."""

    @property
    def n_features(self):
        """Number of count columns (hmmlearn's name)."""
        if hasattr(self, "n_features_in_"):
            return self.n_features_in_
        if hasattr(self, self._emission_attribute):
            return np.shape(np.atleast_2d(getattr(self, self._emission_attribute)))[1]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute 'n_features'")

    def _family(self):
        return Poisson()

    def _emission_prior(self, family):
        return None

    def _get_emission(self):
        return {"rates": getattr(self, self._emission_attribute)}

    def _set_emission(self, emission):
        setattr(self, self._emission_attribute, emission["rates"])

    def _fitted_n_features(self):
        return self.n_features if (hasattr(self, "n_features_in_")
                                   or hasattr(self, self._emission_attribute)) else None

    def _sample_n_features(self):
        return self.n_features

    def _emission_sample(self, family, emission, states, rng):
        return family.sample(emission, states, rng).astype(int)


class PoissonHMM(_CountColumnsHMM):
    """Hidden Markov model with independent Poisson count emissions.

    hmmlearn's :class:`hmmlearn.hmm.PoissonHMM` on emfast's kernels (same
    parameters, defaults, attributes, initialisation and prior).  ``X``
    holds counts (integers >= 0), one column per feature.

    Parameters
    ----------
    n_components : int, default=1
    startprob_prior, transmat_prior : float or array-like, default=1.0
    lambdas_prior, lambdas_weight : float or array-like, default=0.0
        hmmlearn's gamma prior on the rates (alpha, beta): the M-step is
        hmmlearn's ``(lambdas_prior + n * mean) / (lambdas_weight + n)``, with
        ``mean`` a state's posterior-weighted mean count and ``n`` the total
        posterior mass (hmmlearn's choice; the arrays broadcast as there).
    algorithm, random_state, n_iter, tol, verbose, implementation, n_threads
        As :class:`emfast.GaussianHMM`.
    params, init_params : str, default='stl'
        's' startprob, 't' transmat, 'l' lambdas.  'l' draws the rates from a
        gamma matching the data's mean and variance (hmmlearn's).

    Attributes
    ----------
    startprob_, transmat_, monitor_, lower_bounds_, lower_bound_, n_iter_, converged_
    lambdas_ : ndarray of shape (n_components, n_features)
    n_features : int

    Notes
    -----
    A state without posterior mass keeps its rates (hmmlearn divides by zero).
    """

    _codes = {"s": "startprob", "t": "transmat", "l": "lambdas"}
    _emission_code = "l"
    _emission_attribute = "lambdas_"

    def __init__(self, n_components=1, startprob_prior=1.0, transmat_prior=1.0,
                 lambdas_prior=0.0, lambdas_weight=0.0, algorithm="viterbi",
                 random_state=None, n_iter=10, tol=1e-2, verbose=False, params="stl",
                 init_params="stl", implementation="log", n_threads=None):
        self._set_options(locals())

    def _checked_emission(self, family, n_features):
        K = self.n_components
        rates = np.array(np.atleast_2d(self.lambdas_), dtype=np.float64)
        check_shape_finite("lambdas_", rates, (K, n_features),
                           f"n_components={K}, {n_features} features")
        if (rates < 0).any():
            k, j = np.argwhere(rates < 0)[0]
            raise ValueError(f"lambdas_ must be >= 0; lambdas_[{k}, {j}] is {float(rates[k, j])!r}.")
        return {"rates": rates}

    def _initial_emission(self, X, family, family_pass, random_state):
        random_state = _emission_random_state(self.random_state, random_state)
        mean, var = X.mean(), X.var()
        if not (mean > 0 and var > 0):
            raise ValueError("Initialising lambdas_ by the method of moments needs counts with "
                             f"a positive mean and variance; got mean {mean}, variance {var}. "
                             "Set lambdas_ and leave 'l' out of init_params.")
        shape = (self.n_components, X.shape[1])
        return {"rates": random_state.gamma(shape=mean ** 2 / var, scale=var / mean,
                                            size=shape)}

    def _emission_m_step(self, stats, family, family_pass, old, prior_unused):
        post, obs = stats.nk, stats.s[:, :old["rates"].shape[1]]
        alphas = np.asarray(self.lambdas_prior, dtype=np.float64)
        betas = np.asarray(self.lambdas_weight, dtype=np.float64)
        n = post.sum()
        seen = post > 0
        y_bar = np.zeros_like(obs)
        y_bar[seen] = obs[seen] / post[seen, None]
        rates = np.broadcast_to((alphas + n * y_bar) / (betas + n), obs.shape).copy()
        rates[~seen] = old["rates"][~seen]
        return {"rates": rates}

    def _n_emission_parameters(self, family):
        return int(np.size(self.lambdas_))


class MultinomialHMM(_CountColumnsHMM):
    """Hidden Markov model with multinomial emissions (counts of ``n_trials`` draws).

    hmmlearn's :class:`hmmlearn.hmm.MultinomialHMM` (the multinomial one of
    hmmlearn >= 0.3) on emfast's kernels.  Row ``t`` of ``X`` holds the
    counts of each of ``n_features`` outcomes in ``n_t`` draws, with
    ``log p(x_t | k) = log n_t! - sum_j log x_tj! + sum_j x_tj log p_kj``.

    Parameters
    ----------
    n_components : int, default=1
    n_trials : int, array-like of int of shape (n_samples,) or None, default=None
        Draws per row; None: set from the data's row sums by ``fit`` (as
        hmmlearn).  Sampling needs a single number.
    startprob_prior, transmat_prior : float or array-like, default=1.0
    algorithm, random_state, n_iter, tol, verbose, implementation, n_threads
        As :class:`emfast.GaussianHMM`.
    params, init_params : str, default='ste'
        's' startprob, 't' transmat, 'e' emissionprob (uniform random rows,
        normalised, as hmmlearn).

    Attributes
    ----------
    startprob_, transmat_, monitor_, lower_bounds_, lower_bound_, n_iter_, converged_
    emissionprob_ : ndarray of shape (n_components, n_features)
    n_features : int
    """

    _codes = {"s": "startprob", "t": "transmat", "e": "emissionprob"}
    _emission_code = "e"
    _emission_attribute = "emissionprob_"

    def __init__(self, n_components=1, n_trials=None, startprob_prior=1.0,
                 transmat_prior=1.0, algorithm="viterbi", random_state=None, n_iter=10,
                 tol=1e-2, verbose=False, params="ste", init_params="ste",
                 implementation="log", n_threads=None):
        self._set_options(locals())

    def _family_data(self, X, family, n_features=None):
        X, extent, missing = super()._family_data(X, family, n_features)
        totals = X.sum(axis=1)
        if self.n_trials is None:
            self.n_trials = totals.astype(np.int64)       # hmmlearn sets it from the data
        trials = np.broadcast_to(np.asarray(self.n_trials), totals.shape) \
            if np.ndim(self.n_trials) == 0 or np.shape(self.n_trials) == totals.shape else None
        if trials is None:
            raise ValueError(f"n_trials must be an int or hold one int per row of X "
                             f"({len(totals)}); got shape {np.shape(self.n_trials)}.")
        bad = np.flatnonzero(totals != trials)
        if bad.size:
            raise ValueError(f"Each row of X must hold counts summing to n_trials; row "
                             f"{bad[0]} sums to {float(totals[bad[0]]):g}, n_trials is "
                             f"{float(trials[bad[0]]):g}.")
        return X, extent, missing

    def _row_log_offset(self, X):
        return 1.0 + gammaln(X.sum(axis=1, dtype=np.float64) + 1.0)

    def _checked_emission(self, family, n_features):
        K = self.n_components
        probs = np.array(np.atleast_2d(self.emissionprob_), dtype=np.float64)
        check_shape_finite("emissionprob_", probs, (K, n_features),
                           f"n_components={K}, {n_features} outcomes")
        _check_rows_sum_to_one(probs)
        return {"rates": probs}

    def _initial_emission(self, X, family, family_pass, random_state):
        random_state = _emission_random_state(self.random_state, random_state)
        probs = random_state.rand(self.n_components, X.shape[1])
        return {"rates": probs / probs.sum(axis=1, keepdims=True)}

    def _emission_m_step(self, stats, family, family_pass, old, prior_unused):
        obs = stats.s[:, :old["rates"].shape[1]]
        return {"rates": _normalised_rows(obs, old["rates"])}

    def _n_emission_parameters(self, family):
        return self.n_components * (self.n_features - 1)

    def _emission_sample(self, family, emission, states, rng):
        if self.n_trials is None:
            raise ValueError("For sampling, n_trials must be set (an int).")
        trials = np.unique(np.asarray(self.n_trials))
        if trials.size != 1:
            raise ValueError("For sampling, a single n_trials must be given; got "
                             f"{trials.size} different values.")
        probs = emission["rates"]
        X = np.empty((len(states), probs.shape[1]), dtype=int)
        for k in range(self.n_components):
            rows = np.flatnonzero(states == k)
            X[rows] = rng.multinomial(int(trials[0]), probs[k] / probs[k].sum(), size=rows.size)
        return X
