"""emfast: fast, trustworthy expectation-maximisation for Gaussian mixtures."""

__version__ = "0.1.0"

from ._exceptions import ConvergenceWarning, NotFittedError
from ._gaussian_mixture import GaussianMixture
from ._config import show_config

__all__ = ["GaussianMixture", "ConvergenceWarning", "NotFittedError", "show_config",
           "__version__"]
