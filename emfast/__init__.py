"""emfast: fast, trustworthy expectation-maximisation for Gaussian mixtures."""

__version__ = "0.1.0"

from ._exceptions import ConvergenceWarning, NotFittedError
from ._gaussian_mixture import GaussianMixture
from ._config import show_config
from ._model_selection import CriterionTable, select_model
from ._persistence import ModelFileError, load

__all__ = ["GaussianMixture", "ConvergenceWarning", "NotFittedError", "show_config",
           "select_model", "CriterionTable", "load", "ModelFileError", "__version__"]
