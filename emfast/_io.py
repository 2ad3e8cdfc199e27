"""Reading data files for the command line: .npy, .csv, .tsv and .parquet.

Every failure is a :class:`DataError` (a ``ValueError``) whose message is one
line naming the file and what is wrong, so the command line can print it as
is.  Numbers only: a non-numeric column is refused by name, never dropped or
coerced.
"""
import csv
import os

import numpy as np

READ_SUFFIXES = (".npy", ".csv", ".tsv", ".parquet")
WRITE_SUFFIXES = (".npy", ".csv", ".tsv")
_DELIMITERS = {".csv": ",", ".tsv": "\t"}
_SNIFF_ROWS = 1000   # rows scanned for non-numeric columns before the real read


class DataError(ValueError):
    """A data file cannot be read (or written) as asked; the message says why."""


def _suffix(path):
    return os.path.splitext(os.fspath(path))[1].lower()


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_readable(path):
    if not os.path.exists(path):
        raise DataError(f"{path}: no such file.")
    if os.path.isdir(path):
        raise DataError(f"{path}: is a directory, not a data file.")
    suffix = _suffix(path)
    if suffix not in READ_SUFFIXES:
        raise DataError(f"{path}: unknown data format {suffix or '(no suffix)'!r}; emfast "
                        f"reads {', '.join(READ_SUFFIXES)}.")
    return suffix


# --- sources: column names, a numeric check and a read of chosen columns ----------------
class _NpySource:
    def __init__(self, path):
        self.path = path
        with open(path, "rb") as handle:
            if handle.read(6) != b"\x93NUMPY":
                raise DataError(f"{path}: not a .npy file (no NumPy header).")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            first = str(exc).split(". ")[0]
            raise DataError(f"{path}: not a readable .npy array ({first}).") from None
        if array.ndim == 1:
            array = array.reshape(-1, 1)   # one feature
        if array.ndim != 2:
            raise DataError(f"{path}: expected a 2-D array (samples x features); got "
                            f"{array.ndim}-D with shape {array.shape}.")
        self.array = array
        self.names = None
        self.n_columns = array.shape[1]

    def check_numeric(self, indices):
        if self.array.dtype.kind not in "biuf":
            raise DataError(f"{self.path}: holds dtype {self.array.dtype}, not real numbers.")

    def read(self, indices, dtype):
        array = self.array
        if list(indices) != list(range(self.n_columns)):
            array = array[:, indices]
        # float32/float64 stay memory-mapped; other dtypes are converted by the model.
        if dtype is not None and array.dtype != dtype:
            array = array.astype(dtype)
        return array


class _TextSource:
    def __init__(self, path, delimiter):
        self.path, self.delimiter = path, delimiter
        self.data_start = 0   # physical lines before the first data row
        rows = []
        try:
            with open(path, newline="", encoding="utf-8-sig") as handle:
                for line_number, line in enumerate(handle, start=1):
                    if not line.strip() or line.lstrip().startswith("#"):
                        continue
                    rows.append(next(csv.reader([line], delimiter=delimiter)))
                    if len(rows) == 1:
                        self.data_start = line_number - 1
                    if len(rows) > _SNIFF_ROWS + 1:
                        break
        except UnicodeDecodeError:
            raise DataError(f"{path}: not a text file (it is not valid UTF-8).") from None
        if not rows:
            raise DataError(f"{path}: the file has no data rows.")
        first = [field.strip() for field in rows[0]]
        second = rows[1] if len(rows) > 1 else None
        # A header has a non-number where the next row has a number (or no numbers at all).
        self.has_header = (not any(_is_number(f) for f in first) or second is not None
                           and any(not _is_number(a) and _is_number(b)
                                   for a, b in zip(first, second)))
        if self.has_header:
            self.names = first
            self.data_start += 1
            rows = rows[1:]
            if not rows:
                raise DataError(f"{path}: the file has a header but no data rows.")
        else:
            self.names = None
        self.sample = rows[:_SNIFF_ROWS]
        self.n_columns = len(first)

    def label(self, index):
        if self.names is not None and self.names[index]:
            return repr(self.names[index])
        return f"#{index}"

    def check_numeric(self, indices):
        bad, missing = [], []
        for index in indices:
            fields = [row[index].strip() if index < len(row) else "" for row in self.sample]
            if any(field and not _is_number(field) for field in fields):
                bad.append(self.label(index))
            elif "" in fields:
                missing.append(self.label(index))
        if bad:
            raise DataError(f"{self.path}: column{'s' if len(bad) > 1 else ''} "
                            f"{', '.join(bad)} {'are' if len(bad) > 1 else 'is'} not numeric; "
                            "choose numeric columns with --columns.")
        if missing:
            raise DataError(f"{self.path}: column{'s' if len(missing) > 1 else ''} "
                            f"{', '.join(missing)} {'have' if len(missing) > 1 else 'has'} "
                            "missing values (empty fields).")

    def read(self, indices, dtype):
        try:
            return np.loadtxt(self.path, dtype=dtype or np.float64, delimiter=self.delimiter,
                              skiprows=self.data_start, usecols=list(indices), ndmin=2,
                              comments="#", quotechar='"', encoding="utf-8-sig")
        except ValueError as exc:
            raise DataError(f"{self.path}: {exc}") from None


class _ParquetSource:
    def __init__(self, path):
        try:
            import pyarrow.parquet as pq
        except ImportError:
            raise DataError(f"{path}: reading .parquet files needs pyarrow; install it with "
                            "pip install 'emfast[parquet]'.") from None
        self.path, self._pq = path, pq
        try:
            self.schema = pq.read_schema(path)
        except Exception as exc:   # pyarrow raises its own ArrowInvalid / OSError types
            raise DataError(f"{path}: not a readable Parquet file ({exc}).") from None
        self.names = list(self.schema.names)
        self.n_columns = len(self.names)

    def check_numeric(self, indices):
        import pyarrow.types as pat

        bad = [repr(self.names[i]) for i in indices
               if not (pat.is_integer(self.schema.types[i]) or pat.is_floating(self.schema.types[i])
                       or pat.is_boolean(self.schema.types[i]))]
        if bad:
            raise DataError(f"{self.path}: column{'s' if len(bad) > 1 else ''} {', '.join(bad)} "
                            f"{'are' if len(bad) > 1 else 'is'} not numeric; choose numeric "
                            "columns with --columns.")

    def read(self, indices, dtype):
        names = [self.names[i] for i in indices]
        try:
            table = self._pq.read_table(self.path, columns=names)
        except Exception as exc:
            raise DataError(f"{self.path}: could not read columns {names} ({exc}).") from None
        out = np.empty((table.num_rows, len(names)), dtype=dtype or np.float64)
        for j, name in enumerate(names):
            column = table.column(j)
            if column.null_count:
                raise DataError(f"{self.path}: column {name!r} has {column.null_count} "
                                "missing values.")
            out[:, j] = column.to_numpy()
        return out


def _open(path):
    suffix = _check_readable(path)
    if suffix == ".npy":
        return _NpySource(path)
    if suffix == ".parquet":
        return _ParquetSource(path)
    return _TextSource(path, _DELIMITERS[suffix])


def _column_index(source, token, option):
    """The index of column ``token``: a name (if the file has names) or an integer."""
    token = str(token).strip()
    if source.names is not None and token in source.names:
        return source.names.index(token)
    try:
        index = int(token)
    except ValueError:
        known = (", ".join(repr(n) for n in source.names) if source.names is not None
                 else f"none: the file has no header; use indices 0..{source.n_columns - 1}")
        raise DataError(f"{option}: {source.path} has no column {token!r} (columns: "
                        f"{known}).") from None
    if not -source.n_columns <= index < source.n_columns:
        raise DataError(f"{option}: column index {index} is out of range; {source.path} has "
                        f"{source.n_columns} column(s).")
    return index % source.n_columns


def column_names(path):
    """The column names of a data file, or None when it has none (no data is read).

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    names : list of str or None
    """
    names = _open(os.fspath(path)).names
    return None if names is None else list(names)


def is_data_file(text):
    """Whether ``text`` names a data file (by its suffix) rather than a column."""
    return _suffix(text) in READ_SUFFIXES


def read_data(path, columns=None, weight_column=None, dtype=None):
    """Read a samples x features matrix (and optionally a weight column) from a file.

    Parameters
    ----------
    path : str or os.PathLike
        A ``.npy`` file (memory-mapped, 1-D or 2-D), a ``.csv`` / ``.tsv``
        file (a header row is detected: the first row is a header when it has
        text where the next row has numbers) or a ``.parquet`` file (needs
        pyarrow).
    columns : sequence of str, default=None
        Feature columns, each a name or an integer index (negative counts
        from the end); None means every column except ``weight_column``.
    weight_column : str, default=None
        Name or index of a column holding sample weights.
    dtype : {None, numpy.float32, numpy.float64}, default=None
        None keeps a ``.npy`` file's dtype (no copy) and reads text and
        Parquet as float64.

    Returns
    -------
    X : ndarray of shape (n_samples, n_features)
        Memory-mapped (read-only) for a ``.npy`` file read whole.
    names : list of str or None
        The chosen columns' names, when the file has a header.
    weights : ndarray of shape (n_samples,) or None

    Raises
    ------
    DataError
        If the file is missing or unreadable, the format unknown, a column
        unknown or not numeric.
    """
    path = os.fspath(path)
    source = _open(path)
    weight = (None if weight_column is None
              else _column_index(source, weight_column, "--sample-weight"))
    if columns:
        features = [_column_index(source, c, "--columns") for c in columns]
        if len(set(features)) != len(features):
            raise DataError(f"--columns: a column is listed twice ({', '.join(columns)}).")
        if weight is not None and weight in features:
            raise DataError("--sample-weight: the weight column is also a feature column.")
    else:
        features = [i for i in range(source.n_columns) if i != weight]
    if not features:
        raise DataError(f"{path}: no feature columns left to fit.")
    wanted = features + ([weight] if weight is not None else [])
    source.check_numeric(wanted)
    names = None if source.names is None else [source.names[i] for i in features]
    if weight is None:
        return source.read(features, dtype), names, None
    block = source.read(wanted, dtype)
    return np.ascontiguousarray(block[:, :-1]), names, np.ascontiguousarray(block[:, -1])


class NamedColumns(np.ndarray):
    """An ndarray carrying column names as ``columns``, as a dataframe does.

    Estimators fitted on it store ``feature_names_in_`` (``emfast._feature_names``
    reads ``columns``) and check the names at predict time; ``numpy.asarray``
    turns it back into a plain view without copying.  Row slices keep the names.
    """

    columns = None

    def __array_finalize__(self, obj):
        self.columns = getattr(obj, "columns", None)


def with_names(X, names):
    """``X`` viewed as :class:`NamedColumns` when ``names`` are all non-empty strings.

    Parameters
    ----------
    X : ndarray of shape (n_samples, n_features)
    names : sequence of str or None

    Returns
    -------
    X : ndarray
        The same data (no copy), with ``columns`` when named.
    """
    if names is None or len(names) != X.shape[1] or not all(
            isinstance(n, str) and n for n in names):
        return X
    named = X.view(NamedColumns)
    named.columns = list(names)
    return named


def read_vector(path, dtype=None):
    """Read one column of numbers (e.g. sample weights) from a data file.

    Parameters
    ----------
    path : str or os.PathLike
        Any format :func:`read_data` reads, holding exactly one column.
    dtype : numpy dtype, default=None

    Returns
    -------
    values : ndarray of shape (n,)
    """
    path = os.fspath(path)
    source = _open(path)
    if source.n_columns != 1:
        raise DataError(f"{path}: expected a single column; found {source.n_columns}.")
    source.check_numeric([0])
    return np.asarray(source.read([0], dtype)).reshape(-1)


def check_output(path, suffixes, option):
    """Refuse an output path with an unsupported suffix or a missing folder, early.

    Parameters
    ----------
    path : str
    suffixes : sequence of str
        Accepted suffixes (lower case, with the dot).
    option : str
        The command-line option, for the message.

    Returns
    -------
    None
    """
    suffix = _suffix(path)
    if suffix not in suffixes:
        raise DataError(f"{option}: cannot write {suffix or '(no suffix)'!r} files; use "
                        f"{', '.join(suffixes)}.")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise DataError(f"{option}: the folder {folder} does not exist.")
    if os.path.isdir(path):
        raise DataError(f"{option}: {path} is a directory.")


def write_array(path, array, header=None):
    """Write a 1-D or 2-D array as ``.npy``, ``.csv`` or ``.tsv``.

    Parameters
    ----------
    path : str
    array : ndarray
    header : sequence of str, default=None
        Column names written as the first row of a text file.

    Returns
    -------
    None
    """
    suffix = _suffix(path)
    check_output(path, WRITE_SUFFIXES, "--out")
    if suffix == ".npy":
        np.save(path, array)
        return
    fmt = "%d" if array.dtype.kind in "biu" else "%.10g"
    delimiter = _DELIMITERS[suffix]
    np.savetxt(path, array, fmt=fmt, delimiter=delimiter, comments="",
               header="" if header is None else delimiter.join(header))
