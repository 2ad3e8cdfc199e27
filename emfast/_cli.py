"""The ``emfast`` command line."""
import argparse
import sys
import time


def _demo(args):
    import numpy as np

    from . import GaussianMixture, __version__
    from ._datasets import make_demo
    from ._kernels import _openmp

    X, truth = make_demo(args.n_samples, random_state=args.seed)
    print(f"emfast {__version__}: demo data set, {X.shape[0]:,} samples x {X.shape[1]} features "
          f"drawn from 5 Gaussian components")
    model = GaussianMixture(n_components=5, covariance_type=args.covariance, n_init=1,
                            random_state=args.seed, n_threads=args.threads)
    start = time.perf_counter()
    labels = model.fit_predict(X)
    seconds = time.perf_counter() - start
    threads = args.threads or _openmp.openmp_max_threads()
    print(f"fit: {model.n_iter_} EM iterations in {seconds:.3f} s "
          f"({seconds / max(model.n_iter_, 1) * 1e3:.2f} ms/iteration, {threads} threads), "
          f"converged: {model.converged_}")
    print(f"mean log-likelihood: {model.lower_bound_:.6f}   BIC: {model.bic(X):,.1f}")
    order = np.argsort(-model.weights_)
    print("component  weight   mean")
    for k in order:
        mean = ", ".join(f"{v:7.3f}" for v in model.means_[k])
        print(f"{k:9d}  {model.weights_[k]:.4f}   [{mean}]")
    agreement = max(np.mean(truth == perm[labels]) for perm in _label_permutations(truth, labels))
    print(f"agreement with the generating components: {agreement:.2%}")
    return 0


def _label_permutations(truth, labels):
    """The best matching of fitted labels to true ones (greedy on the contingency table)."""
    import numpy as np

    K = max(truth.max(), labels.max()) + 1
    table = np.zeros((K, K), dtype=np.int64)
    np.add.at(table, (labels, truth), 1)
    mapping = np.full(K, -1)
    for _ in range(K):
        fitted, true = np.unravel_index(np.argmax(table), table.shape)
        mapping[fitted] = true
        table[fitted, :] = -1
        table[:, true] = -1
    yield mapping


def build_parser():
    parser = argparse.ArgumentParser(prog="emfast", description="Fast EM for Gaussian mixtures.")
    commands = parser.add_subparsers(dest="command", required=True)
    demo = commands.add_parser("demo", help="fit a mixture to the built-in demo data set")
    demo.add_argument("--n-samples", type=int, default=200_000)
    demo.add_argument("--covariance", default="full",
                      choices=["full", "tied", "diag", "spherical"])
    demo.add_argument("--threads", type=int, default=None)
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=_demo)
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError) as exc:
        print(f"emfast: error: {exc}", file=sys.stderr)
        return 2
