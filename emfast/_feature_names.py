"""Column names of dataframe input: remembered at fit, checked at predict.

scikit-learn estimators fitted on a dataframe with string column names store
them in ``feature_names_in_`` and refuse later input whose names differ; the
messages below use scikit-learn's phrasing so code (and
``check_dataframe_column_names_consistency``) matching them keeps working.
"""
import warnings

import numpy as np

_LISTED = 5   # names listed per message before "..."


def feature_names(X):
    """The string column names of ``X`` as an object array, or None.

    Parameters
    ----------
    X : array-like
        Anything with a ``columns`` attribute (pandas, polars, ...) may carry
        names; other inputs have none.

    Returns
    -------
    names : ndarray of object or None
        None when there are no columns or none of them is a string.

    Raises
    ------
    TypeError
        If some but not all column names are strings.
    """
    columns = getattr(X, "columns", None)
    if columns is None or not hasattr(X, "shape"):
        return None
    names = np.asarray(list(columns), dtype=object)
    is_str = np.array([isinstance(n, str) for n in names], dtype=bool)
    if names.size == 0 or not is_str.any():
        return None
    if not is_str.all():
        kinds = sorted({type(n).__name__ for n in names})
        raise TypeError("Feature names are only supported if all input features have string "
                        f"names, but your input has {kinds} as feature name / column name "
                        "types. Convert all column names to strings (e.g. "
                        "X.columns = X.columns.astype(str)).")
    return names


def _listing(title, names):
    shown = [f"- {n}" for n in names[:_LISTED]] + (["- ..."] if len(names) > _LISTED else [])
    return title + "\n" + "\n".join(shown) + "\n"


def check_feature_names(fitted_names, X, owner):
    """Compare the names of ``X`` with those seen by ``fit``.

    Parameters
    ----------
    fitted_names : ndarray of object or None
        ``feature_names_in_`` of the fitted estimator, or None.
    X : array-like
        The input of a predict-time method, before conversion to an array.
    owner : str
        The estimator's class name, for the messages.

    Returns
    -------
    None

    Raises
    ------
    ValueError
        If both have names and they differ (unseen, missing or reordered).

    Warns
    -----
    UserWarning
        If only one of the two has names.
    """
    names = feature_names(X)
    if fitted_names is None and names is None:
        return
    if fitted_names is None:
        warnings.warn(f"X has feature names, but {owner} was fitted without feature names",
                      UserWarning, stacklevel=4)
        return
    if names is None:
        warnings.warn(f"X does not have valid feature names, but {owner} was fitted with "
                      "feature names", UserWarning, stacklevel=4)
        return
    if len(names) == len(fitted_names) and (names == fitted_names).all():
        return
    message = "The feature names should match those that were passed during fit.\n"
    unseen = sorted(set(names) - set(fitted_names))
    missing = sorted(set(fitted_names) - set(names))
    if unseen:
        message += _listing("Feature names unseen at fit time:", unseen)
    if missing:
        message += _listing("Feature names seen at fit time, yet now missing:", missing)
    if not unseen and not missing:
        message += "Feature names must be in the same order as they were in fit.\n"
    raise ValueError(message)
