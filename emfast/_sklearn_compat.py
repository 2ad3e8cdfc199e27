"""scikit-learn interoperability without importing scikit-learn at runtime.

scikit-learn (1.6 and later) asks an estimator for its ``__sklearn_tags__``
and ``__sklearn_is_fitted__``; both are called only by scikit-learn itself,
so building the ``Tags`` object imports scikit-learn lazily, inside the
method.  ``import emfast`` never imports scikit-learn.
"""


class SklearnCompatMixin:
    """Estimator tags and the fitted-state hook scikit-learn's tools read.

    Subclasses set ``_estimator_type`` (also read by scikit-learn before
    1.6) and may override ``_tags_update`` to change individual tags.
    """

    _estimator_type = None

    def _tags_update(self, tags):
        """Adjust the default tags in place (hook for subclasses)."""

    def __sklearn_tags__(self):
        """The scikit-learn ``Tags`` describing this estimator.

        Only scikit-learn calls this (``sklearn.utils.get_tags``), so
        scikit-learn is imported here rather than at module level.

        Returns
        -------
        tags : sklearn.utils.Tags
        """
        from sklearn.utils import InputTags, Tags, TargetTags

        tags = Tags(estimator_type=self._estimator_type,
                    target_tags=TargetTags(required=False),
                    input_tags=InputTags())
        self._tags_update(tags)
        return tags

    def __sklearn_is_fitted__(self):
        """Whether ``fit`` has completed (used by ``check_is_fitted``).

        Returns
        -------
        fitted : bool
        """
        return hasattr(self, "converged_")
