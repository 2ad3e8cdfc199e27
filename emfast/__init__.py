"""emfast: fast, trustworthy expectation-maximisation for Gaussian mixtures."""

from ._version import __version__

from ._exceptions import ConvergenceWarning, NotFittedError
from ._gaussian_mixture import GaussianMixture
from ._hmm import GaussianHMM
from ._hmm_family import HMM
from ._hmm_models import CategoricalHMM, MultinomialHMM, PoissonHMM
from ._hmm_gmm import GMMHMM
from ._bayesian_mixture import BayesianGaussianMixture
from ._priors import GaussianPrior
from ._config import show_config
from ._model_selection import CriterionTable, select_model
from ._persistence import ModelFileError, load
from ._online import incremental_fit
from ._mixture_model import MixtureModel
from ._regression import MixtureOfRegressions
from . import families
from ._persistable import register as _register

# the classes model files may name (emfast.load refuses any other)
_register(GaussianMixture, GaussianHMM, BayesianGaussianMixture, MixtureModel, GaussianPrior,
          MixtureOfRegressions, HMM, CategoricalHMM, PoissonHMM, MultinomialHMM, GMMHMM)
del _register

__all__ = ["GaussianMixture", "GaussianHMM", "BayesianGaussianMixture", "GaussianPrior",
           "ConvergenceWarning", "NotFittedError", "show_config",
           "select_model", "CriterionTable", "load", "ModelFileError", "incremental_fit",
           "MixtureModel", "MixtureOfRegressions", "families", "HMM", "CategoricalHMM",
           "PoissonHMM", "MultinomialHMM", "GMMHMM",
           "__version__"]
