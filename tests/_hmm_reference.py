"""Pure-numpy reference for Gaussian hidden Markov models (test oracle).

Written for clarity, not speed: log-space forward-backward with scipy's
``logsumexp`` one row at a time, Viterbi by dynamic programming, and a
Baum-Welch M-step computed from the posteriors and the data directly, with
hmmlearn's MAP priors.  ``brute_force`` enumerates every state path of a tiny
problem and is the check on the recursions themselves.

Conventions follow hmmlearn: ``covariances`` are in the layout of the
covariance type (spherical (K,), diag (K, D), full (K, D, D), tied (D, D)),
and the log-likelihood history of ``baum_welch`` is the total log-likelihood
under the parameters each iteration started from.
"""
import itertools

import numpy as np
from _reference import compute_precision_cholesky, estimate_log_gaussian_prob
from scipy.special import logsumexp

PRIOR_DEFAULTS = {"startprob_prior": 1.0, "transmat_prior": 1.0, "means_prior": 0.0,
                  "means_weight": 0.0, "covars_prior": 1e-2, "covars_weight": 1.0}


def emission_log_prob(X, means, covariances, covariance_type):
    """log N(x_t | k) for every row and state, shape (N, K)."""
    prec_chol = compute_precision_cholesky(covariances, covariance_type)
    return estimate_log_gaussian_prob(X, means, prec_chol, covariance_type)


def split(array, lengths):
    """The sequences of a concatenated array."""
    return np.split(array, np.cumsum(lengths)[:-1])


def _log(a):
    with np.errstate(divide="ignore"):
        return np.log(np.asarray(a, dtype=np.float64))


def forward_backward(startprob, transmat, log_b):
    """One sequence in log-space.

    Returns
    -------
    loglik : float
    posteriors : ndarray of shape (T, K)
    xi : ndarray of shape (K, K)
        Expected transition counts, summed over t.
    """
    T, K = log_b.shape
    log_start, log_trans = _log(startprob), _log(transmat)
    log_alpha = np.empty((T, K))
    log_alpha[0] = log_start + log_b[0]
    for t in range(1, T):
        log_alpha[t] = logsumexp(log_alpha[t - 1][:, None] + log_trans, axis=0) + log_b[t]
    log_beta = np.zeros((T, K))
    for t in range(T - 2, -1, -1):
        log_beta[t] = logsumexp(log_trans + log_b[t + 1] + log_beta[t + 1], axis=1)
    loglik = logsumexp(log_alpha[-1])
    posteriors = np.exp(log_alpha + log_beta - loglik)
    xi = np.zeros((K, K))
    for t in range(T - 1):
        xi += np.exp(log_alpha[t][:, None] + log_trans + log_b[t + 1] + log_beta[t + 1]
                     - loglik)
    return loglik, posteriors, xi


def viterbi(startprob, transmat, log_b):
    """Most probable path of one sequence (first state on ties) and its log-probability."""
    T, K = log_b.shape
    log_trans = _log(transmat)
    delta = _log(startprob) + log_b[0]
    back = np.zeros((T, K), dtype=int)
    for t in range(1, T):
        scores = delta[:, None] + log_trans          # (from, to)
        back[t] = scores.argmax(axis=0)
        delta = scores.max(axis=0) + log_b[t]
    path = np.empty(T, dtype=int)
    path[-1] = delta.argmax()
    for t in range(T - 1, 0, -1):
        path[t - 1] = back[t, path[t]]
    return float(delta.max()), path


def viterbi_sequences(startprob, transmat, log_b, lengths):
    """Viterbi of every sequence: the summed log-probability and the concatenated paths."""
    best, paths = 0.0, []
    for lb in split(log_b, lengths):
        value, path = viterbi(startprob, transmat, lb)
        best += value
        paths.append(path)
    return best, np.concatenate(paths)


def brute_force(startprob, transmat, log_b):
    """Forward-backward and Viterbi by enumerating all K**T state paths.

    Returns
    -------
    loglik, posteriors (T, K), xi (K, K), best_logprob, best_path (T,)
    """
    T, K = log_b.shape
    paths = np.array(list(itertools.product(range(K), repeat=T)))
    log_p = _log(startprob)[paths[:, 0]] + log_b[0, paths[:, 0]]
    for t in range(1, T):
        log_p = (log_p + _log(transmat)[paths[:, t - 1], paths[:, t]]
                 + log_b[t, paths[:, t]])
    loglik = logsumexp(log_p)
    weights = np.exp(log_p - loglik)
    posteriors = np.zeros((T, K))
    xi = np.zeros((K, K))
    for t in range(T):
        np.add.at(posteriors[t], paths[:, t], weights)
        if t + 1 < T:
            np.add.at(xi, (paths[:, t], paths[:, t + 1]), weights)
    best = int(np.argmax(log_p))
    return loglik, posteriors, xi, float(log_p[best]), paths[best]


def e_step(X, lengths, startprob, transmat, means, covariances, covariance_type):
    """Forward-backward over all sequences.

    Returns
    -------
    loglik : float
        Summed over sequences.
    posteriors : ndarray of shape (N, K)
    start : ndarray of shape (K,)
        Posteriors of the first rows, summed.
    trans : ndarray of shape (K, K)
        Expected transition counts.
    """
    log_b = emission_log_prob(X, means, covariances, covariance_type)
    return e_step_log_b(log_b, lengths, startprob, transmat)


def e_step_log_b(log_b, lengths, startprob, transmat):
    """Forward-backward over all sequences from emission log-densities (N, K)
    (returns as ``e_step``)."""
    K = len(startprob)
    loglik, start, trans, posteriors = 0.0, np.zeros(K), np.zeros((K, K)), []
    for lb in split(log_b, lengths):
        ll, post, xi = forward_backward(startprob, transmat, lb)
        loglik += ll
        start += post[0]
        trans += xi
        posteriors.append(post)
    return loglik, np.concatenate(posteriors), start, trans


def m_step(X, posteriors, start, trans, startprob, transmat, means, covariances,
           covariance_type, params="stmc", **priors):
    """hmmlearn's MAP updates, from the posteriors and the data directly."""
    p = dict(PRIOR_DEFAULTS, **priors)
    X = np.asarray(X, dtype=np.float64)
    K, D = means.shape
    if "s" in params:
        new = np.maximum(p["startprob_prior"] - 1 + start, 0)
        new = np.where(startprob == 0, 0, new)
        startprob = new / new.sum()
    if "t" in params:
        new = np.maximum(p["transmat_prior"] - 1 + trans, 0)
        new = np.where(transmat == 0, 0, new)
        transmat = new / new.sum(axis=1, keepdims=True)
    post = posteriors.sum(axis=0)
    mw = np.broadcast_to(np.asarray(p["means_weight"], dtype=float), (K,))
    mp = np.broadcast_to(np.asarray(p["means_prior"], dtype=float), (K, D))
    if "m" in params:
        means = (mw[:, None] * mp + posteriors.T @ X) / (mw + post)[:, None]
    if "c" in params:
        c_n = np.empty((K, D, D))
        for k in range(K):
            diff = X - means[k]
            c_n[k] = ((posteriors[:, k, None] * diff).T @ diff
                      + mw[k] * np.outer(means[k] - mp[k], means[k] - mp[k]))
        cp, cw = p["covars_prior"], p["covars_weight"]
        if covariance_type == "full":
            covariances = (cp + c_n) / (np.maximum(cw - D, 0) + post)[:, None, None]
        elif covariance_type == "tied":
            covariances = (cp + c_n.sum(axis=0)) / (max(cw - D, 0) + post.sum())
        else:
            diag = np.diagonal(c_n, axis1=1, axis2=2)
            denom = np.maximum(np.maximum(np.asarray(cw) - 1, 0) + post, 1e-5)
            if covariance_type == "diag":
                covariances = (cp + diag) / denom[:, None]
            else:
                covariances = ((np.asarray(cp, dtype=float) + diag.mean(axis=1)) / denom)
    return startprob, transmat, means, covariances


def baum_welch(X, lengths, startprob, transmat, means, covariances, covariance_type, n_iter,
               params="stmc", **priors):
    """A fixed number of Baum-Welch iterations from the given start.

    Returns
    -------
    dict with 'startprob', 'transmat', 'means', 'covariances' after the last
    M-step and 'history', the total log-likelihood before each M-step.
    """
    history = []
    for _ in range(n_iter):
        loglik, posteriors, start, trans = e_step(X, lengths, startprob, transmat, means,
                                                  covariances, covariance_type)
        history.append(loglik)
        startprob, transmat, means, covariances = m_step(
            X, posteriors, start, trans, startprob, transmat, means, covariances,
            covariance_type, params, **priors)
    return {"startprob": startprob, "transmat": transmat, "means": means,
            "covariances": covariances, "history": history}


def random_hmm(rng, n_components, n_features, covariance_type, separation=3.0):
    """Random, well-conditioned HMM parameters (all probabilities positive)."""
    K, D = n_components, n_features
    startprob = rng.dirichlet(np.full(K, 2.0))
    transmat = rng.dirichlet(np.full(K, 2.0), size=K) + 2.0 * np.eye(K)
    transmat /= transmat.sum(axis=1, keepdims=True)
    means = rng.normal(scale=separation, size=(K, D))
    if covariance_type == "full":
        a = rng.normal(size=(K, D, D))
        covariances = a @ np.swapaxes(a, 1, 2) / D + 0.5 * np.eye(D)
    elif covariance_type == "tied":
        a = rng.normal(size=(D, D))
        covariances = a @ a.T / D + 0.5 * np.eye(D)
    elif covariance_type == "diag":
        covariances = rng.uniform(0.5, 2.0, size=(K, D))
    else:
        covariances = rng.uniform(0.5, 2.0, size=K)
    return startprob, transmat, means, covariances


def sample_states(rng, lengths, startprob, transmat):
    """Concatenated state paths of the chain, one per length."""
    K = len(startprob)
    states = []
    for length in lengths:
        state = rng.choice(K, p=startprob)
        for _ in range(length):
            states.append(state)
            state = rng.choice(K, p=transmat[state])
    return np.array(states)


def sample_sequences(rng, lengths, startprob, transmat, means, covariances, covariance_type):
    """Concatenated sequences drawn from the model, and their states."""
    K, D = means.shape
    if covariance_type == "full":
        full = covariances
    elif covariance_type == "tied":
        full = np.broadcast_to(covariances, (K, D, D))
    elif covariance_type == "diag":
        full = np.stack([np.diag(c) for c in covariances])
    else:
        full = covariances[:, None, None] * np.eye(D)
    chol = np.linalg.cholesky(full)
    states = sample_states(rng, lengths, startprob, transmat)
    X = means[states] + np.einsum("nij,nj->ni", chol[states], rng.standard_normal((len(states), D)))
    return X, states


# --- discrete emissions (hmmlearn's CategoricalHMM and PoissonHMM) --------------------------
def categorical_log_prob(X, emissionprob):
    """log P(symbol x_t | k), shape (N, K); X of shape (N, 1) holds the symbols."""
    return _log(emissionprob)[:, np.asarray(X, dtype=int)[:, 0]].T


def poisson_log_prob(X, rates):
    """sum_j log Poisson(x_tj | rate_kj), shape (N, K)."""
    from scipy.special import gammaln

    X = np.asarray(X, dtype=np.float64)
    log_rates = _log(rates)
    with np.errstate(invalid="ignore"):
        terms = X[:, None, :] * log_rates[None] - rates[None] - gammaln(X + 1)[:, None, :]
    terms = np.where((X[:, None, :] == 0) & (rates[None] == 0), 0.0, terms)   # 0 log 0 = 0
    return terms.sum(axis=2)


def categorical_m_step(X, posteriors, n_symbols, emissionprob_prior=1.0):
    """hmmlearn's: max(prior - 1 + expected symbol counts, 0), each row normalised."""
    counts = np.zeros((posteriors.shape[1], n_symbols))
    np.add.at(counts.T, np.asarray(X, dtype=int)[:, 0], posteriors)
    new = np.maximum(np.asarray(emissionprob_prior, dtype=float) - 1 + counts, 0)
    return new / new.sum(axis=1, keepdims=True)


def poisson_m_step(X, posteriors, lambdas_prior=0.0, lambdas_weight=0.0):
    """hmmlearn's: (alpha + n * mean_k) / (beta + n), n the total posterior mass."""
    post = posteriors.sum(axis=0)
    y_bar = posteriors.T @ np.asarray(X, dtype=float) / post[:, None]
    n = post.sum()
    return (lambdas_prior + n * y_bar) / (lambdas_weight + n)


def multinomial_log_prob(X, emissionprob):
    """log n_t! - sum_j log x_tj! + sum_j x_tj log p_kj, shape (N, K)."""
    from scipy.special import gammaln

    X = np.asarray(X, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        terms = X[:, None, :] * _log(emissionprob)[None]
    terms = np.where(X[:, None, :] == 0, 0.0, terms)          # 0 log 0 = 0
    return (gammaln(X.sum(axis=1) + 1) - gammaln(X + 1).sum(axis=1))[:, None] + terms.sum(axis=2)


def multinomial_m_step(X, posteriors):
    """hmmlearn's: the expected counts of each outcome, each row normalised."""
    obs = posteriors.T @ np.asarray(X, dtype=float)
    return obs / obs.sum(axis=1, keepdims=True)


DISCRETE = {"categorical": (categorical_log_prob, categorical_m_step),
            "poisson": (poisson_log_prob, poisson_m_step),
            "multinomial": (multinomial_log_prob, multinomial_m_step)}


def baum_welch_discrete(kind, X, lengths, startprob, transmat, emission, n_iter,
                        startprob_prior=1.0, transmat_prior=1.0, **emission_prior):
    """``n_iter`` Baum-Welch iterations with categorical or Poisson emissions.

    Returns
    -------
    dict with 'startprob', 'transmat', 'emission' after the last M-step and
    'history', the total log-likelihood before each M-step.
    """
    log_prob, m_step_emission = DISCRETE[kind]
    history = []
    for _ in range(n_iter):
        loglik, posteriors, start, trans = e_step_log_b(log_prob(X, emission), lengths,
                                                        startprob, transmat)
        history.append(loglik)
        new = np.maximum(startprob_prior - 1 + start, 0)
        startprob = new / new.sum()
        new = np.maximum(transmat_prior - 1 + trans, 0)
        transmat = new / new.sum(axis=1, keepdims=True)
        if kind == "categorical":
            emission = m_step_emission(X, posteriors, emission.shape[1], **emission_prior)
        else:
            emission = m_step_emission(X, posteriors, **emission_prior)
    return {"startprob": startprob, "transmat": transmat, "emission": emission,
            "history": history}


def sample_discrete(rng, kind, lengths, startprob, transmat, emission, n_trials=5):
    """Concatenated sequences of symbols (N, 1) or counts (N, D), and their states."""
    states = sample_states(rng, lengths, startprob, transmat)
    if kind == "multinomial":
        return np.array([rng.multinomial(n_trials, emission[s]) for s in states]), states
    if kind == "categorical":
        u = rng.uniform(size=(len(states), 1))
        X = (u >= np.cumsum(emission[states], axis=1)).sum(axis=1, keepdims=True)
        return np.minimum(X, emission.shape[1] - 1), states
    return rng.poisson(emission[states]), states


# --- Gaussian-mixture emissions (hmmlearn's GMMHMM) ----------------------------------------
def _full_covars(covars, covariance_type, K, M, D):
    """(K, M, D, D) covariance matrices from hmmlearn's GMMHMM layouts."""
    if covariance_type == "full":
        return covars
    if covariance_type == "tied":
        return np.broadcast_to(covars[:, None], (K, M, D, D))
    if covariance_type == "diag":
        return covars[..., :, None] * np.eye(D)
    return covars[..., None, None] * np.eye(D)


def gmm_component_log_prob(X, weights, means, covars, covariance_type):
    """log w_km + log N(x_t | mu_km, Sigma_km), shape (N, K, M)."""
    K, M, D = means.shape
    full = _full_covars(covars, covariance_type, K, M, D)
    out = np.empty((len(X), K, M))
    for k in range(K):
        for m in range(M):
            diff = X - means[k, m]
            sign, logdet = np.linalg.slogdet(full[k, m])
            maha = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(full[k, m]), diff)
            out[:, k, m] = (np.log(weights[k, m]) - 0.5 * (D * np.log(2 * np.pi) + logdet
                                                           + maha))
    return out


def gmm_m_step(X, posteriors, weights, means, covars, covariance_type, params="mcw"):
    """hmmlearn's GMMHMM M-step with its default priors (none but the M-step's own
    constants); the covariance statistics are about the current means, as hmmlearn's."""
    K, M, D = means.shape
    component = gmm_component_log_prob(X, weights, means, covars, covariance_type)
    within = np.exp(component - logsumexp(component, axis=2, keepdims=True))
    resp = posteriors[:, :, None] * within                          # (N, K, M)
    nk = resp.sum(axis=0)
    centred = X[:, None, None, :] - means                           # about the current means
    if "w" in params:
        weights = nk / posteriors.sum(axis=0)[:, None]
    new_means = np.einsum("nkm,nd->kmd", resp, X) / nk[:, :, None] if "m" in params else means
    if "c" in params:
        if covariance_type == "full":
            covars = np.einsum("nkm,nkmi,nkmj->kmij", resp, centred, centred) / nk[:, :, None, None]
        elif covariance_type == "tied":
            covars = (np.einsum("nkm,nkmi,nkmj->kij", resp, centred, centred)
                      / posteriors.sum(axis=0)[:, None, None])
        elif covariance_type == "diag":
            covars = np.einsum("nkm,nkmd->kmd", resp, centred ** 2) / nk[:, :, None]
        else:   # hmmlearn's spherical: D (N + 1) - M in the denominator with its default prior
            covars = (np.einsum("nkm,nkmd->km", resp, centred ** 2)
                      / (D * (nk + 1) - M))
    return weights, new_means, covars


def baum_welch_gmm(X, lengths, startprob, transmat, weights, means, covars, covariance_type,
                   n_iter):
    """``n_iter`` Baum-Welch iterations of a GMM-HMM with hmmlearn's default priors."""
    history = []
    for _ in range(n_iter):
        component = gmm_component_log_prob(X, weights, means, covars, covariance_type)
        loglik, posteriors, start, trans = e_step_log_b(logsumexp(component, axis=2), lengths,
                                                        startprob, transmat)
        history.append(loglik)
        startprob = start / start.sum()
        transmat = trans / trans.sum(axis=1, keepdims=True)
        weights, means, covars = gmm_m_step(X, posteriors, weights, means, covars,
                                            covariance_type)
    return {"startprob": startprob, "transmat": transmat, "weights": weights, "means": means,
            "covars": covars, "history": history}
