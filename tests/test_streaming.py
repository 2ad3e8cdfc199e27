"""Out-of-core input (emfast/_sources.py): memmaps, row-sliceable array-likes and
sequences of row blocks.

Streamed fits are compared with in-memory fits from the same start.  The block
size is shrunk so that every test streams many blocks; the blocks are whole
subtrees of the in-memory pass's reduction tree, so the fits are bitwise equal.
"""
import os
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _reference as ref  # noqa: E402

import emfast._sampling as sampling  # noqa: E402
import emfast._sources as sources  # noqa: E402
from emfast import ConvergenceWarning, GaussianMixture, MixtureModel  # noqa: E402
from emfast._passes import CHUNK_SIZE  # noqa: E402

COV_TYPES = ref.COVARIANCE_TYPES
ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_")


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch):
    """Blocks of 3 kernel chunks for 3 float64 features: 768 rows."""
    monkeypatch.setattr(sources, "STREAM_BLOCK_BYTES", 3 * CHUNK_SIZE * 3 * 8)


@pytest.fixture(autouse=True)
def _no_convergence_warnings():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        yield


class RowSliced:
    """The smallest array-like streaming accepts: shape, dtype and row slices."""

    def __init__(self, array):
        self._array = array
        self.shape, self.dtype = array.shape, array.dtype
        self.reads = []

    def __getitem__(self, rows):
        if isinstance(rows, slice):
            self.reads.append((rows.start, rows.stop))
            return self._array[rows].copy()
        raise TypeError("row slices only")


def memmap_of(array, path):
    np.save(path, array)
    return np.load(path, mmap_mode="r")


def start(problem, covariance_type, n_iter, **kw):
    u = problem["precisions_cholesky"]
    precisions = (u @ np.swapaxes(u, -1, -2) if covariance_type in ("full", "tied")
                  else u ** 2)
    return GaussianMixture(len(problem["weights"]), covariance_type=covariance_type,
                           weights_init=problem["weights"], means_init=problem["means"],
                           precisions_init=precisions, tol=0, max_iter=n_iter, **kw)


def assert_same_fit(a, b):
    """Bitwise the same parameters and lower bounds: streamed blocks are whole subtrees of
    the in-memory reduction, and the total weight is summed alike."""
    for name in ATTRIBUTES:
        assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    assert a.lower_bounds_ == b.lower_bounds_


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("covariance_type", COV_TYPES)
def test_memmap_fit_and_predictions_equal_in_memory(covariance_type, dtype, tmp_path):
    problem = ref.sample_problem(1, 5000, 3, 3, covariance_type, dtype=dtype, weighted=True)
    X, w = problem["X"], problem["sample_weight"]
    mapped = memmap_of(X, tmp_path / "X.npy")
    weights = memmap_of(w, tmp_path / "w.npy")
    clean = start(problem, covariance_type, 6, n_threads=2).fit(X, sample_weight=w)
    streamed = start(problem, covariance_type, 6, n_threads=2).fit(mapped, sample_weight=weights)
    assert_same_fit(streamed, clean)
    X_new = X[:1000] + np.asarray(0.25, dtype)
    mapped_new = memmap_of(X_new, tmp_path / "X_new.npy")
    assert_allclose(streamed.predict_proba(mapped_new), clean.predict_proba(X_new),
                    rtol=1e-9, atol=1e-12)
    assert_allclose(streamed.score_samples(mapped_new), clean.score_samples(X_new), rtol=1e-10)
    assert_array_equal(clean.predict(mapped_new), clean.predict(X_new))
    assert_array_equal(streamed.fit_predict(mapped, sample_weight=weights),
                       clean.predict(X))


def test_streamed_result_is_reproducible_and_thread_independent(tmp_path):
    problem = ref.sample_problem(2, 4000, 4, 3, "full", weighted=True)
    mapped = memmap_of(problem["X"], tmp_path / "X.npy")
    fits = [start(problem, "full", 4, n_threads=t).fit(mapped,
                                                       sample_weight=problem["sample_weight"])
            for t in (1, 2, 3)]
    for other in fits[1:]:
        for name in ATTRIBUTES:
            assert_array_equal(getattr(other, name), getattr(fits[0], name))


def test_one_block_memmap_is_bitwise_the_in_memory_fit(tmp_path, monkeypatch):
    # default initialisation included: a memmap of one block starts from all rows
    monkeypatch.setattr(sources, "STREAM_BLOCK_BYTES", 32 << 20)
    problem = ref.sample_problem(3, 3000, 2, 3, "diag")
    mapped = memmap_of(problem["X"], tmp_path / "X.npy")
    clean = GaussianMixture(3, covariance_type="diag", random_state=0).fit(problem["X"])
    streamed = GaussianMixture(3, covariance_type="diag", random_state=0).fit(mapped)
    for name in ATTRIBUTES:
        assert_array_equal(getattr(streamed, name), getattr(clean, name))


def test_memmap_blocks_reach_the_kernel_without_a_copy(tmp_path):
    mapped = memmap_of(np.random.default_rng(0).normal(size=(3000, 3)), tmp_path / "X.npy")
    source = sources.RowSource(mapped)
    assert source.bounds()[:2] == [(0, 768), (768, 1536)]
    block = source.read(768, 1536)
    assert np.shares_memory(block, mapped) and block.flags.c_contiguous
    # a big-endian file is converted, block by block
    swapped = memmap_of(np.asarray(mapped, dtype=">f8"), tmp_path / "swapped.npy")
    block = sources.RowSource(swapped).read(0, 768)
    assert not np.shares_memory(block, swapped) and block.dtype == np.float64
    assert_array_equal(block, mapped[:768])


def test_streamed_fit_allocates_a_bounded_amount(tmp_path, monkeypatch):
    # 12 MB of float32 rows, streamed in 256 kB blocks; the initialisation sample is
    # capped too.  Whatever the fit allocates (tracemalloc sees numpy's buffers) stays
    # a small fraction of X: nothing copies X whole.
    monkeypatch.setattr(sources, "STREAM_BLOCK_BYTES", 256 << 10)
    monkeypatch.setattr(sampling, "INIT_SAMPLE_ROWS", 5000)
    rng = np.random.default_rng(4)
    X = np.concatenate([rng.normal(0, 1, (200_000, 8)), rng.normal(4, 1, (200_000, 8))])
    mapped = memmap_of(X.astype(np.float32), tmp_path / "X.npy")
    del X
    weights = memmap_of(rng.uniform(0.5, 2, 400_000), tmp_path / "w.npy")
    gm = GaussianMixture(2, covariance_type="full", max_iter=3, tol=0, random_state=0)
    tracemalloc.start()
    try:
        gm.fit(mapped, sample_weight=weights)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < mapped.nbytes / 8, peak
    assert_allclose(np.sort(gm.means_[:, 0]), [0, 4], atol=0.05)


def test_row_sliceable_array_likes_are_streamed(tmp_path):
    problem = ref.sample_problem(5, 3000, 3, 2, "tied", weighted=True)
    X, w = problem["X"], problem["sample_weight"]
    clean = start(problem, "tied", 5).fit(X, sample_weight=w)
    source = RowSliced(X)
    streamed = start(problem, "tied", 5).fit(source, sample_weight=RowSliced(w))
    assert_same_fit(streamed, clean)
    # the dtype probe, then whole accumulator slots of the in-memory layout (3000 rows:
    # slots of one 256-row chunk; 768 rows per block hold no 8-slot subtree, so one slot)
    assert source.reads[:2] == [(None, 1), (0, 256)]
    assert_allclose(streamed.score_samples(RowSliced(X[:900])), clean.score_samples(X[:900]),
                    rtol=1e-10)
    # integers become float64, as for in-memory input
    counts = np.rint(X * 10).astype(np.int32)
    a = start(problem, "tied", 3).fit(counts)
    b = start(problem, "tied", 3).fit(RowSliced(counts))
    assert_same_fit(b, a)


def split(array, sizes):
    """``array`` as a list of consecutive row blocks of the given sizes (the rest last)."""
    edges = np.cumsum([0] + list(sizes))
    return [array[a:b] for a, b in zip(edges, list(edges[1:]) + [len(array)])]


def test_block_sequence_reads_rows_across_blocks():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((1000, 3))
    blocks = split(X, [0, 1, 0, 300, 255, 257])
    seq = sources.BlockSequence(blocks)
    assert seq.shape == (1000, 3) and seq.dtype == np.float64 and len(seq) == 1000
    for a, b in [(0, 0), (0, 1), (0, 1000), (1, 301), (300, 302), (556, 813), (999, 1000),
                 (813, 813), (900, 2000)] + [tuple(sorted(rng.integers(0, 1001, 2)))
                                              for _ in range(30)]:
        assert_array_equal(seq[a:b], X[a:b], strict=True)
    assert seq[5:10].base is not None     # inside one block: a view, no copy
    with pytest.raises(TypeError, match="slices"):
        seq[[1, 2]]
    # a tuple of row-sliceable array-likes works too
    assert_array_equal(sources.BlockSequence((RowSliced(X[:10]), RowSliced(X[10:])))[5:15],
                       X[5:15])


def test_sequences_of_blocks_are_streamed():
    problem = ref.sample_problem(7, 3000, 3, 3, "full", weighted=True)
    X, w = problem["X"], problem["sample_weight"]
    clean = start(problem, "full", 5).fit(X, sample_weight=w)
    blocks = split(X, [0, 1, 700, 1000])
    for weights in (w, list(w), split(w, [5, 1500]), tuple(split(w, [3000]))):
        assert_same_fit(start(problem, "full", 5).fit(blocks, sample_weight=weights), clean)
    assert_same_fit(start(problem, "full", 5).fit(tuple(blocks), sample_weight=w), clean)
    new = split(X[:900] + 0.25, [100, 0, 399])
    assert_array_equal(clean.predict(new), clean.predict(X[:900] + 0.25))
    assert_allclose(clean.score_samples(new), clean.score_samples(X[:900] + 0.25), rtol=1e-10)
    assert_allclose(clean.predict_proba(new), clean.predict_proba(X[:900] + 0.25),
                    rtol=1e-9, atol=1e-12)
    assert clean.bic(new) == clean.bic(X[:900] + 0.25)
    # the default initialisation (k-means on the sample) starts alike too
    a = GaussianMixture(3, max_iter=3, tol=0, random_state=0).fit(X)
    b = GaussianMixture(3, max_iter=3, tol=0, random_state=0).fit(blocks)
    assert_same_fit(b, a)


def test_lists_of_rows_are_not_block_sequences():
    X = np.random.default_rng(1).standard_normal((60, 2))
    a = GaussianMixture(2, max_iter=3, tol=0, random_state=0).fit(X)
    for rows in (X.tolist(), list(X), tuple(map(tuple, X.tolist()))):
        assert not sources.is_block_sequence(rows) and not sources.is_streamed(rows)
        assert_same_fit(GaussianMixture(2, max_iter=3, tol=0, random_state=0).fit(rows), a)


def test_bad_block_sequences_are_named():
    X = np.random.default_rng(2).standard_normal((50, 2))
    model = GaussianMixture(2, max_iter=2)
    with pytest.raises(ValueError, match="block 2 has 3 columns, block 0 has 2"):
        model.fit([X[:10], X[10:20], np.zeros((5, 3))])
    with pytest.raises(ValueError, match="block 1 is float32, block 0 is float64"):
        model.fit([X[:10], X[10:].astype(np.float32)])
    with pytest.raises(ValueError, match=r"block 1 \(list, shape \(\)\) is not a 2-D array"):
        model.fit([X[:10], [1.0, 2.0]])
    with pytest.raises(ValueError, match="block 0 .* is not a 2-D array"):
        model.fit([X[0], X[:10]])
    bad = X.copy()
    bad[33, 0] = np.inf
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        model.fit(split(bad, [20]))
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(50,\)"):
        model.fit(split(X, [20]), sample_weight=split(np.ones(49), [20]))
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(3).fit([X[:1], X[1:2]])
    fitted = GaussianMixture(2, max_iter=2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        fitted.predict([np.zeros((4, 3))])
    with pytest.raises(ValueError, match="needs X as a numpy array.*sequence of blocks"):
        GaussianMixture(2, missing_values="marginalize").fit(split(X, [20]))


@pytest.mark.parametrize("one_shot", [lambda b: (x for x in b), lambda b: iter(b),
                                      lambda b: map(np.asarray, b)])
def test_one_shot_iterables_are_refused(one_shot):
    X = np.random.default_rng(2).standard_normal((50, 2))
    blocks = split(X, [20])
    fitted = GaussianMixture(2, max_iter=2, random_state=0).fit(X)
    message = ("X is a one-shot iterable .*EM reads the data several times.*list of row "
               "blocks.*memmap.*dask array")
    with pytest.raises(TypeError, match=message):
        GaussianMixture(2).fit(one_shot(blocks))
    with pytest.raises(TypeError, match=message):
        fitted.predict_proba(one_shot(blocks))
    with pytest.raises(TypeError, match=message):
        fitted.bic(one_shot(blocks))
    with pytest.raises(TypeError, match=message):
        MixtureModel("gaussian", 2).fit(one_shot(blocks))


def test_mixture_model_streams_sequences_of_blocks():
    rng = np.random.default_rng(5)
    counts = rng.poisson(rng.choice([2.0, 9.0], 2000)[:, None], (2000, 2)).astype(np.float64)
    a = MixtureModel("poisson", 2, max_iter=4, tol=0, random_state=0).fit(counts)
    blocks = split(counts, [0, 999, 1])
    b = MixtureModel("poisson", 2, max_iter=4, tol=0, random_state=0).fit(blocks)
    assert b.lower_bounds_ == a.lower_bounds_
    assert_array_equal(b.predict(blocks), a.predict(counts))
    assert b.bic(blocks) == a.bic(counts)
    with pytest.raises(ValueError, match="block 1 has 3 columns, block 0 has 2"):
        a.predict([counts[:5], np.zeros((2, 3))])


def test_h5py_and_zarr(tmp_path):
    problem = ref.sample_problem(6, 2500, 3, 2, "diag", weighted=True)
    X32 = problem["X"].astype(np.float32)
    clean = start(problem, "diag", 5).fit(X32, sample_weight=problem["sample_weight"])
    stores = []
    h5py = pytest.importorskip("h5py")
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f["X"], f["w"] = X32, problem["sample_weight"]
    stores.append(h5py.File(tmp_path / "data.h5", "r"))
    try:
        import zarr
        group = zarr.open_group(str(tmp_path / "data.zarr"), mode="w")
        group.create_array("X", data=X32, chunks=(500, 3))
        group.create_array("w", data=problem["sample_weight"], chunks=(700,))
        stores.append(group)
    except ImportError:
        pass
    for store in stores:
        streamed = start(problem, "diag", 5).fit(store["X"], sample_weight=store["w"])
        assert_same_fit(streamed, clean)
        assert_array_equal(streamed.predict(store["X"]), clean.predict(X32))
    stores[0].close()


def test_initialisation_runs_on_a_random_sample_of_rows(tmp_path, monkeypatch):
    monkeypatch.setattr(sampling, "INIT_SAMPLE_ROWS", 1000)
    problem = ref.sample_problem(7, 6000, 2, 3, "full")
    X = problem["X"]
    mapped = memmap_of(X, tmp_path / "X.npy")
    streamed = GaussianMixture(3, max_iter=0, random_state=11).fit(mapped)
    # the same draws by hand: the rows first, then k-means on them
    rng = np.random.RandomState(11)
    rows = np.unique(rng.randint(0, len(X), size=1000))
    by_hand = GaussianMixture(3, max_iter=0, random_state=rng).fit(X[rows])
    for name in ATTRIBUTES:
        assert_allclose(getattr(streamed, name), getattr(by_hand, name), rtol=1e-10,
                        err_msg=name)
    # the in-memory path samples the same rows: bitwise the same start
    in_memory = GaussianMixture(3, max_iter=0, random_state=11).fit(X)
    for name in ATTRIBUTES:
        assert_array_equal(getattr(in_memory, name), getattr(streamed, name), err_msg=name)


def test_bad_streamed_input_is_named(tmp_path):
    X = np.random.default_rng(8).normal(size=(2000, 3))
    X[1500, 2] = np.nan
    mapped = memmap_of(X, tmp_path / "X.npy")
    given = dict(weights_init=[0.5, 0.5], means_init=[[0, 0, 0], [1, 1, 1]],
                 precisions_init=[np.eye(3)] * 2)
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at or after "
                                         r"row 1280\)"):     # the block (slot) of rows 1280-1535
        GaussianMixture(2, max_iter=2, **given).fit(mapped)
    with pytest.raises(ValueError, match=r"X contains NaN or infinity \(first at row 1500\)"):
        GaussianMixture(2, max_iter=2).fit(mapped)             # the initialisation sample
    good = memmap_of(X[:1000], tmp_path / "good.npy")
    for weights, message in [(-np.ones(1000), "non-negative"),
                             (np.ones(999), r"shape \(1000,\)"),
                             (np.full(1000, np.inf), "NaN or infinity"),
                             (np.zeros(1000), "sums to zero"),
                             (np.array(["a"] * 1000), "real numbers")]:
        with pytest.raises(ValueError, match=message):
            GaussianMixture(2).fit(good, sample_weight=memmap_of(weights, tmp_path / "w.npy"))
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(3).fit(memmap_of(X[:2], tmp_path / "two.npy"))
    with pytest.raises(ValueError, match="minimum of 1 is required"):
        GaussianMixture(1).fit(memmap_of(X[:0], tmp_path / "none.npy"))
    with pytest.raises(ValueError, match="Expected a 2-D array"):
        GaussianMixture(1).fit(RowSliced(np.zeros((4, 2, 2))))
    with pytest.raises(ValueError, match="real numbers"):
        GaussianMixture(1).fit(RowSliced(np.array([["a", "b"]] * 4)))
    fitted = GaussianMixture(2, random_state=0).fit(good)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting "
                                         "3 features as input"):
        fitted.predict(memmap_of(X[:10, :2], tmp_path / "narrow.npy"))


def test_prior_data_moments_from_a_streamed_source(tmp_path):
    from emfast import GaussianPrior

    problem = ref.sample_problem(10, 3000, 3, 2, "full", weighted=True)
    kw = dict(random_state=0, tol=0, max_iter=4, prior=GaussianPrior())
    clean = GaussianMixture(2, **kw).fit(problem["X"], sample_weight=problem["sample_weight"])
    streamed = GaussianMixture(2, **kw).fit(memmap_of(problem["X"], tmp_path / "X.npy"),
                                            sample_weight=RowSliced(problem["sample_weight"]))
    assert_same_fit(streamed, clean)


def test_missing_values_keep_memmaps_in_memory_and_refuse_other_streams(tmp_path):
    X = np.random.default_rng(9).normal(size=(600, 2))
    X[5, 1] = np.nan
    mapped = memmap_of(X, tmp_path / "X.npy")
    kw = dict(missing_values="marginalize", random_state=0, max_iter=5)
    a = GaussianMixture(2, **kw).fit(mapped)       # the in-memory path maps it, no copy
    b = GaussianMixture(2, **kw).fit(X)
    assert_array_equal(a.means_, b.means_)
    with pytest.raises(ValueError, match="missing_values='marginalize' needs X as a numpy "
                                         "array .* got RowSliced"):
        GaussianMixture(2, **kw).fit(RowSliced(X))


def test_which_inputs_stream(tmp_path):
    mapped = memmap_of(np.zeros((10, 2)), tmp_path / "X.npy")
    assert sources.is_streamed(mapped) and sources.is_streamed(np.asarray(mapped))
    assert sources.is_streamed(mapped[::2]) and sources.is_streamed(RowSliced(np.zeros((3, 2))))
    assert not sources.is_streamed(np.zeros((10, 2)))
    assert not sources.is_streamed([[1.0, 2.0]])
    assert sources.is_block_sequence([np.zeros((3, 2))]) and sources.is_block_sequence(
        (np.zeros((3, 2)), RowSliced(np.zeros((1, 2)))))
    assert not sources.is_block_sequence([]) and not sources.is_block_sequence(np.zeros((3, 2)))
    pd = pytest.importorskip("pandas")
    assert not sources.is_streamed(pd.DataFrame(np.zeros((3, 2))))


def _tree_reference(values, width):
    """The fixed tree by its definition, in plain Python floats."""
    while len(values) > 1:
        groups = [values[i:i + width] for i in range(0, len(values), width)]
        values = []
        for group in groups:
            total = group[0]
            for v in group[1:]:
                total += v
            values.append(total)
    return values[0]


def test_tree_sum_edges_and_errors():
    from emfast._kernels import _gaussian
    from emfast._passes import tree_sum_rows

    assert_array_equal(tree_sum_rows(np.zeros((0, 4))), np.zeros(4))
    assert tree_sum_rows(np.zeros((5, 0))).shape == (0,)
    assert np.isnan(tree_sum_rows(np.array([[np.inf], [-np.inf]]))[0])   # no warning either
    with pytest.raises(ValueError, match="one value per column"):
        _gaussian.tree_sum(np.zeros((3, 2)), np.zeros(3), 8)
    with pytest.raises(ValueError, match="width must be at least 2"):
        _gaussian.tree_sum(np.zeros((3, 2)), np.zeros(2), 1)


@pytest.mark.parametrize("n", [1, 2, 7, 8, 9, 63, 64, 65, 255, 256, 257, 513, 1000])
def test_tree_sum_of_aligned_parts_is_the_whole_sum(n):
    from emfast._passes import TREE_WIDTH, Statistics, tree_sum_rows, tree_sum_statistics

    rng = np.random.default_rng(n)
    rows = rng.standard_normal((n, 3)) * 10.0 ** rng.integers(-8, 9, (n, 3))
    whole = tree_sum_rows(rows)
    for j in range(3):
        assert whole[j] == _tree_reference([float(v) for v in rows[:, j]], TREE_WIDTH)
        for width in (2, 3):
            assert tree_sum_rows(rows, width)[j] == _tree_reference(
                [float(v) for v in rows[:, j]], width)
    kept = rows.copy()
    tree_sum_rows(rows)
    assert_array_equal(rows, kept)          # the input is left alone unless overwrite=True
    # parts of width ** l rows summed apart, then by the same tree: the same bits
    for level in range(4):
        size = TREE_WIDTH ** level
        parts = [Statistics(loglik=0.0, nk=tree_sum_rows(rows[a:a + size]), s1=np.zeros((1, 1)),
                            s2=np.zeros(0), centres=np.zeros((1, 1)))
                 for a in range(0, n, size)]
        assert_array_equal(tree_sum_statistics(parts).nk, whole)


# --- half kernel chunks (emfast._passes.kernel_chunk_rows) ----------------------------------
@pytest.mark.parametrize("covariance_type", ["full", "tied", "VEV"])
def test_half_kernel_chunks_agree_across_containers_and_threads(covariance_type, tmp_path):
    # 12 features: the full and tied kernels run half chunks; every container's pass over the
    # same rows (memmap, dask, any thread count) uses the same ones, so the bits agree
    from emfast._covariance import get_covariance
    from emfast._passes import kernel_chunk_rows
    from emfast.families import StudentT

    assert kernel_chunk_rows(get_covariance("full"), 12, CHUNK_SIZE) == CHUNK_SIZE // 2
    assert kernel_chunk_rows(get_covariance("diag"), 12, CHUNK_SIZE) == CHUNK_SIZE
    assert kernel_chunk_rows(get_covariance("full"), 3, CHUNK_SIZE) == CHUNK_SIZE
    rng = np.random.default_rng(5)
    n = 3 * CHUNK_SIZE * 9 + CHUNK_SIZE // 2 + 1      # a partial last chunk and half chunk
    X = rng.normal(size=(n, 12)) + rng.integers(0, 3, (n, 1)) * 2.5
    w = rng.uniform(0.5, 2.0, n)
    path = tmp_path / "x.npy"
    np.save(path, X)
    kw = dict(covariance_type=covariance_type, random_state=0, max_iter=4, tol=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fits = [GaussianMixture(3, n_threads=t, **kw).fit(data, sample_weight=w)
                for t, data in ((1, X), (3, X), (2, np.load(path, mmap_mode="r")))]
        t_fits = [MixtureModel(StudentT("full"), 3, random_state=0, max_iter=3,
                               tol=0, n_threads=t).fit(data)
                  for t, data in ((1, X), (2, np.load(path, mmap_mode="r")))]
    for fit in fits[1:]:
        assert fit.lower_bounds_ == fits[0].lower_bounds_
        assert_array_equal(fit.covariances_, fits[0].covariances_)
    assert_array_equal(fits[2].score_samples(X), fits[0].score_samples(X))
    assert t_fits[1].lower_bounds_ == t_fits[0].lower_bounds_
    # and the bound of EM never decreases
    assert np.all(np.diff(fits[0].lower_bounds_) >= -1e-12)
