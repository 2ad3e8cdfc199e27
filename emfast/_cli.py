"""The ``emfast`` command line: ``demo``, ``fit``, ``predict``, ``select``, ``hmm`` and ``config``.

Every error a user can cause (a missing or unreadable file, an unknown format
or column, a bad option, a fit that fails) is printed as one line
``emfast: error: ...`` on stderr with exit status 2; there is no traceback.
"""
import argparse
import os
import sys
import time
import warnings

import numpy as np

EXIT_ERROR = 2
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
MCLUST_MODELS = ("EII", "VII", "EEI", "VEI", "EVI", "VVI", "EEE", "VEE", "EVE", "VVE", "EEV",
                 "VEV", "EVV", "VVV")   # emfast._parsimonious.MODEL_NAMES, without importing it
ALL_TYPES = COVARIANCE_TYPES + MCLUST_MODELS
_SCORE_ROWS = 1 << 16   # rows per scoring call when summing log-likelihoods


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error (argparse's own prints the whole usage first)."""

    def error(self, message):
        self.exit(EXIT_ERROR, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# --- option types ---------------------------------------------------------------------
def _option_number(convert, low, wanted):
    """An argparse type: ``convert(text)``, at least ``low`` (NaN fails), else a message
    saying what was ``wanted``."""
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            value = None
        if value is None or not value >= low:
            raise argparse.ArgumentTypeError(f"expected {wanted}, got {text!r}")
        return value
    return parse


_positive_int = _option_number(int, 1, "a positive integer")
_non_negative_int = _option_number(int, 0, "an integer >= 0")
_non_negative_float = _option_number(float, 0, "a number >= 0")


def _threads(text):
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value == 0:
        raise argparse.ArgumentTypeError(
            f"expected a non-zero integer (-1 means all cores), got {text!r}")
    return value


def _component_counts(text):
    """'3', '1..10', '2,4,8' or '1..4,8' -> sorted distinct counts."""
    counts = []
    for part in text.split(","):
        bounds = part.strip().split("..")
        try:
            numbers = [int(b) for b in bounds]
        except ValueError:
            numbers = []
        if len(numbers) not in (1, 2) or min(numbers) < 1 or numbers[0] > numbers[-1]:
            raise argparse.ArgumentTypeError(
                f"expected counts like 3, 1..10 or 2,4,8 (positive, ranges increasing); "
                f"got {text!r}")
        counts.extend(range(numbers[0], numbers[-1] + 1))
    return sorted(set(counts))


def _covariance_list(text):
    groups = {"mclust": MCLUST_MODELS, "sklearn": COVARIANCE_TYPES}
    kinds = [kind for k in text.split(",") if k.strip()
             for kind in groups.get(k.strip(), (k.strip(),))]
    unknown = [k for k in kinds if k not in ALL_TYPES]
    if not kinds or unknown:
        raise argparse.ArgumentTypeError(
            f"expected 'mclust', 'sklearn' or a comma-separated list of "
            f"{', '.join(ALL_TYPES)}; got {text!r}")
    return list(dict.fromkeys(kinds))


def _column_list(text):
    return [c.strip() for c in text.split(",") if c.strip()] if text else None


# --- shared steps ---------------------------------------------------------------------
def _dtype(args):
    return None if args.dtype is None else np.dtype(args.dtype)


def _load(args):
    """Read DATA (plus weights) as asked: ``(X, names, weights)``."""
    from ._io import DataError, is_data_file, read_data, read_vector, with_names

    weight_file = weight_column = None
    if getattr(args, "sample_weight", None) is not None:
        if is_data_file(args.sample_weight):
            weight_file = args.sample_weight
        else:
            weight_column = args.sample_weight
    X, names, weights = read_data(args.data, _column_list(args.columns), weight_column,
                                  _dtype(args))
    X = with_names(X, names)   # a fit on it stores feature_names_in_
    if weight_file is not None:
        weights = read_vector(weight_file)
        if weights.shape[0] != X.shape[0]:
            raise DataError(f"--sample-weight: {weight_file} has {weights.shape[0]} values "
                            f"but {args.data} has {X.shape[0]} rows.")
    return X, names, weights


def _progress(args, n_init=1):
    """A progress line on a terminal, or with --verbose; None if --quiet or not wanted."""
    from ._progress import ProgressLine

    if getattr(args, "quiet", False):
        return None
    isatty = getattr(sys.stderr, "isatty", None)
    if (isatty and isatty()) or getattr(args, "verbose", False):
        return ProgressLine(sys.stderr, n_init=n_init)
    return None


def _show_warning(message, category=None, filename=None, lineno=None, file=None, line=None):
    print(f"emfast: warning: {' '.join(str(message).split())}", file=sys.stderr)


def _fit(model, X, weights, progress, labels=False):
    """Fit with the progress line; warnings are shown after the line is cleared.

    Returns the labels (or None) and the fit's wall time in seconds.
    """
    model._progress = progress
    sys.stdout.flush()   # what was printed so far comes before the progress line
    start = time.perf_counter()
    try:
        with warnings.catch_warnings(record=True) as caught:
            result = (model.fit_predict(X, sample_weight=weights) if labels
                      else model.fit(X, sample_weight=weights))
    finally:
        del model._progress
        if progress is not None:
            progress.close()
    seconds = time.perf_counter() - start
    for warning in caught:
        _show_warning(warning.message)
    return (result if labels else None), seconds


def _say(args):
    """``print`` for the summary, or a no-op with --quiet."""
    if getattr(args, "quiet", False):
        return lambda *parts, **kwargs: None
    return print


def _timed_load(args):
    """``_load(args)`` and the seconds it took."""
    start = time.perf_counter()
    loaded = _load(args)
    return loaded, time.perf_counter() - start


def _time_line(timing, fit_seconds, load_seconds=None):
    """Where the time went: loading, initialisation and EM iterations, separately.

    The EM figure is the wall time of the iterations themselves, from their
    start (``benchmarks/compare.py`` times fits from a given start the same
    way); initialisation (k-means) is reported on its own.
    """
    parts = [] if load_seconds is None else [f"reading the data {load_seconds:.3f} s"]
    parts += [f"initialisation {timing.init_seconds:.3f} s",
              f"EM {timing.em_seconds:.3f} s", f"whole fit {fit_seconds:.3f} s"]
    return "time: " + ", ".join(parts)


def _log_likelihood(model, X, weights):
    """The (weighted) total log-likelihood and the (weighted) sample count, in row blocks."""
    total = 0.0
    for start in range(0, X.shape[0], _SCORE_ROWS):
        log_p = model.score_samples(X[start:start + _SCORE_ROWS])
        total += float(log_p.sum() if weights is None
                       else weights[start:start + _SCORE_ROWS] @ log_p)
    return total, (X.shape[0] if weights is None else float(weights.sum(dtype=np.float64)))


def _print_fit(say, model, X, weights, seconds, threads, load_seconds=None):
    """The summary's first lines (iterations, timing, lower bound, BIC); False if quiet."""
    n_iter, timing = model.n_iter_, model._fit_timing
    runs = (f" (best of {timing.runs} runs, {timing.em_iterations} iterations in all)"
            if timing.runs > 1 else "")
    say(f"fit: {n_iter} EM iterations{runs}, {timing.seconds_per_iteration * 1e3:.2f} "
        f"ms/iteration ({threads} threads), converged: {model.converged_}")
    say(_time_line(timing, seconds, load_seconds))
    if say is not print:
        return False    # --quiet: nothing to print, nothing to compute
    log_likelihood, n = _log_likelihood(model, X, weights)
    bic = -2 * log_likelihood + model._n_parameters() * np.log(n)
    say(f"mean log-likelihood: {model.lower_bound_:.6f}   BIC: {bic:,.1f}")
    return True


def _print_summary(say, model, X, weights, seconds, threads, load_seconds=None):
    if not _print_fit(say, model, X, weights, seconds, threads, load_seconds):
        return
    shown = min(model.means_.shape[1], 6)
    more = ", ..." if model.means_.shape[1] > shown else ""
    say("component  weight   mean" + (f" (first {shown} features)" if more else ""))
    for k in np.argsort(-model.weights_, kind="stable"):
        mean = ", ".join(f"{v:7.3f}" for v in model.means_[k, :shown])
        say(f"{k:9d}  {model.weights_[k]:.4f}   [{mean}{more}]")


def _family_model(args):
    """A MixtureModel of ``--family`` from the fit options."""
    from ._mixture_model import MixtureModel
    from .families import get_family

    methods = get_family(args.family).init_methods
    if args.init not in methods:
        raise ValueError(f"--init {args.init} is for Gaussian mixtures; --family "
                         f"{args.family} takes one of {', '.join(methods)}.")
    return MixtureModel(args.family, args.n_components, tol=args.tol, max_iter=args.max_iter,
                        n_init=args.n_init, init_params=args.init, random_state=args.seed,
                        n_threads=args.threads)


def _print_family_summary(say, model, X, weights, seconds, threads, load_seconds=None):
    if not _print_fit(say, model, X, weights, seconds, threads, load_seconds):
        return
    key, first = next(iter(model.params_.items()))
    first = first[0] if isinstance(first, list) else first
    if not isinstance(first, np.ndarray):
        return
    first = first.reshape(len(first), -1)
    shown = min(first.shape[1], 6)
    more = ", ..." if first.shape[1] > shown else ""
    say(f"component  weight   {key}" + (f" (first {shown} columns)" if more else ""))
    for k in np.argsort(-model.weights_, kind="stable"):
        values = ", ".join(f"{v:7.3f}" for v in first[k, :shown])
        say(f"{k:9d}  {model.weights_[k]:.4f}   [{values}{more}]")


def _check_plot_path(path):
    """Fail before a long fit if the figure cannot be written."""
    try:
        from matplotlib.backend_bases import FigureCanvasBase
    except ImportError:
        raise ImportError("--plot needs matplotlib; install it with "
                          "pip install 'emfast[plot]'.") from None
    from ._io import check_output

    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    check_output(path, ["." + f for f in formats], "--plot")


def _figure(n_panels):
    from matplotlib.figure import Figure   # no pyplot: no GUI backend, nothing global

    figure = Figure(figsize=(6.0 * n_panels, 5.0), layout="constrained")
    return figure, figure.subplots(1, n_panels, squeeze=False)[0]


def _save_model(say, model, path, what="model"):
    from ._io import check_output

    check_output(path, [".npz"], "--out")
    model.save(path)
    say(f"saved the {what} to {path}")


def _check_model_path(path):
    if path is not None:
        from ._io import check_output

        check_output(path, [".npz"], "--out")


# --- commands -------------------------------------------------------------------------
def _demo(args):
    from . import GaussianMixture
    from ._version import __version__
    from ._datasets import make_demo
    from ._io import WRITE_SUFFIXES, check_output, write_array
    from ._parallel import effective_n_threads

    say = _say(args)
    if args.save_data is not None:
        check_output(args.save_data, WRITE_SUFFIXES, "--save-data")
    X, truth = make_demo(args.n_samples, random_state=args.seed)
    say(f"emfast {__version__}: demo data set, {X.shape[0]:,} samples x {X.shape[1]} features "
        f"drawn from 5 Gaussian components")
    if args.save_data is not None:
        write_array(args.save_data, X, header=["x", "y"])
        say(f"wrote the data to {args.save_data}")
    model = GaussianMixture(n_components=5, covariance_type=args.covariance, n_init=1,
                            random_state=args.seed, n_threads=args.threads)
    threads = effective_n_threads(args.threads)
    labels, seconds = _fit(model, X, None, _progress(args), labels=True)
    _print_summary(say, model, X, None, seconds, threads)
    agreement = np.mean(truth == _match_labels(truth, labels)[labels])
    say(f"agreement with the generating components: {agreement:.2%}")
    return 0


def _match_labels(truth, labels):
    """A map from fitted to true labels (greedy on the contingency table)."""
    K = max(truth.max(), labels.max()) + 1
    table = np.zeros((K, K), dtype=np.int64)
    np.add.at(table, (labels, truth), 1)
    mapping = np.full(K, -1)
    for _ in range(K):
        fitted, true = np.unravel_index(np.argmax(table), table.shape)
        mapping[fitted] = true
        table[fitted, :] = -1
        table[:, true] = -1
    return mapping


def _fit_command(args):
    from . import GaussianMixture
    from ._version import __version__
    from ._io import WRITE_SUFFIXES, check_output, write_array
    from ._parallel import effective_n_threads

    _check_model_path(args.out)
    if args.labels is not None:
        check_output(args.labels, WRITE_SUFFIXES, "--labels")
    if args.plot is not None:
        _check_plot_path(args.plot)
    threads = effective_n_threads(args.threads)
    say = _say(args)
    gaussian = args.family == "gaussian"
    if not gaussian and args.plot is not None:
        raise ValueError("--plot draws Gaussian components; it cannot be used with "
                         f"--family {args.family}.")
    (X, names, weights), load_seconds = _timed_load(args)
    if gaussian:
        model = GaussianMixture(n_components=args.n_components, covariance_type=args.covariance,
                                tol=args.tol, reg_covar=args.reg_covar, max_iter=args.max_iter,
                                n_init=args.n_init, init_params=args.init,
                                random_state=args.seed, n_threads=args.threads)
        what = f"{args.covariance} covariance"
    else:
        model = _family_model(args)
        what = f"{args.family} family"
    say(f"emfast {__version__}: {args.data}, {X.shape[0]:,} samples x {X.shape[1]} features "
        f"({X.dtype}{', weighted' if weights is not None else ''}); "
        f"{args.n_components} components, {what}")
    labels, seconds = _fit(model, X, weights,
                           _progress(args, args.n_init), labels=args.labels is not None)
    summary = _print_summary if gaussian else _print_family_summary
    summary(say, model, X, weights, seconds, threads, load_seconds)
    if args.out is not None:
        _save_model(say, model, args.out)
    if labels is not None:
        write_array(args.labels, labels, header=["label"])
        say(f"wrote {labels.shape[0]:,} labels to {args.labels}")
    if args.plot is not None:
        from .plot import plot_components, plot_lower_bound

        figure, axes = _figure(2 if X.shape[1] >= 2 else 1)
        if X.shape[1] >= 2:
            plot_components(model, X, ax=axes[0])
        plot_lower_bound(model, ax=axes[-1])
        figure.savefig(args.plot, dpi=100)
        say(f"wrote the plot to {args.plot}")
    return 0


def _predict_command(args):
    from . import load
    from ._io import (DataError, WRITE_SUFFIXES, check_output, column_names, read_data,
                      with_names, write_array)

    if args.out is not None:
        check_output(args.out, WRITE_SUFFIXES, "--out")
    if not os.path.isfile(args.model):
        raise DataError(f"{args.model}: no such model file.")
    model = load(args.model)
    if not hasattr(model, "converged_"):
        raise DataError(f"{args.model}: the model in this file was never fitted.")
    if args.threads is not None:
        model.set_params(n_threads=args.threads)
    fitted_names = getattr(model, "feature_names_in_", None)
    columns = _column_list(args.columns)
    file_names = column_names(args.data)
    if columns is None and fitted_names is not None and file_names is not None:
        columns = [str(name) for name in fitted_names]   # the model's columns, by name
        missing = [name for name in columns if name not in file_names]
        if missing:
            raise DataError(f"{args.data} lacks the model's column(s) {', '.join(missing)} "
                            f"(it has {', '.join(file_names)}); choose columns with --columns.")
    X, names, _ = read_data(args.data, columns, None, _dtype(args))
    n_features = model.n_features_in_
    if X.shape[1] != n_features:
        raise DataError(f"{args.data}: {X.shape[1]} feature columns, but the model was fitted "
                        f"on {n_features}; choose columns with --columns.")
    if fitted_names is not None and names is None:
        _show_warning(f"{args.data} has no column names; its columns are taken as the "
                      f"model's {', '.join(map(str, fitted_names))} in that order.")
        names = list(fitted_names)
    if fitted_names is None:
        names = None
    X = with_names(X, names)
    result = model.predict_proba(X) if args.proba else model.predict(X)
    header = ([f"p{k}" for k in range(result.shape[1])] if args.proba else ["label"])
    if args.out is None:
        fmt = "%.6g" if args.proba else "%d"
        np.savetxt(sys.stdout, result, fmt=fmt, delimiter=",")
        return 0
    write_array(args.out, result, header=header)
    what = "probabilities" if args.proba else "labels"
    _say(args)(f"wrote {result.shape[0]:,} rows of {what} to {args.out}")
    return 0


def _select_command(args):
    from . import select_model
    from ._version import __version__
    from ._parallel import effective_n_threads

    _check_model_path(args.out)
    if args.plot is not None:
        _check_plot_path(args.plot)
    if args.jobs is not None:
        effective_n_threads(args.jobs)   # validates like n_threads
    say = _say(args)
    (X, names, weights), load_seconds = _timed_load(args)
    kinds = args.covariance
    ks = args.n_components
    say(f"emfast {__version__}: {args.data}, {X.shape[0]:,} samples x {X.shape[1]} features "
        f"({X.dtype}{', weighted' if weights is not None else ''}); "
        f"{len(ks) * len(kinds)} candidates: n_components {_ranges(ks)} x {', '.join(kinds)}")
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        model, table = select_model(
            X, n_components=ks, covariance_types=kinds,
            criterion=args.criterion, convention=args.convention, sample_weight=weights,
            n_init=args.n_init,
            random_state=args.seed, n_jobs=args.jobs, tol=args.tol, reg_covar=args.reg_covar,
            max_iter=args.max_iter, init_params=args.init, n_threads=args.threads)
    seconds = time.perf_counter() - start
    say(table)
    for (k, kind), message in table.errors.items():
        say(f"failed: {k} components, {kind}: {' '.join(message.split())}")
    not_converged = int((~table.converged & np.isfinite(table.values)).sum())
    say(f"best: {model.n_components} components, {model.covariance_type} covariance "
        f"(converged: {model.converged_}); {not_converged} candidate(s) did not converge")
    timings = list(table.timings.values())
    init_seconds = sum(t.init_seconds for t in timings)
    em_seconds = sum(t.em_seconds for t in timings)
    iterations = sum(t.em_iterations for t in timings)
    say(f"time: reading the data {load_seconds:.3f} s, search {seconds:.3f} s; summed over the "
        f"{len(timings)} fitted candidates: initialisation {init_seconds:.3f} s, "
        f"{iterations} EM iterations {em_seconds:.3f} s "
        f"({em_seconds / max(iterations, 1) * 1e3:.2f} ms/iteration)")
    for warning in caught:
        _show_warning(warning.message)
    _save_model(say, model, args.out, what="best model")
    if args.plot is not None:
        from .plot import plot_criterion

        figure, axes = _figure(1)
        plot_criterion(table, ax=axes[0])
        figure.savefig(args.plot, dpi=100)
        say(f"wrote the plot to {args.plot}")
    return 0


def _ranges(counts):
    return (f"{counts[0]}..{counts[-1]}" if counts == list(range(counts[0], counts[-1] + 1))
            and len(counts) > 2 else ",".join(map(str, counts)))


# --- hidden Markov models ----------------------------------------------------------------
HMM_EMISSIONS = ("gaussian", "categorical", "poisson", "multinomial", "gmm")


def _hmm_emissions():
    """hmmlearn's model names first, then the other families (emfast.HMM)."""
    return list(HMM_EMISSIONS) + [name for name in _family_names()
                                  if name not in HMM_EMISSIONS]


def _hmm_model(args):
    """The model of ``--emission`` from the options (hmmlearn's class of that name, or
    emfast.HMM on the family)."""
    from . import GMMHMM, HMM, CategoricalHMM, GaussianHMM, MultinomialHMM, PoissonHMM

    chain = dict(n_iter=args.n_iter, tol=args.tol, random_state=args.seed,
                 n_threads=args.threads)
    K = args.n_components
    if args.emission == "gaussian":
        return GaussianHMM(K, covariance_type=args.covariance, **chain)
    if args.emission == "gmm":
        return GMMHMM(K, n_mix=args.n_mix, covariance_type=args.covariance, **chain)
    if args.n_mix != 1:
        raise ValueError(f"--n-mix is for --emission gmm; got --emission {args.emission}.")
    classes = {"categorical": CategoricalHMM, "poisson": PoissonHMM,
               "multinomial": MultinomialHMM}
    if args.emission in classes:
        return classes[args.emission](K, **chain)
    return HMM(args.emission, K, **chain)


def _hmm_lengths(args, n_rows, sequence_ids):
    """``--lengths``: a file of sequence lengths, or (``sequence_ids``) a column of DATA
    holding each row's sequence, a new sequence wherever it changes."""
    from ._io import DataError, read_vector

    if args.lengths is None:
        return None
    if sequence_ids is None:
        lengths = read_vector(args.lengths)
        if lengths.size == 0 or not np.all(lengths == np.round(lengths)):
            raise DataError(f"--lengths: {args.lengths} must hold whole numbers, the length "
                            "of each sequence.")
        lengths = lengths.astype(np.int64)
        if lengths.sum() != n_rows:
            raise DataError(f"--lengths: the lengths in {args.lengths} sum to "
                            f"{int(lengths.sum())}, but {args.data} has {n_rows} rows.")
        return lengths
    ids = np.asarray(sequence_ids)
    starts = np.flatnonzero(np.concatenate([[True], ids[1:] != ids[:-1]]))
    return np.diff(np.concatenate([starts, [len(ids)]]))


def _hmm_load(args):
    """(X, lengths) of DATA: ``--lengths`` a data file, or a column of DATA (not a feature)."""
    from ._io import is_data_file, read_data

    column = None
    if args.lengths is not None and not is_data_file(args.lengths):
        column = args.lengths
    X, _, sequence_ids = read_data(args.data, _column_list(args.columns), column,
                                   _dtype(args))
    return np.asarray(X), _hmm_lengths(args, X.shape[0], sequence_ids)


def _hmm_fit_command(args):
    from ._version import __version__

    _check_model_path(args.out)
    say = _say(args)
    model = _hmm_model(args)
    start = time.perf_counter()
    X, lengths = _hmm_load(args)
    load_seconds = time.perf_counter() - start
    n_sequences = 1 if lengths is None else len(lengths)
    say(f"emfast {__version__}: {args.data}, {X.shape[0]:,} samples x {X.shape[1]} features "
        f"in {n_sequences:,} sequence(s); {args.n_components} states, {args.emission} "
        f"emissions ({type(model).__name__})")
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        model.fit(X, lengths)
    seconds = time.perf_counter() - start
    say(f"fit: {model.n_iter_} Baum-Welch iterations, converged: {model.converged_}; "
        f"time: reading the data {load_seconds:.3f} s, fit {seconds:.3f} s")
    for warning in caught:
        _show_warning(warning.message)
    if say is print:
        log_likelihood = model.score(X, lengths)
        say(f"log-likelihood: {log_likelihood:.6f} ({log_likelihood / X.shape[0]:.6f} per "
            f"sample)   BIC: {model.bic(X, lengths):,.1f}   AIC: {model.aic(X, lengths):,.1f}")
    if args.out is not None:
        _save_model(say, model, args.out)
    return 0


def _hmm_model_file(args):
    from . import load
    from ._hmm_common import HMMMethods
    from ._io import DataError

    if not os.path.isfile(args.model):
        raise DataError(f"{args.model}: no such model file.")
    model = load(args.model)
    if not isinstance(model, HMMMethods):
        raise DataError(f"{args.model} holds a {type(model).__name__}, not a hidden Markov "
                        "model; use 'emfast predict'.")
    return model


def _hmm_decode_command(args):
    from ._io import WRITE_SUFFIXES, check_output, write_array

    if args.out is not None:
        check_output(args.out, WRITE_SUFFIXES, "--out")
    model = _hmm_model_file(args)
    X, lengths = _hmm_load(args)
    if args.proba:
        result = model.predict_proba(X, lengths)
        header = [f"p{k}" for k in range(result.shape[1])]
    else:
        result = model.decode(X, lengths, algorithm=args.algorithm)[1]
        header = ["state"]
    if args.out is None:
        np.savetxt(sys.stdout, result, fmt="%.6g" if args.proba else "%d", delimiter=",")
        return 0
    write_array(args.out, result, header=header)
    what = "state probabilities" if args.proba else f"states ({args.algorithm})"
    _say(args)(f"wrote {result.shape[0]:,} rows of {what} to {args.out}")
    return 0


def _hmm_score_command(args):
    model = _hmm_model_file(args)
    X, lengths = _hmm_load(args)
    log_likelihood = model.score(X, lengths)
    print(f"log-likelihood: {log_likelihood:.10g}")
    print(f"per sample: {log_likelihood / X.shape[0]:.10g}")
    print(f"BIC: {model.bic(X, lengths):.10g}")
    print(f"AIC: {model.aic(X, lengths):.10g}")
    return 0


def _add_hmm_data_options(parser):
    _add_data_options(parser, weights=False)
    parser.add_argument("--lengths", metavar="FILE|COLUMN",
                        help="the sequences: a one-column data file of sequence lengths, or "
                             "a column of DATA naming each row's sequence (a new sequence "
                             "wherever it changes); default: one sequence")


def _add_hmm_parser(commands):
    hmm = _command(commands, "hmm", help="hidden Markov models: fit, decode, score",
                   description="Fit a hidden Markov model by Baum-Welch, decode the states "
                               "of data or score them with a saved model.")
    actions = hmm.add_subparsers(dest="hmm_command", required=True, metavar="ACTION")
    fit = actions.add_parser("fit", help="fit a hidden Markov model to DATA",
                             description="Fit a hidden Markov model to DATA by Baum-Welch.")
    _add_hmm_data_options(fit)
    fit.add_argument("-k", "--n-components", type=_positive_int, required=True, metavar="K",
                     help="number of hidden states")
    fit.add_argument("--emission", default="gaussian", choices=_hmm_emissions(),
                     help="emissions: hmmlearn's GaussianHMM, CategoricalHMM, PoissonHMM, "
                          "MultinomialHMM or GMMHMM, or emfast.HMM on another family "
                          "(default: gaussian)")
    fit.add_argument("--covariance", default="diag", choices=COVARIANCE_TYPES,
                     help="covariance type for gaussian and gmm (default: diag)")
    fit.add_argument("--n-mix", type=_positive_int, default=1,
                     help="Gaussians per state for gmm (default: 1)")
    fit.add_argument("--n-iter", type=_non_negative_int, default=10,
                     help="Baum-Welch iterations at most (default: %(default)s, hmmlearn's)")
    fit.add_argument("--tol", type=float, default=1e-2,
                     help="stop when the log-likelihood gains less (default: %(default)s)")
    fit.add_argument("--seed", type=int, default=0,
                     help="random seed of the initialisation (default: 0)")
    fit.add_argument("-o", "--out", metavar="MODEL.npz", help="save the fitted model here")
    _add_loudness(fit, progress=False)
    fit.set_defaults(run=_hmm_fit_command)

    decode = _hmm_saved_model_action(actions, "decode", "the most likely states of DATA",
                                     "Write the most likely state of every row of DATA "
                                     "under a saved model.", _hmm_decode_command)
    decode.add_argument("--algorithm", default="viterbi", choices=["viterbi", "map"],
                        help="the best path (viterbi) or each row's most probable state "
                             "(map) (default: viterbi)")
    decode.add_argument("--proba", action="store_true",
                        help="write every state's posterior probability instead")
    decode.add_argument("-o", "--out", metavar="FILE",
                        help="write to .npy, .csv or .tsv (default: print to stdout)")
    _add_loudness(decode, progress=False)
    _hmm_saved_model_action(actions, "score", "log-likelihood, BIC and AIC of DATA",
                            "Print the log-likelihood of DATA under a saved model, with its "
                            "BIC and AIC.", _hmm_score_command)


def _hmm_saved_model_action(actions, name, summary, description, run):
    """An ``emfast hmm`` action on a saved model and DATA."""
    action = actions.add_parser(name, help=summary, description=description)
    action.add_argument("model", metavar="MODEL", help="a model saved by 'emfast hmm fit'")
    _add_hmm_data_options(action)
    action.set_defaults(run=run)
    return action


def _config_command(args):
    from ._config import show_config

    show_config()
    return 0


# --- the parser -----------------------------------------------------------------------
def _add_data_options(parser, weights=True):
    parser.add_argument("data", metavar="DATA",
                        help="samples x features: .npy (memory-mapped), .csv, .tsv "
                             "(header detected) or .parquet (needs pyarrow)")
    parser.add_argument("--columns", metavar="C1,C2,...",
                        help="feature columns by name or index (default: all but the "
                             "sample-weight column)")
    if weights:
        parser.add_argument("--sample-weight", metavar="FILE|COLUMN",
                            help="sample weights: a one-column data file, or a column of DATA "
                                 "by name or index")
    parser.add_argument("--dtype", choices=["float32", "float64"],
                        help="compute in this precision (default: float32 .npy files stay "
                             "float32, everything else is float64)")
    parser.add_argument("--threads", type=_threads, metavar="N",
                        help="kernel threads (default: OpenMP's, honouring OMP_NUM_THREADS)")


def _add_fit_options(parser):
    parser.add_argument("--max-iter", type=_non_negative_int, default=100,
                        help="EM iterations per run (default: %(default)s)")
    parser.add_argument("--tol", type=_non_negative_float, default=1e-3,
                        help="stop when the lower bound changes less (default: %(default)s)")
    parser.add_argument("--n-init", type=_positive_int, default=1,
                        help="runs from different starts; the best is kept (default: 1)")
    parser.add_argument("--init", default="kmeans",
                        choices=["kmeans", "k-means++", "random", "random_from_data", "hc"],
                        help="initialisation (default: kmeans; hc: mclust's hierarchical)")
    parser.add_argument("--reg-covar", type=_non_negative_float, default=1e-6,
                        help="added to the covariances' diagonals (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0,
                        help="random seed of the initialisation (default: 0)")
    _add_loudness(parser)


def _add_loudness(parser, progress=True):
    loud = parser.add_mutually_exclusive_group()
    if progress:
        loud.add_argument("-v", "--verbose", action="store_true",
                          help="report progress on stderr even when it is not a terminal")
    loud.add_argument("-q", "--quiet", action="store_true",
                      help="print nothing on stdout but what was asked for (no summary, no "
                           "progress line); warnings and errors still go to stderr")


# one example per command, shown by `emfast COMMAND --help`
EXAMPLES = {
    "demo": "example:\n  emfast demo --n-samples 20000 --save-data points.csv",
    "fit": "examples:\n  emfast fit points.csv -k 5 -o model.npz --labels labels.csv\n"
           "  emfast fit big.npy -k 8 --covariance diag --dtype float32 -q -o model.npz",
    "predict": "examples:\n  emfast predict model.npz points.csv --proba -o proba.npy\n"
               "  emfast predict model.npz points.csv | head",
    "select": "example:\n  emfast select points.csv -k 1..6 --covariance full,diag -o best.npz",
    "config": "example:\n  emfast config",
    "hmm": "examples:\n  emfast hmm fit counts.csv -k 4 --emission poisson --lengths lengths.csv "
           "-o hmm.npz\n  emfast hmm decode hmm.npz counts.csv --lengths lengths.csv -o states.csv\n"
           "  emfast hmm score hmm.npz counts.csv --lengths lengths.csv",
}


def _command(commands, name, **kwargs):
    return commands.add_parser(name, epilog=EXAMPLES[name],
                               formatter_class=argparse.RawDescriptionHelpFormatter, **kwargs)


def _family_names():
    from .families import FAMILIES

    # "gaussian" is GaussianMixture here; independent needs its column blocks
    return [name for name in FAMILIES if name not in ("gaussian", "independent")]


def build_parser():
    """The ``emfast`` argument parser.

    Returns
    -------
    parser : argparse.ArgumentParser
    """
    from ._version import __version__

    parser = _Parser(prog="emfast", description="Fast, trustworthy EM for Gaussian mixtures.",
                     epilog="Errors are one line on stderr with exit status 2.")
    parser.add_argument("--version", action="version", version=f"emfast {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = _command(commands, "demo", help="fit a mixture to the built-in demo data set",
                               description="Fit 5 components to the built-in 2-D demo data "
                                           "(generated, nothing is downloaded).")
    demo.add_argument("--n-samples", type=_positive_int, default=200_000,
                      help="points in the demo data set (default: 200000)")
    demo.add_argument("--covariance", default="full", choices=ALL_TYPES)
    demo.add_argument("--threads", type=_threads, default=None, metavar="N")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument("--save-data", metavar="FILE",
                      help="also write the demo data (.npy, .csv or .tsv, columns x, y)")
    _add_loudness(demo)
    demo.set_defaults(run=_demo)

    fit = _command(commands, "fit", help="fit a Gaussian mixture to a data file",
                              description="Fit a Gaussian mixture to DATA and print a summary.")
    _add_data_options(fit)
    fit.add_argument("-k", "--n-components", type=_positive_int, required=True, metavar="K",
                     help="number of components")
    fit.add_argument("--covariance", "--covariance-type", dest="covariance", default="full",
                     choices=ALL_TYPES, metavar="TYPE",
                     help="covariance type: full, tied, diag, spherical or one of mclust's "
                          "models EII ... VVV (default: full)")
    fit.add_argument("--family", default="gaussian", choices=["gaussian"] + _family_names(),
                     help="emission family: a Gaussian mixture, or a MixtureModel of counts, "
                          "0/1, categorical codes or positive values (default: gaussian)")
    fit.add_argument("-o", "--out", metavar="MODEL.npz", help="save the fitted model here")
    fit.add_argument("--labels", metavar="FILE",
                     help="write each sample's component (.npy, .csv or .tsv)")
    fit.add_argument("--plot", metavar="FIG.png",
                     help="draw the components and the lower bound (needs matplotlib)")
    _add_fit_options(fit)
    fit.set_defaults(run=_fit_command)

    predict = _command(commands, "predict", help="label data with a saved model",
                                  description="Label each row of DATA with its most probable "
                                              "component (or all probabilities with --proba).")
    predict.add_argument("model", metavar="MODEL", help="a model saved by fit or select (.npz)")
    _add_data_options(predict, weights=False)
    predict.add_argument("--proba", action="store_true",
                         help="write every component's posterior probability")
    predict.add_argument("-o", "--out", metavar="FILE",
                         help="write to .npy, .csv or .tsv (default: print to stdout)")
    _add_loudness(predict, progress=False)
    predict.set_defaults(run=_predict_command)

    select = _command(commands, "select", help="choose K and the covariance type by BIC",
                                 description="Fit every (K, covariance type) pair, print the "
                                             "criterion table and save the best model.")
    _add_data_options(select)
    select.add_argument("-k", "--n-components", type=_component_counts, required=True,
                        metavar="K", help="counts to try: 3, 1..10, 2,4,8 or 1..4,8")
    select.add_argument("--covariance", "--models", "--covariance-type", dest="covariance",
                        type=_covariance_list,
                        default=list(COVARIANCE_TYPES), metavar="TYPES",
                        help="comma-separated types to try; 'mclust' is mclust's 14 models "
                             "(default: full,tied,diag,spherical)")
    select.add_argument("--criterion", default="bic", choices=["bic", "aic", "icl"],
                        help="the criterion (default: bic)")
    select.add_argument("--convention", default="sklearn", choices=["sklearn", "mclust"],
                        help="mclust: mclust's numbers, larger is better (default: sklearn)")
    select.add_argument("--jobs", type=_threads, metavar="N",
                        help="candidates fitted at once (default: one per core)")
    select.add_argument("-o", "--out", metavar="MODEL.npz", default="model.npz",
                        help="save the best model here (default: model.npz)")
    select.add_argument("--plot", metavar="FIG.png",
                        help="draw the criterion table (needs matplotlib)")
    _add_fit_options(select)
    select.set_defaults(run=_select_command)

    _add_hmm_parser(commands)

    config = _command(commands, "config", help="show version, OpenMP, threads and BLAS",
                                 description="Print what this installation runs with.")
    config.set_defaults(run=_config_command)
    return parser


def main(argv=None):
    """Run the ``emfast`` command.

    Parameters
    ----------
    argv : list of str, default=None
        The arguments after ``emfast``; None means ``sys.argv[1:]``.

    Returns
    -------
    status : int
        0 on success, 2 on any error (printed as one line on stderr), 130
        when interrupted.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    with warnings.catch_warnings():
        warnings.showwarning = _show_warning
        try:
            return args.run(args)
        except KeyboardInterrupt:
            print("\nemfast: interrupted", file=sys.stderr)
            return 130
        except BrokenPipeError:   # e.g. `emfast predict ... | head`: stop quietly
            try:
                devnull = os.open(os.devnull, os.O_WRONLY)
                os.dup2(devnull, sys.stdout.fileno())
            except (OSError, ValueError, AttributeError):
                pass
            return 0
        except MemoryError:
            print("emfast: error: out of memory", file=sys.stderr)
            return EXIT_ERROR
        except (ValueError, TypeError, OSError, ImportError) as exc:
            message = " ".join(str(exc).split()) or type(exc).__name__
            print(f"emfast: error: {message}", file=sys.stderr)
            return EXIT_ERROR
