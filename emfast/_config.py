"""emfast.show_config(): what this installation runs with."""
import platform


def show_config():
    """Print emfast's version, OpenMP status, default thread count, SIMD build and BLAS.

    Returns
    -------
    None
    """
    import numpy
    import scipy

    from ._version import __version__
    from ._kernels import _gaussian, _openmp

    print(f"emfast {__version__}")
    print(f"python {platform.python_version()} ({platform.machine()}), "
          f"numpy {numpy.__version__}, scipy {scipy.__version__}")
    print(f"OpenMP enabled: {_openmp.openmp_enabled()}")
    print(f"default threads: {_openmp.openmp_max_threads()}")
    print(f"SIMD kernels: {_gaussian.simd_build()}")
    try:
        from threadpoolctl import threadpool_info
    except ImportError:  # pragma: no cover
        print("BLAS: unknown (threadpoolctl not installed)")
        return
    for pool in threadpool_info():
        if pool.get("user_api") == "blas":
            print(f"BLAS: {pool.get('internal_api')} {pool.get('version')} "
                  f"({pool.get('architecture', '?')}, {pool.get('num_threads')} threads) "
                  f"from {pool.get('filepath')}")
