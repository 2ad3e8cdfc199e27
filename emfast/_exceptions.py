"""Warnings and errors emfast raises.

emfast does not import scikit-learn (importing ``sklearn.exceptions`` costs
about half a second, twice emfast's own import).  Yet code written for
scikit-learn catches ``sklearn.exceptions.NotFittedError`` and filters
``sklearn.exceptions.ConvergenceWarning``.  So emfast raises through
:func:`interoperable`: when scikit-learn is already imported (the only case
in which anyone can be catching its classes) the raised class derives from
both emfast's and scikit-learn's class; otherwise it is emfast's own class.
``except emfast.NotFittedError`` and warning filters on
``emfast.ConvergenceWarning`` work in both cases.
"""
import sys


class ConvergenceWarning(UserWarning):
    """EM stopped at max_iter before the lower bound changed by less than tol."""


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before fit."""


class CollapsedComponentError(ValueError):
    """A component's covariance is not positive definite (a collapsed component).

    The message starts with scikit-learn's phrase for the same condition;
    ``components`` lists the components concerned.  Raised by an M-step, the
    EM driver reads ``params`` and ``lower_bound``: the parameters that
    iteration started from (the last valid ones) and their bound, or None.
    """

    def __init__(self, components):
        self.components = [int(k) for k in components]
        self.lower_bound = self.params = None
        which = ", ".join(str(k) for k in self.components)
        super().__init__(
            "Fitting the mixture model failed because some components have ill-defined "
            "empirical covariance (for instance caused by singleton or collapsed samples). "
            "Try to decrease the number of components, increase reg_covar, or scale the "
            f"input data. The covariance of component(s) {which} is not positive definite.")

    def __reduce__(self):
        return type(self), (self.components,), {"lower_bound": self.lower_bound,
                                                 "params": self.params}


# emfast class -> name of the scikit-learn class it mirrors (in sklearn.exceptions).
_SKLEARN_TWINS = {ConvergenceWarning: "ConvergenceWarning", NotFittedError: "NotFittedError"}
_BRIDGED = {}   # emfast class -> subclass that also derives from scikit-learn's


def _bridge_name(cls):
    return f"_Sklearn{cls.__name__}"


def _make_bridge(cls):
    import sklearn.exceptions

    twin = getattr(sklearn.exceptions, _SKLEARN_TWINS[cls])
    bridge = type(cls.__name__, (cls, twin), {"__doc__": cls.__doc__,
                                               "__module__": __name__})
    # A module-level name lets pickle find the class again (see __getattr__).
    bridge.__qualname__ = _bridge_name(cls)
    globals()[_bridge_name(cls)] = bridge
    return bridge


def interoperable(cls):
    """The class to raise for ``cls``: scikit-learn-catchable if sklearn is loaded.

    Parameters
    ----------
    cls : type
        :class:`ConvergenceWarning` or :class:`NotFittedError`.

    Returns
    -------
    cls : type
        ``cls`` itself, or a subclass of both ``cls`` and the scikit-learn
        class of the same name when ``sklearn`` is in ``sys.modules``.
    """
    if cls in _BRIDGED:
        return _BRIDGED[cls]
    if "sklearn" not in sys.modules:
        return cls
    try:
        bridge = _make_bridge(cls)
    except (ImportError, AttributeError):   # a partial or unusual sklearn: stay standalone
        return cls
    _BRIDGED[cls] = bridge
    return bridge


def __getattr__(name):
    # Unpickling a bridged instance in a fresh process recreates its class.
    for cls in _SKLEARN_TWINS:
        if name == _bridge_name(cls):
            _BRIDGED[cls] = _make_bridge(cls)
            return _BRIDGED[cls]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
