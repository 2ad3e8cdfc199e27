"""The classes a model file may name: emfast's exported estimators and parameter objects.

``emfast/__init__.py`` registers what it exports; the file format looks class
names up here and nowhere else, so a file can never name arbitrary code, and
the persistence layer needs to import neither the estimators nor the package.
"""

_CLASSES = {}


def register(*classes):
    """Allow model files to name these classes (by their ``__name__``)."""
    for cls in classes:
        _CLASSES[cls.__name__] = cls


def registered(name):
    """The registered class called ``name``, or None."""
    return _CLASSES.get(name)


def is_registered(cls):
    """Whether ``cls`` itself (not a subclass or a namesake) is registered."""
    return _CLASSES.get(cls.__name__) is cls


def estimator_classes():
    """The registered estimators (the classes with scikit-learn's ``get_params``), by name."""
    return {name: cls for name, cls in _CLASSES.items() if hasattr(cls, "get_params")}
