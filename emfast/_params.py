"""get_params / set_params / repr without a runtime dependency on scikit-learn."""
import inspect


class ParamsMixin:
    """The scikit-learn estimator parameter protocol (constructor arguments are params)."""

    @classmethod
    def _param_names(cls):
        signature = inspect.signature(cls.__init__)
        return sorted(p.name for p in signature.parameters.values()
                      if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def _set_init_params(self, arguments):
        """Store the constructor's ``arguments`` (its ``locals()``) unchanged under their
        own names, as scikit-learn asks: a new parameter needs only its signature entry."""
        for name in self._param_names():
            setattr(self, name, arguments[name])

    def get_params(self, deep=True):
        """Get the estimator's parameters.

        Parameters
        ----------
        deep : bool, default=True
            Ignored (emfast estimators hold no sub-estimators); kept for
            scikit-learn compatibility.

        Returns
        -------
        params : dict
            Parameter names mapped to their values.
        """
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params):
        """Set the estimator's parameters.

        Parameters
        ----------
        **params : dict
            Estimator parameters.

        Returns
        -------
        self : estimator instance
        """
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"Invalid parameter {name!r} for estimator "
                                 f"{type(self).__name__}. Valid parameters are: {valid!r}.")
            setattr(self, name, value)
        return self

    def __repr__(self):
        defaults = {p.name: p.default
                    for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = []
        for name in self._param_names():
            value = getattr(self, name)
            default = defaults.get(name, inspect.Parameter.empty)
            if value is default or (isinstance(value, (str, int, float, bool, type(None)))
                                    and type(value) is type(default) and value == default):
                continue
            changed.append(f"{name}={value!r}")
        return f"{type(self).__name__}({', '.join(changed)})"
