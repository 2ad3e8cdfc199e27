"""Every instruction-set build of the vector kernels against the numpy reference.

The kernels are compiled once per instruction set (AVX-512, AVX2, baseline) and
the best one the CPU runs is used; EMFAST_SIMD lowers that choice, so each build
this machine can run is checked here, each in its own process (the choice is
made once, at import).
"""
import os
import subprocess
import sys

import pytest

from emfast._kernels import _gaussian

BUILDS = _gaussian.SIMD_BUILDS[::-1]

CHILD = r"""
import sys
import numpy as np
sys.path.insert(0, sys.argv[1])
import _reference as ref
from emfast._covariance import COVARIANCE_TYPES
from emfast._kernels import _gaussian
from emfast._passes import GaussianParams, GaussianPass

print(_gaussian.simd_build())
for seed, (n, d, k) in enumerate([(700, 3, 4), (300, 17, 5), (513, 33, 3)]):
    for cov in COVARIANCE_TYPES:
        for dtype, rtol in ((np.float64, 1e-11), (np.float32, 2e-4)):
            rng = np.random.default_rng(seed)
            p = ref.sample_problem(rng, n, d, k, cov, dtype=dtype, weighted=True)
            params = GaussianParams(p["weights"], p["means"], p["precisions_cholesky"])
            for use_blas in (False, True):
                stats = GaussianPass(n, d, k, dtype, COVARIANCE_TYPES[cov], 2,
                                     use_blas=use_blas).statistics(
                    p["X"], p["sample_weight"], params)
                means = params.means.astype(dtype).astype(np.float64)
                prec = params.precisions_cholesky.astype(dtype).astype(np.float64)
                X = p["X"].astype(np.float64)
                log_norm, resp = ref.e_step(X, params.weights, means, prec, cov)
                w = p["sample_weight"].astype(np.float64)
                r = resp * w[:, None]
                z = X[:, None, :] - means[None]
                s1 = np.einsum("nk,nkd->kd", r, z)
                for name, got, want in (("nk", stats.nk, r.sum(0)), ("s1", stats.s1, s1),
                                        ("loglik", stats.loglik, w @ log_norm)):
                    scale = np.abs(want).max()
                    assert np.allclose(got, want, rtol=rtol, atol=rtol * scale), (
                        name, cov, dtype, use_blas)
print("ok")
"""


def _runs(build):
    return BUILDS.index(build) >= BUILDS.index(_gaussian.simd_build())


def test_default_build_is_named():
    assert _gaussian.simd_build() in BUILDS


@pytest.mark.parametrize("build", BUILDS)
def test_build_matches_reference(build, tmp_path):
    if not _runs(build):
        pytest.skip(f"this CPU cannot run the {build} build")
    tests_dir = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, EMFAST_SIMD=build)
    out = subprocess.run([sys.executable, "-c", CHILD, tests_dir], cwd=tmp_path, env=env,
                         text=True, capture_output=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == [build, "ok"]


def test_unknown_build_name_warns_and_is_ignored(tmp_path):
    code = "from emfast._kernels import _gaussian; print(_gaussian.simd_build())"

    def child(**variables):
        env = {k: v for k, v in os.environ.items() if k != "EMFAST_SIMD"}
        out = subprocess.run([sys.executable, "-W", "always", "-c", code], cwd=tmp_path,
                             env=dict(env, **variables), text=True, capture_output=True,
                             timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return out

    best = child().stdout.strip()
    out = child(EMFAST_SIMD="sse4")
    assert out.stdout.strip() == best
    assert ("EMFAST_SIMD='sse4' is ignored: it must be one of baseline, avx2, avx512; "
            f"using the {best} build") in out.stderr
