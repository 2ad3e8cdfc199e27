"""Warnings and errors emfast raises."""


class ConvergenceWarning(UserWarning):
    """EM stopped at max_iter before the lower bound changed by less than tol."""


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before fit."""
