"""``compare.py --family``: MixtureModel families against a plain numpy EM.

The numpy EM is one GEMM for the log-densities, a log-sum-exp and one GEMM for
the statistics, from the same start for the same fixed iterations; the limit is
the two GEMMs at the measured DGEMM peak plus N*K exponentials at the measured
exp throughput.
"""
import sys
import time
import warnings

from _harness import best_time, spawn

# `--family poisson,bernoulli,categorical`: MixtureModel against a plain numpy EM (one GEMM
# for the log-densities, a log-sum-exp, one GEMM for the statistics) from the same start,
# fixed iterations, and the limit: the two GEMMs at the measured DGEMM peak plus N*K
# exponentials at the measured exp throughput.
FAMILY_SHAPES = {   # name: (n, d, k, n_categories or None)
    "poisson": (1_000_000, 16, 16, None),
    "bernoulli": (1_000_000, 16, 16, None),
    "categorical": (100_000, 20, 6, 4),     # latent class analysis
    "student_t": (1_000_000, 16, 16, None),     # full scatter; also timed against the Gaussian
}
STUDENT_T_DOF = 4.0


def family_problem(name, quick, seed=0):
    """(X, weights0, params0, T, n_features_total) for a family benchmark."""
    import numpy as np
    n, d, k, c = FAMILY_SHAPES[name]
    n = n // 100 if quick else n
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    if name == "poisson":
        X = rng.poisson(rng.uniform(0.5, 8.0, (k, d))[labels]).astype(np.float64)
        params = {"rates": rng.uniform(0.5, 8.0, (k, d))}
        T = X
    elif name == "student_t":
        means = rng.normal(0.0, 4.0, (k, d))
        g = rng.gamma(STUDENT_T_DOF / 2, 2 / STUDENT_T_DOF, n)
        X = means[labels] + rng.standard_normal((n, d)) / np.sqrt(g)[:, None]
        params = {"means": means + rng.normal(0.0, 0.3, (k, d)),
                  "covariances": np.repeat(np.eye(d)[None], k, axis=0),
                  "dofs": np.full(k, 10.0)}
        T = X
    elif name == "bernoulli":
        X = (rng.uniform(size=(n, d)) < rng.uniform(0.1, 0.9, (k, d))[labels]).astype(np.float64)
        params = {"probs": rng.uniform(0.2, 0.8, (k, d))}
        T = X
    else:
        truth = rng.dirichlet(np.ones(c), (k, d))
        cum = truth[labels].cumsum(axis=2)
        X = (rng.uniform(size=(n, d, 1)) > cum).sum(axis=2).astype(np.float64)
        params = {"probs": [p / p.sum(axis=1, keepdims=True)
                            for p in rng.uniform(0.2, 1.0, (d, k, c))]}
        T = np.zeros((n, d * c))
        T[np.arange(n)[:, None], np.arange(d) * c + X.astype(int)] = 1.0
    return X, np.full(k, 1.0 / k), params, T


def _numpy_natural(name, weights, params):
    import numpy as np
    if name == "poisson":
        rates = params["rates"]
        return np.log(rates), np.log(weights) - rates.sum(axis=1)
    if name == "bernoulli":
        p = params["probs"]
        return np.log(p) - np.log1p(-p), np.log(weights) + np.log1p(-p).sum(axis=1)
    return np.log(np.hstack(params["probs"])), np.log(weights)


def _numpy_m_step(name, S, nk, d):
    if name == "poisson":
        return {"rates": S / nk[:, None]}
    if name == "bernoulli":
        return {"probs": S / nk[:, None]}
    c = S.shape[1] // d
    return {"probs": [S[:, j * c:(j + 1) * c] / nk[:, None] for j in range(d)]}


def numpy_family_em(name, T, weights, params, iters):
    """The plain numpy EM: (seconds per iteration, weights, params)."""
    import numpy as np
    d = FAMILY_SHAPES[name][1]
    start = time.perf_counter()
    for _ in range(iters):
        A, c = _numpy_natural(name, weights, params)
        L = T @ A.T + c                      # GEMM 1: log-densities (without h(x))
        m = L.max(axis=1, keepdims=True)
        P = np.exp(L - m)
        P /= P.sum(axis=1, keepdims=True)    # responsibilities
        S = P.T @ T                          # GEMM 2: statistics
        nk = P.sum(axis=0)
        weights, params = nk / nk.sum(), _numpy_m_step(name, S, nk, d)
    return (time.perf_counter() - start) / iters, weights, params


def numpy_student_t_em(X, weights, params, iters, reg_covar=1e-6):
    """A plain numpy EM for the full-scatter t mixture: (seconds per iteration, weights,
    params).  Per component a Cholesky solve for the distances and one GEMM for the
    u-weighted scatter; the degrees of freedom by bisection on the digamma equation."""
    import numpy as np
    from scipy.linalg import solve_triangular
    from scipy.special import digamma, gammaln, logsumexp
    n, d = X.shape
    k = len(weights)
    means, cov, dofs = params["means"], params["covariances"], params["dofs"]
    start = time.perf_counter()
    for _ in range(iters):
        L = np.empty((n, k))
        delta = np.empty((n, k))
        for j in range(k):
            chol = np.linalg.cholesky(cov[j])
            z = solve_triangular(chol, (X - means[j]).T, lower=True)
            delta[:, j] = np.einsum("ij,ij->j", z, z)
            nu = dofs[j]
            L[:, j] = (np.log(weights[j]) + gammaln((nu + d) / 2) - gammaln(nu / 2)
                       - d / 2 * np.log(nu * np.pi) - np.log(np.diag(chol)).sum()
                       - (nu + d) / 2 * np.log1p(delta[:, j] / nu))
        R = np.exp(L - logsumexp(L, axis=1)[:, None])
        u = (dofs + d) / (dofs + delta)
        nk = R.sum(axis=0)
        RU = R * u
        means = (RU.T @ X) / RU.sum(axis=0)[:, None]
        cov = np.stack([((X - means[j]).T * RU[:, j]) @ (X - means[j]) / nk[j]
                        + reg_covar * np.eye(d) for j in range(k)])
        target = -(1 + (R * (np.log(u) - u)).sum(axis=0) / nk
                   + digamma((dofs + d) / 2) - np.log((dofs + d) / 2))
        lo, hi = np.full(k, 1e-8), np.full(k, 1e12)
        for _ in range(200):
            mid = np.sqrt(lo * hi)
            above = np.log(mid / 2) - digamma(mid / 2) > target
            lo, hi = np.where(above, mid, lo), np.where(above, hi, mid)
        dofs = np.clip(np.sqrt(lo * hi), 0.5, 1000.0)
        weights = nk / n
    return (time.perf_counter() - start) / iters, weights, {"means": means,
                                                            "covariances": cov, "dofs": dofs}


def work_family(a):
    import numpy as np
    from emfast import MixtureModel, families
    name = a.family_name
    X, weights, params, T = family_problem(name, a.quick)
    n, d, k = X.shape[0], X.shape[1], len(weights)
    family = (families.Categorical(n_categories=FAMILY_SHAPES[name][3])
              if name == "categorical" else name)
    # the numpy EM (one iteration of warm-up is not needed: no lazy set-up)
    if name == "student_t":
        numpy_s, np_weights, np_params = numpy_student_t_em(X, weights, params, a.iters)
    else:
        numpy_s, np_weights, np_params = numpy_family_em(name, T, weights, params, a.iters)

    def fit(max_iter, family=family, params=params):
        model = MixtureModel(family, k, max_iter=max_iter, tol=0, weights_init=weights,
                             params_init=params, n_threads=a.threads)
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(X)
        return time.perf_counter() - start, model
    fit(1)   # warm-up: imports, first-touch of the buffers
    setup = min(fit(0)[0] for _ in range(2))
    total, model = fit(a.iters)
    emfast_s = max(total - setup, 1e-9) / a.iters
    gaussian_s = ratio = None
    if name == "student_t":
        # the Gaussian family (full) from the same start on the same data, in rounds that
        # alternate the two fits (load drift hits both sides of a round alike)
        gaussian = dict(family=families.Gaussian("full"),
                        params={key: params[key] for key in ("means", "covariances")})
        fit(1, **gaussian)
        gaussian_setup = min(fit(0, **gaussian)[0] for _ in range(2))
        t_times, gaussian_times = [], []
        for _ in range(a.rounds):
            t_times.append(max(fit(a.iters)[0] - setup, 1e-9) / a.iters)
            gaussian_times.append(max(fit(a.iters, **gaussian)[0] - gaussian_setup, 1e-9)
                                  / a.iters)
        ratio = float(np.median(np.array(t_times) / np.array(gaussian_times)))
        emfast_s, gaussian_s = min([emfast_s] + t_times), min(gaussian_times)
    ours = [model.params_[key] for key in sorted(model.params_)]
    theirs = [np_params[key] for key in sorted(np_params)]
    flat = lambda v: np.concatenate([np.ravel(x) for x in (v if isinstance(v, list) else [v])])
    agreement = max(float(np.max(np.abs(flat(o) - flat(t)) / np.maximum(np.abs(flat(t)), 1e-12)))
                    for o, t in zip(ours, theirs))
    # the limit: two GEMMs at the measured peak, N*K exps at the measured throughput
    m = np.random.default_rng(0).standard_normal((2048, 2048))
    m @ m
    peak = 2 * 2048 ** 3 / best_time(lambda: m @ m, 3)
    from threadpoolctl import threadpool_limits
    e = -np.random.default_rng(0).uniform(0, 30, 4_000_000)
    with threadpool_limits(limits=1):
        exp_rate = e.size / best_time(lambda: np.exp(e), 3)   # one thread
    if name == "student_t":
        # the triangular distances and the u-weighted scatter, D(D+1)/2 multiply-adds each
        # per row and component, at the GEMM peak; an exp and a log1p per row and component
        limit = 2 * n * k * d * (d + 1) / peak + 2 * n * k / (exp_rate * a.threads)
    else:
        gemm_flops = 2 * 2 * n * T.shape[1] * k
        limit = gemm_flops / peak + n * k / (exp_rate * a.threads)
    return {"family": name, "n": n, "d": d, "k": k, "features": T.shape[1],
            "emfast_s": emfast_s, "numpy_s": numpy_s, "limit_s": limit,
            "dgemm_gflops": peak / 1e9, "exp_per_s": exp_rate,
            "max_rel_diff": agreement, "stepmix": stepmix_row(name, X, k, a.iters, a.threads),
            "pomegranate": pomegranate_row(name, X, fit, weights, params, a.iters, a.threads),
            "gaussian_s": gaussian_s, "t_over_gaussian": ratio}


def stepmix_row(name, X, k, iters, threads):
    """stepmix beside emfast on the latent class shape, from one start (None: not installed).

    Both start from the M-step of the same random responsibilities (stepmix's
    own way of starting, given ours: ``_peers.py``) and run ``iters`` EM
    iterations; a fit of one iteration is subtracted from each, so set-up does
    not count.  Returns (stepmix s/iter, emfast s/iter, max relative difference
    of the final probabilities)."""
    if name != "categorical":
        return None
    try:
        import stepmix  # noqa: F401
    except ImportError:
        return None
    import numpy as np
    from emfast import MixtureModel, families
    from _peers import stepmix_from, stepmix_params, stepmix_start

    n_categories = FAMILY_SHAPES[name][3]
    resp0 = np.random.default_rng(1).dirichlet(np.ones(k), size=X.shape[0])
    weights, params = stepmix_start(name, X.astype(int), resp0, n_categories)
    codes = X.astype(int)

    def timed(model, data):
        start = time.perf_counter()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model.fit(data)
        return time.perf_counter() - start, model

    def theirs(max_iter):
        return timed(stepmix_from(resp0, n_components=k, measurement="categorical",
                                  max_iter=max_iter, abs_tol=0, rel_tol=0, progress_bar=0,
                                  random_state=0), codes)

    def ours(max_iter):
        return timed(MixtureModel(families.Categorical(n_categories=n_categories), k,
                                  weights_init=weights, params_init=params, tol=0,
                                  max_iter=max_iter, n_threads=threads), X)

    ours(1)                                            # warm-up
    (t_many, sm), (t_one, _) = theirs(iters + 1), theirs(1)
    (e_many, mm), (e_one, _) = ours(iters + 1), ours(1)
    diff = max(float(np.max(np.abs(a - b) / b))
               for a, b in zip(mm.params_["probs"], stepmix_params(name, sm)["probs"]))
    return (max(t_many - t_one, 1e-9) / iters, max(e_many - e_one, 1e-9) / iters, diff)


POMEGRANATE_MAX_ITERS = 3    # it takes seconds per iteration at the 1,000,000-row shapes


def pomegranate_row(name, X, fit, weights, params, iters, threads):
    """pomegranate 1.x beside emfast from the same start (None: not installed, or no
    counterpart).  A fit of one iteration is subtracted from a fit of n + 1, as for
    stepmix, n = min(iters, POMEGRANATE_MAX_ITERS); returns (pomegranate s/iter,
    max relative difference of the parameters after n iterations from emfast's)."""
    try:
        import torch
        import pomegranate  # noqa: F401
    except ImportError:
        return None
    import numpy as np
    from _peers import POMEGRANATE_FAMILIES, pomegranate_from, pomegranate_params, torch_float64
    if name not in POMEGRANATE_FAMILIES:
        return None
    torch.set_num_threads(threads)
    n = min(iters, POMEGRANATE_MAX_ITERS)
    data = torch.as_tensor(X.astype(np.int64) if name == "categorical" else X)

    def theirs(max_iter):
        model = pomegranate_from(name, weights, params, max_iter)
        start = time.perf_counter()
        model.fit(data)
        return time.perf_counter() - start, model

    with torch_float64():
        theirs(1)                                      # warm-up
        (t_many, model), (t_one, _) = theirs(n + 1), theirs(1)
        their_params = pomegranate_params(name, model)[1]
    ours = fit(n + 1)[1].params_
    flat = lambda v: np.concatenate([np.ravel(x) for x in (v if isinstance(v, list) else [v])])
    diff = max(float(np.max(np.abs(flat(ours[key]) - flat(value)) / np.abs(flat(value))))
               for key, value in their_params.items())
    return max(t_many - t_one, 1e-9) / n, diff


def family_main(a):
    names = a.family.split(",")
    unknown = [n for n in names if n not in FAMILY_SHAPES]
    if unknown:
        sys.exit(f"unknown families {unknown}; choose from {list(FAMILY_SHAPES)}")
    print(f"# emfast family benchmark\n\ncommand: `{' '.join(sys.argv)}`\n", flush=True)
    rows = ["| family | N | D | K | features | emfast s/iter | numpy EM s/iter | speed-up | "
            "limit s/iter | fraction of limit | max rel diff |", "|" + "---|" * 11]
    for name in names:
        r = spawn("family", a.threads, ["--family-name", name] + (["--quick"] if a.quick else [])
                  + ["--iters", a.iters, "--rounds", a.rounds], a.timeout)
        if r is None:
            rows.append(f"| {name} | failed |" + " |" * 9)
            continue
        rows.append(f"| {name} | {r['n']:,} | {r['d']} | {r['k']} | {r['features']} | "
                    f"{r['emfast_s']:.4f} | {r['numpy_s']:.4f} | "
                    f"{r['numpy_s'] / r['emfast_s']:.1f}x | {r['limit_s']:.4f} | "
                    f"{r['limit_s'] / r['emfast_s']:.2f} | {r['max_rel_diff']:.1e} |")
        print(f"  {name}: DGEMM peak {r['dgemm_gflops']:.1f} GFLOP/s on {a.threads} threads, "
              f"exp {r['exp_per_s'] / 1e6:.0f} M/s per thread", flush=True)
        if r.get("gaussian_s"):
            print(f"  {name}: emfast Gaussian (full) {r['gaussian_s']:.4f} s/iter on the same "
                  f"data; t / Gaussian time per iteration {r['t_over_gaussian']:.2f} (median "
                  f"of {a.rounds} alternating rounds)", flush=True)
        if r.get("pomegranate"):
            theirs, diff = r["pomegranate"]
            print(f"  {name}: from one start, pomegranate {theirs:.4f} s/iter, emfast "
                  f"{r['emfast_s']:.4f} s/iter: {theirs / r['emfast_s']:.1f}x faster; "
                  f"parameters agree to {diff:.1e}", flush=True)
        if r.get("stepmix"):
            theirs, ours, diff = r["stepmix"]
            print(f"  {name}: from one start, stepmix {theirs:.4f} s/iter, emfast {ours:.4f} "
                  f"s/iter: {theirs / ours:.1f}x faster; probabilities agree to {diff:.1e}",
                  flush=True)
    body = "\n".join(rows)
    print("\n" + body, flush=True)
    if a.out:
        with open(a.out, "a") as f:
            f.write(f"\n## {time.strftime('%Y-%m-%d %H:%M')} `{' '.join(sys.argv)}`\n\n{body}\n")
