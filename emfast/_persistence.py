"""Saving and loading fitted estimators without pickle.

``estimator.save(path)`` writes, and :func:`load` reads, one ``.npz`` file
(a zip archive of ``.npy`` arrays, readable with ``numpy.load(path,
allow_pickle=False)``).  Loading never executes code from the file.

Format (``format_version`` 2)
-----------------------------
Archive members:

``metadata``
    UTF-8 JSON text stored as a ``uint8`` array, holding

    - ``format``: ``"emfast-model"``; ``format_version``: 2;
      ``emfast_version``: the writer's version; ``class``: e.g.
      ``"GaussianMixture"``;
    - ``params``: the constructor parameters (``get_params()``).  Plain JSON
      values are stored as they are; an array-like value as
      ``{"array": "param.<name>"}`` pointing at an archive member; a
      ``numpy.random.RandomState`` as ``{"random_state": {...}}`` with its
      MT19937 key array in the member ``param.<name>.keys``; one of emfast's
      public dataclasses (``GaussianPrior``) as ``{"dataclass": class name,
      "fields": {...}}``, its fields encoded the same way; an emission family
      (``emfast.families``) as ``{"family": name, "config": {...}}``; a dict
      (a prior, ``params_init``) as ``{"tree": ...}`` (below);
    - ``fitted``: fitted attribute name -> kind (``ndarray``, ``float``,
      ``int``, ``bool``, ``float_list``, ``scalar``, ``scalar_list``,
      ``str_array``, ``ndarray_tuple/<n>``, ``tree/<json>``); its value is the member
      ``fitted.<name>`` (scalars as 0-d arrays; ``scalar`` a numpy scalar
      kept in its dtype, such as the ``numpy.float32`` ``lower_bound_`` of a
      float32 fit, ``scalar_list`` a list of them; ``str_array``, an object array of strings such
      as ``feature_names_in_``, as a unicode array; a tuple of ``n`` arrays
      as the members ``fitted.<name>.0`` ... ``fitted.<name>.<n-1>``; a
      nested dict such as ``params_`` as ``tree/`` followed by its JSON
      skeleton: ``{"dict": {key: node}}``, ``{"list": [node, ...]}``,
      ``{"value": plain JSON}`` or ``{"array": member name}``, each array
      the member named by its path, e.g. ``fitted.params_.rates``);
    - ``arrays``: member name -> ``{"dtype", "shape"}``;
    - ``sha256``: digest of the metadata without this field (canonical JSON,
      sorted keys) followed, per member in sorted order, by its name, dtype,
      shape and C-ordered bytes.

``param.*``, ``fitted.*``
    The arrays.

The digest detects corruption and accidental edits; it is not a signature
(anyone can recompute it), so it does not authenticate the file's origin.
Safety against malicious files comes from never unpickling: only arrays of
numeric or unicode dtypes and JSON are read.  Files with a higher ``format_version`` are
refused.

Earlier files
-------------
Every released format loads.  A file of an older ``format_version`` is
first brought to the current layout by the functions in ``_MIGRATIONS``
(one per version step, applied in turn); a parameter that a class gained
after files of it were written is filled in from ``PARAMETERS_ADDED``
with the value that reproduces the behaviour of the emfast that wrote the
file.  Version 1 files exist in two layouts: the first (emfast's first
GaussianMixture) lacks the ``prior`` and ``missing_values`` parameters; files
written before ``accelerate`` existed lack it.

Extending the format: a new estimator class (registered by
``emfast/__init__.py``, see ``emfast._persistable``) or a new
``covariance_type`` needs nothing here; a new
constructor parameter adds an entry to ``PARAMETERS_ADDED``; a new kind
of fitted attribute adds an encoder and a decoder.  Only a change of the
meaning of existing entries needs a new ``format_version`` and a
migration.  ``tests/data/`` keeps a file of every format (and layout) with
the predictions it must reproduce.
"""
import dataclasses
import hashlib
import io
import json
import numbers
import os
import tempfile
import zipfile
import zlib

import numpy as np

from ._persistable import estimator_classes, is_registered, registered
from ._version import __version__

FORMAT_NAME = "emfast-model"
FORMAT_VERSION = 2
_METADATA = "metadata"

# Constructor parameters added after files of the class were first written: a file
# without one loads with this value (the behaviour of the emfast that wrote it).
PARAMETERS_ADDED = {
    "GaussianMixture": {"prior": None, "missing_values": "error", "accelerate": None,
                        "e_step": "full", "sparse_refresh": 10, "sparse_components": 8},
}


def _from_version_1(metadata):
    """Version 1 -> 2.  Version 2 adds the ``scalar`` and ``scalar_list`` kinds, so a
    version 1 file already is a valid version 2 file (its floats stay Python floats)."""
    return metadata


# version -> function bringing a file of that version's metadata to the next version
_MIGRATIONS = {1: _from_version_1}


class ModelFileError(ValueError):
    """A file is not a valid emfast model file (or not one this version reads)."""


# --- encoding -----------------------------------------------------------------------
def _encode_param(name, value, arrays):
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.random.RandomState):
        kind, keys, pos, has_gauss, cached = value.get_state(legacy=True)
        arrays[f"param.{name}.keys"] = np.asarray(keys, dtype=np.uint32)
        return {"random_state": {"bit_generator": kind, "pos": int(pos),
                                 "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}}
    if dataclasses.is_dataclass(value) and is_registered(type(value)):   # e.g. GaussianPrior
        return {"dataclass": type(value).__name__,
                "fields": {f.name: _encode_param(f"{name}.{f.name}", getattr(value, f.name),
                                                 arrays)
                           for f in dataclasses.fields(value)}}
    family = _encode_family(value)
    if family is not None:
        return family
    if isinstance(value, dict):     # e.g. MixtureModel's prior and params_init
        return {"tree": _encode_tree(value, f"param.{name}", arrays)}
    if isinstance(value, (np.ndarray, list, tuple)):
        array = np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise ValueError(f"Cannot save parameter {name!r}: arrays must be numeric; "
                             f"got dtype {array.dtype}.")
        arrays[f"param.{name}"] = array
        return {"array": f"param.{name}"}
    raise ValueError(f"Cannot save parameter {name!r} of type {type(value).__name__}: "
                     "only None, bool, numbers, strings, arrays, RandomState and emfast's "
                     "parameter objects (e.g. GaussianPrior) are supported.")


def _encode_family(value):
    """An emission family (emfast.families) as its name and JSON config, else None."""
    from .families import FAMILIES, Family

    if isinstance(value, Family) and FAMILIES.get(value.name) is type(value):
        return {"family": value.name, "config": value.get_config()}
    return None


def _encode_tree(value, prefix, arrays):
    """Nested dicts and lists of arrays and plain values (e.g. MixtureModel's
    ``params_``) as JSON, each array a member named by its path."""
    if isinstance(value, dict):
        if not all(isinstance(key, str) for key in value):
            raise ValueError(f"Cannot save {prefix!r}: dictionary keys must be strings.")
        return {"dict": {key: _encode_tree(v, f"{prefix}.{key}", arrays)
                         for key, v in value.items()}}
    if isinstance(value, (list, tuple)) and any(isinstance(v, (np.ndarray, dict, list, tuple))
                                                for v in value):
        return {"list": [_encode_tree(v, f"{prefix}.{i}", arrays) for i, v in enumerate(value)]}
    if value is None or isinstance(value, (bool, str)):
        return {"value": value}
    if isinstance(value, (numbers.Real, np.bool_)) and np.ndim(value) == 0:
        return {"value": bool(value) if isinstance(value, (bool, np.bool_)) else
                int(value) if isinstance(value, numbers.Integral) else float(value)}
    array = np.asarray(value)
    if array.dtype.kind not in "biuf":
        raise ValueError(f"Cannot save {prefix!r}: arrays must be numeric; got {array.dtype}.")
    arrays[prefix] = array
    return {"array": prefix}


def _decode_tree(node, members):
    if not isinstance(node, dict) or len(node) != 1:
        raise ModelFileError(f"Unknown nested value {node!r} in the model file.")
    (kind, body), = node.items()
    if kind == "dict" and isinstance(body, dict):
        return {key: _decode_tree(v, members) for key, v in body.items()}
    if kind == "list" and isinstance(body, list):
        return [_decode_tree(v, members) for v in body]
    if kind == "value":
        return body
    if kind == "array":
        return members[body]
    raise ModelFileError(f"Unknown nested value {node!r} in the model file.")




def _fitted_attributes(estimator):
    """Public fitted attributes (``name_``) in name order."""
    return sorted(name for name in vars(estimator)
                  if name.endswith("_") and not name.startswith("_"))


def _encode_fitted(name, value, arrays):
    if isinstance(value, dict):      # e.g. MixtureModel's params_
        return "tree/" + json.dumps(_encode_tree(value, f"fitted.{name}", arrays),
                                    sort_keys=True)
    if isinstance(value, tuple) and value and all(isinstance(v, np.ndarray) for v in value):
        for i, part in enumerate(value):     # e.g. a Dirichlet process's two concentrations
            _encode_fitted(f"{name}.{i}", part, arrays)
        return f"ndarray_tuple/{len(value)}"
    if isinstance(value, np.ndarray) and value.dtype == object \
            and all(isinstance(v, str) for v in value.ravel()):
        kind, array = "str_array", value.astype(str)      # e.g. feature_names_in_
    elif isinstance(value, np.ndarray):
        kind, array = "ndarray", value
    elif isinstance(value, (bool, np.bool_)):
        kind, array = "bool", np.asarray(value, dtype=bool)
    elif isinstance(value, np.floating):
        kind, array = "scalar", np.asarray(value)       # keeps float32 a float32
    elif isinstance(value, list) and value and all(isinstance(v, np.floating) for v in value) \
            and len({v.dtype for v in value}) == 1:
        kind, array = "scalar_list", np.asarray(value).reshape(-1)
    elif isinstance(value, numbers.Integral):
        kind, array = "int", np.asarray(value, dtype=np.int64)
    elif isinstance(value, numbers.Real):
        kind, array = "float", np.asarray(value, dtype=np.float64)
    elif isinstance(value, list) and all(isinstance(v, numbers.Real) for v in value):
        kind, array = "float_list", np.asarray(value, dtype=np.float64).reshape(-1)
    else:
        raise ValueError(f"Cannot save fitted attribute {name!r} of type "
                         f"{type(value).__name__}.")
    if array.dtype.kind not in "biufU":
        raise ValueError(f"Cannot save fitted attribute {name!r} of dtype {array.dtype}.")
    arrays[f"fitted.{name}"] = array
    return kind


def _digest(metadata, arrays):
    """SHA-256 over the canonical metadata and every array's name, dtype, shape, bytes."""
    h = hashlib.sha256()
    body = {k: v for k, v in metadata.items() if k != "sha256"}
    h.update(json.dumps(body, sort_keys=True).encode("utf-8"))
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        h.update(f"\0{name}\0{array.dtype.str}\0{array.shape}\0".encode("utf-8"))
        h.update(array.tobytes())
    return h.hexdigest()


def save_estimator(estimator, file):
    """Write ``estimator`` (fitted or not) to ``file`` in the emfast model format.

    Parameters
    ----------
    estimator : emfast estimator
        Saved with its parameters and, if fitted, its fitted attributes.
    file : str, os.PathLike or binary file object
        Written exactly there (no ``.npz`` suffix is added).  A path is
        written to a temporary file first and then renamed, so an
        interrupted save never leaves a partial file under that name.

    Returns
    -------
    None
    """
    arrays = {}
    params = {name: _encode_param(name, value, arrays)
              for name, value in estimator.get_params().items()}
    fitted = {name: _encode_fitted(name, getattr(estimator, name), arrays)
              for name in _fitted_attributes(estimator)}
    metadata = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION,
        "emfast_version": __version__, "class": type(estimator).__name__,
        "params": params, "fitted": fitted,
        "arrays": {name: {"dtype": a.dtype.str, "shape": list(a.shape)}
                   for name, a in arrays.items()},
    }
    metadata["sha256"] = _digest(metadata, arrays)
    members = dict(arrays)
    members[_METADATA] = np.frombuffer(json.dumps(metadata, sort_keys=True).encode("utf-8"),
                                       dtype=np.uint8)
    if hasattr(file, "write"):
        np.savez(file, **members)
        return
    path = os.fspath(file)
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".emfast-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **members)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


# --- decoding -----------------------------------------------------------------------
def _read_members(file):
    """All archive members as arrays; any zip or npy damage becomes a ModelFileError."""
    what = file if isinstance(file, (str, os.PathLike)) else "the file"
    if not zipfile.is_zipfile(file):
        raise ModelFileError(f"{what} is not an emfast model file: not a .npz (zip) archive, "
                             "or truncated.")
    if hasattr(file, "seek"):
        file.seek(0)
    try:
        with np.load(file, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, KeyError) as exc:
        raise ModelFileError(f"{what} is corrupted or truncated ({exc}).") from exc


def _read_metadata(members):
    raw = members.pop(_METADATA, None)
    if raw is None:
        raise ModelFileError("Not an emfast model file: the 'metadata' member is missing.")
    try:
        metadata = json.loads(raw.astype(np.uint8).tobytes().decode("utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"The model file's metadata is not valid JSON ({exc}).") from exc
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT_NAME:
        raise ModelFileError("Not an emfast model file: the metadata does not name the "
                             f"{FORMAT_NAME!r} format.")
    version = metadata.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ModelFileError(f"Invalid format_version {version!r} in the model file.")
    if version > FORMAT_VERSION:
        raise ModelFileError(
            f"The model file has format version {version} (written by emfast "
            f"{metadata.get('emfast_version', '?')}); this emfast reads versions up to "
            f"{FORMAT_VERSION}. Upgrade emfast to load it.")
    for key, kind in (("class", str), ("params", dict), ("fitted", dict), ("arrays", dict),
                      ("sha256", str)):
        if not isinstance(metadata.get(key), kind):
            raise ModelFileError(f"The model file's metadata lacks a valid {key!r} entry.")
    return metadata


def _migrated(metadata):
    """The metadata of a file of any released version in the current layout (after its
    digest was checked: the digest covers the metadata as written)."""
    metadata = dict(metadata)
    for version in range(metadata["format_version"], FORMAT_VERSION):
        metadata = _MIGRATIONS[version](metadata)
        metadata["format_version"] = version + 1
    params = dict(metadata["params"])
    for name, value in PARAMETERS_ADDED.get(metadata["class"], {}).items():
        params.setdefault(name, value)
    metadata["params"] = params
    return metadata


def _check_integrity(metadata, members):
    declared = metadata["arrays"]
    if set(declared) != set(members):
        missing = sorted(set(declared) - set(members))
        extra = sorted(set(members) - set(declared))
        raise ModelFileError(f"The model file's arrays do not match its metadata (missing "
                             f"{missing}, unexpected {extra}): it was modified or damaged.")
    for name, spec in declared.items():
        array = members[name]
        if array.dtype.str != spec.get("dtype") or list(array.shape) != spec.get("shape"):
            raise ModelFileError(f"Array {name!r} has dtype {array.dtype.str} and shape "
                                 f"{list(array.shape)}, but the metadata declares "
                                 f"{spec.get('dtype')} and {spec.get('shape')}.")
        if array.dtype.kind not in "biufU":
            raise ModelFileError(f"Array {name!r} has unsupported dtype {array.dtype}.")
    if _digest(metadata, members) != metadata["sha256"]:
        raise ModelFileError("The model file's SHA-256 digest does not match its content: "
                             "the file was modified or corrupted.")


def _decode_param(name, value, members):
    if isinstance(value, dict) and set(value) == {"family", "config"}:
        from .families import FAMILIES, get_family

        if value["family"] not in FAMILIES:
            raise ModelFileError(f"Parameter {name!r} names an unknown family "
                                 f"{value['family']!r}.")
        return get_family(value["family"], value["config"])
    if isinstance(value, dict) and set(value) == {"tree"}:
        return _decode_tree(value["tree"], members)
    if isinstance(value, dict) and set(value) == {"dataclass", "fields"}:
        cls = registered(value["dataclass"])
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ModelFileError(f"Parameter {name!r} names an unknown class "
                                 f"{value['dataclass']!r}.")
        return cls(**{field: _decode_param(f"{name}.{field}", v, members)
                      for field, v in value["fields"].items()})
    if isinstance(value, dict) and set(value) == {"array"}:
        return members[value["array"]]
    if isinstance(value, dict) and set(value) == {"random_state"}:
        spec = value["random_state"]
        state = np.random.RandomState()
        state.set_state((spec["bit_generator"], members[f"param.{name}.keys"], spec["pos"],
                         spec["has_gauss"], spec["cached_gaussian"]))
        return state
    if isinstance(value, dict) or isinstance(value, list):
        raise ModelFileError(f"Parameter {name!r} has an unknown encoding in the model file.")
    return value


_FITTED_DECODERS = {
    "ndarray": lambda a: a,
    "float": lambda a: float(a),
    "int": lambda a: int(a),
    "bool": lambda a: bool(a),
    "float_list": lambda a: [float(v) for v in a],
    "scalar": lambda a: a[()],
    "scalar_list": lambda a: list(a),
    "str_array": lambda a: a.astype(object),
}


def _decode_fitted(name, kind, members):
    if isinstance(kind, str) and kind.startswith("tree/"):
        try:
            skeleton = json.loads(kind[len("tree/"):])
        except ValueError as exc:
            raise ModelFileError(f"Fitted attribute {name!r} has an invalid layout.") from exc
        return _decode_tree(skeleton, members)
    if isinstance(kind, str) and kind.startswith("ndarray_tuple/"):
        count = int(kind.split("/", 1)[1])
        return tuple(members[f"fitted.{name}.{i}"] for i in range(count))
    decode = _FITTED_DECODERS.get(kind)
    if decode is None:
        raise ModelFileError(f"Fitted attribute {name!r} has an unknown kind {kind!r}.")
    return decode(members[f"fitted.{name}"])


def load(file):
    """Load an estimator written by ``save``.

    Parameters
    ----------
    file : str, os.PathLike or binary file object
        A file written by an emfast estimator's ``save`` method.

    Returns
    -------
    estimator : emfast estimator
        Equal to the saved one: same class, parameters and fitted attributes
        (arrays bit for bit).  Array-like parameters come back as ndarrays and
        numpy scalar parameters as Python numbers.

    Raises
    ------
    ModelFileError
        (a ``ValueError``) if the file is not a zip archive, is truncated or
        corrupted, lacks the metadata, has a format version newer than this
        emfast's, names a class emfast does not know, or fails the SHA-256
        check.  Files of every earlier format version load.

    Examples
    --------
    >>> import io
    >>> import numpy as np
    >>> from emfast import GaussianMixture, load
    >>> X = np.array([[0.0, 1.0], [0.5, 1.5], [5.0, 6.0], [5.5, 6.5]])
    >>> buffer = io.BytesIO()
    >>> GaussianMixture(2, random_state=0).fit(X).save(buffer)
    >>> model = load(io.BytesIO(buffer.getvalue()))
    >>> model.predict(X).tolist() == model.predict(X[::-1]).tolist()[::-1]
    True
    """
    if isinstance(file, (bytes, bytearray)):
        file = io.BytesIO(file)
    members = _read_members(file)
    metadata = _read_metadata(members)
    _check_integrity(metadata, members)
    metadata = _migrated(metadata)
    classes = estimator_classes()
    cls = classes.get(metadata["class"])
    if cls is None:
        raise ModelFileError(f"The model file holds a {metadata['class']!r}, which this emfast "
                             f"cannot load (known: {sorted(classes)}).")
    known = set(cls._param_names())
    if set(metadata["params"]) != known:
        raise ModelFileError(f"The model file's parameters {sorted(metadata['params'])} do not "
                             f"match {cls.__name__}'s {sorted(known)}.")
    try:
        estimator = cls(**{name: _decode_param(name, value, members)
                           for name, value in metadata["params"].items()})
        for name, kind in metadata["fitted"].items():
            if not name.endswith("_") or name.startswith("_"):
                raise ModelFileError(f"Invalid fitted attribute name {name!r}.")
            setattr(estimator, name, _decode_fitted(name, kind, members))
    except (KeyError, TypeError, ValueError) as exc:
        if isinstance(exc, ModelFileError):
            raise
        raise ModelFileError(f"The model file's metadata is inconsistent ({exc!r}).") from exc
    return estimator
