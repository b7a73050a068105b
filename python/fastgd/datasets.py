"""Data sets and the small tools around them.

- MNIST: `read_idx` reads its IDX files and `load_mnist` loads the training and test sets,
  downloading them into a cache on request. `load_builtin` loads the 10,000 MNIST test images
  that ship inside the package, so that something real can be trained offline.
- Your own data: `load_npz` and `load_csv`.
- Preparation: `train_test_split`, `one_hot` and `standardize`.

Problems with the data raise `DatasetError` (a `ValueError`), and missing files
`FileNotFoundError`, with a one-line message naming the file and, for text files, the line.
"""

import csv
import gzip
import hashlib
import http.client
import io
import math
import numbers
import os
import struct
import urllib.error
import urllib.request
import zipfile
import zlib
from pathlib import Path

import numpy as np

from .io import write_atomically

__all__ = [
    "BUILTIN_TRAIN_SIZE",
    "DOWNLOAD_TIMEOUT",
    "DatasetError",
    "MNIST_MIRRORS",
    "MNIST_SHA256",
    "load_builtin",
    "load_csv",
    "load_mnist",
    "load_npz",
    "one_hot",
    "read_idx",
    "standardize",
    "train_test_split",
]

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

MNIST_IMAGE_SHAPE = (28, 28)
MNIST_NUM_CLASSES = 10

# Base URLs that `load_mnist(download=True)` tries in order; each serves the four ``.gz`` files.
MNIST_MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/"]

# SHA-256 of the original MNIST distribution's ``.gz`` files; a download must match.
MNIST_SHA256 = {
    "train-images-idx3-ubyte.gz": "db8f937d487057fb14a9f0fbe97f0bc8d311ab41b750d41e1ff37c43b9e55e19",
    "train-labels-idx1-ubyte.gz": "51fc562b6747b666fbf6e84ce29d43c3cb5f9c388c664d43b33f02095313405a",
    "t10k-images-idx3-ubyte.gz": "cfeddb84311ecf044fc6a5b0f6ee8a24d265d4e83e388400186eb114082f4209",
    "t10k-labels-idx1-ubyte.gz": "e41c74e484045d39b462a7790a4af51301bd9b0b24f0154798d713ec68c45920",
}

# Seconds a download may wait for the server to connect or send more data.
DOWNLOAD_TIMEOUT = 30.0

BUILTIN_TRAIN_SIZE = 8000

_BUILTIN_DIR = Path(__file__).with_name("data")
_BUILTIN_IMAGES = "t10k-images-idx3-ubyte.gz"
_BUILTIN_LABELS = "t10k-labels-idx1-ubyte.gz"

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_UBYTE = 0x08
_IDX_PREAMBLE_SIZE = 4
_IDX_MAX_NDIM = 4

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first entry, or an empty zip

# Integer-valued floats beyond 2**53 are not all exact, so such labels stay floats.
_LARGEST_EXACT_INTEGER = 2.0**53

_CHUNK_SIZE = 1 << 20


class DatasetError(ValueError):
    """A data file or a data set is malformed, damaged, or could not be fetched.

    The message is one line that names the file (and the line, for text files).
    """


class _ChecksumMismatch(Exception):
    pass


def read_idx(path):
    """Read one IDX file (the format MNIST is distributed in).

    The file may be raw or gzip-compressed; compression is detected from
    the gzip magic bytes at the start of the file, not from its name.

    Parameters
    ----------
    path : str or os.PathLike
        The IDX file to read.

    Returns
    -------
    numpy.ndarray
        A read-only ``uint8`` array whose shape is the dimensions stored in
        the file header. It is a view of the file contents, not a copy.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    DatasetError
        If the file is not a well-formed unsigned-byte IDX file: the gzip
        stream is corrupt, the header is short or has a bad magic number,
        the data type is not unsigned byte (0x08), the number of dimensions
        is not 1 to 4, or the amount of data does not match the dimensions.
        The message starts with `path`.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        contents = file.read()

    if contents[: len(_GZIP_MAGIC)] == _GZIP_MAGIC:
        try:
            contents = gzip.decompress(contents)
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise DatasetError(f"{path}: corrupt gzip data: {error}") from error

    if len(contents) < _IDX_PREAMBLE_SIZE:
        raise DatasetError(
            f"{path}: file too short: {len(contents)} bytes, "
            f"an IDX header needs at least {_IDX_PREAMBLE_SIZE}"
        )
    (magic,) = struct.unpack(">I", contents[:_IDX_PREAMBLE_SIZE])
    if contents[:2] != b"\x00\x00":
        raise DatasetError(f"{path}: bad magic number 0x{magic:08x}: not an IDX file")
    type_code, ndim = contents[2], contents[3]
    if type_code != _IDX_UBYTE:
        raise DatasetError(
            f"{path}: unsupported IDX data type 0x{type_code:02X} "
            f"(only 0x{_IDX_UBYTE:02X}, unsigned byte, is supported)"
        )
    if not 1 <= ndim <= _IDX_MAX_NDIM:
        raise DatasetError(
            f"{path}: invalid number of dimensions {ndim} "
            f"(expected 1 to {_IDX_MAX_NDIM})"
        )

    header_size = _IDX_PREAMBLE_SIZE + 4 * ndim
    if len(contents) < header_size:
        raise DatasetError(
            f"{path}: file too short: {len(contents)} bytes, but a {ndim}-D IDX "
            f"header needs {header_size}"
        )
    dims = struct.unpack(f">{ndim}I", contents[_IDX_PREAMBLE_SIZE:header_size])

    expected_size = 1
    for dim in dims:
        expected_size *= dim
    found_size = len(contents) - header_size
    if found_size != expected_size:
        problem = "truncated" if found_size < expected_size else "trailing bytes"
        shape_text = "x".join(str(dim) for dim in dims)
        raise DatasetError(
            f"{path}: {problem}: header says {shape_text} = {expected_size} "
            f"bytes of data, found {found_size}"
        )

    return np.frombuffer(contents, dtype=np.uint8, offset=header_size).reshape(dims)


def load_mnist(path=None, download=False):
    """Load the MNIST training and test sets from a folder of IDX files.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Folder holding the four MNIST files. Defaults to
        ``$FASTGD_DATA/mnist`` when the environment variable ``FASTGD_DATA``
        is set, and otherwise to the user cache ``fastgd/mnist`` under
        ``$XDG_CACHE_HOME`` (when set to an absolute path) or ``~/.cache``.
        Each file (see `MNIST_FILES`) may be raw or gzipped, with or without
        a ``.gz`` suffix, and may use a dot instead of the last dash of its
        name (``train-images.idx3-ubyte``).
    download : bool, default False
        If True, download the files missing from that folder (creating it if
        needed) from the first of `MNIST_MIRRORS` that serves them, and check
        each against its SHA-256 in `MNIST_SHA256`. Files already there are
        used as they are, without any network access.

    Returns
    -------
    (X_train, y_train), (X_test, y_test) : tuple of tuples of numpy.ndarray
        ``X_*`` are C-contiguous ``float32`` arrays of shape ``(n, 784)``
        with pixel values scaled to [0, 1]; ``y_*`` are ``int64`` arrays of
        shape ``(n,)`` with digit labels 0 to 9.

    Raises
    ------
    FileNotFoundError
        If `download` is False and the folder or one of the four files does
        not exist. The message says where it looked and why.
    DatasetError
        If a download fails (the message names the URL, the reason, and the
        folder to put the files in by hand) or a downloaded file's SHA-256 is
        wrong (the file is deleted); if a file is not a valid IDX file (see
        `read_idx`), the images are not 3-D 28x28 arrays, the labels are not
        1-D, a split has different numbers of images and labels, or a label
        is outside 0 to 9. The message names the offending file.
    """
    folder, source = _resolve_mnist_folder(path)
    if download:
        _download_missing_mnist_files(folder)
    elif not folder.is_dir():
        expected_names = ", ".join(MNIST_FILES.values())
        raise FileNotFoundError(
            f"MNIST folder not found: {folder} (looked there because {source}); "
            f"it should contain the four files {expected_names} "
            f"(each optionally ending in .gz); load_mnist(download=True) downloads "
            f"them there"
        )
    train = _load_split(
        "train",
        _find_mnist_file(folder, MNIST_FILES["train_images"]),
        _find_mnist_file(folder, MNIST_FILES["train_labels"]),
    )
    test = _load_split(
        "test",
        _find_mnist_file(folder, MNIST_FILES["test_images"]),
        _find_mnist_file(folder, MNIST_FILES["test_labels"]),
    )
    return train, test


def load_builtin():
    """Load the small real data set shipped inside fastgd: 10,000 MNIST digits.

    These are the 10,000 images of the MNIST test set, split in a fixed way:
    the first 8,000 for training and the last 2,000 held out. They need no
    download, so they suit examples, quick experiments and offline defaults.
    Scores on them are not comparable with those on the real MNIST test set.

    Returns
    -------
    (X_train, y_train), (X_test, y_test) : tuple of tuples of numpy.ndarray
        As `load_mnist`: ``X_*`` are C-contiguous ``float32`` arrays of shape
        ``(n, 784)`` scaled to [0, 1], ``y_*`` ``int64`` digit labels;
        ``n`` is 8,000 for training and 2,000 for the test part.

    Raises
    ------
    FileNotFoundError
        If a file of the built-in data is missing from the installation.
    DatasetError
        If a file of the built-in data does not have its expected SHA-256.
    """
    paths = []
    for name in (_BUILTIN_IMAGES, _BUILTIN_LABELS):
        path = _BUILTIN_DIR / name
        if not path.is_file():
            raise FileNotFoundError(
                f"{path}: file of the built-in data set is missing: the fastgd "
                f"installation is incomplete; reinstall fastgd"
            )
        actual = _sha256_of_file(path)
        if actual != MNIST_SHA256[name]:
            raise DatasetError(
                f"{path}: file of the built-in data set is damaged: its SHA-256 is "
                f"{actual}, expected {MNIST_SHA256[name]}; reinstall fastgd"
            )
        paths.append(path)
    X, y = _load_split("built-in", *paths)
    return (X[:BUILTIN_TRAIN_SIZE], y[:BUILTIN_TRAIN_SIZE]), (
        X[BUILTIN_TRAIN_SIZE:],
        y[BUILTIN_TRAIN_SIZE:],
    )


def load_npz(path, x_key="X", y_key="y"):
    """Load features and labels from a NumPy ``.npz`` archive, never unpickling.

    Parameters
    ----------
    path : str or os.PathLike
        The ``.npz`` file, as written by `numpy.savez` or
        `numpy.savez_compressed`.
    x_key : str, default "X"
        Name of the features array in the archive.
    y_key : str or None, default "y"
        Name of the labels or targets array; None reads no labels.

    Returns
    -------
    X : numpy.ndarray
        The features, as stored (dtype and shape unchanged).
    y : numpy.ndarray or None
        The labels, as stored, with as many rows as `X`; None if `y_key` is
        None.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    DatasetError
        If the file is not an ``.npz`` archive or is damaged, a key is missing
        (the message lists the keys present), an array holds Python objects
        (reading those would need pickle, which is never used), an array is
        a scalar, or `X` and `y` have different numbers of rows.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        signature = file.read(len(_NPY_MAGIC))
        if signature.startswith(_NPY_MAGIC):
            raise DatasetError(
                f"{path}: a single NumPy array (.npy), not an .npz archive of named arrays"
            )
        if not signature.startswith(_ZIP_MAGICS):
            raise DatasetError(
                f"{path}: not an .npz archive (no zip signature at its start)"
            )
        file.seek(0)
        # np.load is given the open file, not the path: given a path to a damaged zip, it
        # leaves its own file handle open.
        try:
            archive = np.load(file, allow_pickle=False)
        except (ValueError, EOFError, OSError, zipfile.BadZipFile) as error:
            raise DatasetError(f"{path}: damaged .npz archive: {error}") from error
        with archive:
            X = _read_npz_array(archive, path, x_key)
            y = None if y_key is None else _read_npz_array(archive, path, y_key)
    if y is not None and len(X) != len(y):
        raise DatasetError(
            f"{path}: {x_key!r} has {len(X)} rows but {y_key!r} has {len(y)}"
        )
    return X, y


def _read_npz_array(archive, path, key):
    if key not in archive.files:
        present = ", ".join(repr(name) for name in archive.files) or "none"
        raise DatasetError(f"{path}: no array {key!r} in the archive; keys present: {present}")
    try:
        array = archive[key]
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise DatasetError(
                f"{path}: array {key!r} is an object array; reading it would need "
                f"pickle, which fastgd never uses"
            ) from error
        raise DatasetError(f"{path}: array {key!r} cannot be read: {error}") from error
    except (EOFError, OSError, zipfile.BadZipFile, zlib.error) as error:
        raise DatasetError(f"{path}: array {key!r} is damaged: {error}") from error
    if array.ndim == 0:
        raise DatasetError(f"{path}: array {key!r} is a scalar, not an array of samples")
    return array


def load_csv(path, label=-1, header="infer", delimiter=","):
    """Load a table of numbers from a CSV file, with an optional label column.

    Blank lines are skipped. Fields may be quoted, as the `csv` module reads
    them, and spaces after a delimiter are ignored; every cell other than the
    header's must be a number, as `float` reads it.

    Parameters
    ----------
    path : str or os.PathLike
        The CSV file, UTF-8 encoded (a byte-order mark is allowed).
    label : int, str or None, default -1
        The label column: its index (negative counts from the end), or its
        name in the header row. None means there is no label column.
    header : {"infer", True, False}, default "infer"
        Whether the first row is a header of column names. "infer" treats it
        as one when any of its cells is not a number.
    delimiter : str, default ","
        The one-character field separator.

    Returns
    -------
    X : numpy.ndarray
        ``float64`` array of shape ``(n, d)``: every column except the label.
    y : numpy.ndarray or None
        Shape ``(n,)``: ``int64`` class labels if every label is an integer,
        ``float64`` targets otherwise; None if `label` is None.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    DatasetError
        If the file is empty or has no data rows, is not UTF-8, a row has
        the wrong number of columns, a cell is not a number, the label
        column is out of range or leaves no features, or `label` names a
        column the header does not have (or there is no header). The message
        starts with the file and, where one applies, the 1-based line number.
    TypeError, ValueError
        If `label`, `header` or `delimiter` is not of an accepted kind.
    """
    if isinstance(label, bool) or not (
        label is None or isinstance(label, (str, numbers.Integral))
    ):
        raise TypeError(
            f"label must be a column index, a column name or None, got {label!r}"
        )
    if not (header == "infer" or isinstance(header, bool)):
        raise ValueError(f"header must be 'infer', True or False, got {header!r}")
    if not (isinstance(delimiter, str) and len(delimiter) == 1):
        raise ValueError(f"delimiter must be a single character, got {delimiter!r}")

    path = os.fspath(path)
    rows, line_numbers = _read_csv_rows(path, delimiter)
    if not rows:
        raise DatasetError(f"{path}: empty file: no rows to read")

    if header == "infer":
        has_header = not all(_is_number(cell) for cell in rows[0])
    else:
        has_header = header
    n_columns = len(rows[0])
    for row, line in zip(rows, line_numbers):
        if len(row) != n_columns:
            raise DatasetError(
                f"{path}, line {line}: {_count(len(row), 'column')}, expected "
                f"{n_columns} as on line {line_numbers[0]}"
            )
    column_names, header_line = None, None
    if has_header:
        column_names = [cell.strip() for cell in rows[0]]
        header_line = line_numbers[0]
        rows, line_numbers = rows[1:], line_numbers[1:]

    label_column = _label_column(
        path, label, n_columns, column_names, header, header_line, delimiter
    )
    if not rows:
        raise DatasetError(f"{path}: no data rows after the header on line {header_line}")

    values = _csv_values(path, rows, line_numbers, column_names)
    if label_column is None:
        return values, None
    targets = values[:, label_column]
    features = np.ascontiguousarray(np.delete(values, label_column, axis=1))
    if np.all(np.isfinite(targets)) and np.all(targets == np.round(targets)):
        if np.all(np.abs(targets) <= _LARGEST_EXACT_INTEGER):
            return features, targets.astype(np.int64)
    return features, np.ascontiguousarray(targets)


def _read_csv_rows(path, delimiter):
    """The non-blank rows of the CSV file and the line each starts on (1-based)."""
    with open(path, "rb") as file:
        raw = file.read()
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise DatasetError(
            f"{path}, line {line}: not UTF-8 text: byte 0x{raw[error.start]:02x} "
            f"{error.reason}"
        ) from error

    # line_num counts the physical lines read so far, so a row that spans several lines
    # (a quoted newline) starts on the line after the previous row ended.
    reader = csv.reader(
        io.StringIO(text, newline=""), delimiter=delimiter, skipinitialspace=True
    )
    rows, line_numbers = [], []
    previous_end = 0
    try:
        for row in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if not row or (len(row) == 1 and not row[0].strip()):
                continue
            rows.append(row)
            line_numbers.append(start)
    except csv.Error as error:
        raise DatasetError(f"{path}, line {reader.line_num}: {error}") from error
    return rows, line_numbers


def _label_column(path, label, n_columns, column_names, header, header_line, delimiter):
    if label is None:
        return None
    if isinstance(label, str):
        if column_names is None:
            why = "header=False" if header is False else "its first row is all numbers"
            raise DatasetError(
                f"{path}: label={label!r} names a column, but the file has no header row ({why})"
            )
        if label not in column_names:
            names = ", ".join(repr(name) for name in column_names)
            raise DatasetError(
                f"{path}, line {header_line}: no column named {label!r} in the header; "
                f"columns: {names}"
            )
        if column_names.count(label) > 1:
            raise DatasetError(
                f"{path}, line {header_line}: the header names {column_names.count(label)} "
                f"columns {label!r}; pass the label column's index instead"
            )
        column = column_names.index(label)
    else:
        if not -n_columns <= label < n_columns:
            raise DatasetError(
                f"{path}: label column {label} is out of range for "
                f"{_count(n_columns, 'column')}"
            )
        column = int(label) % n_columns
    if n_columns == 1:
        raise DatasetError(
            f"{path}: the label column is the only column, which leaves no features "
            f"(is the delimiter {delimiter!r} right?)"
        )
    return column


def _csv_values(path, rows, line_numbers, column_names):
    try:
        return np.array(rows, dtype=np.float64)
    except ValueError:
        pass
    # NumPy converts each string as float() does, so the first cell float() rejects is the one.
    for row, line in zip(rows, line_numbers):
        for index, cell in enumerate(row):
            if not _is_number(cell):
                column = f"column {index + 1}"
                if column_names is not None:
                    column += f" ({column_names[index]!r})"
                what = "empty" if not cell.strip() else f"{cell!r} is not a number"
                raise DatasetError(f"{path}, line {line}: {column}: {what}")
    raise DatasetError(f"{path}: the cells could not be converted to numbers")


def _count(number, noun):
    return f"{number} {noun}" if number == 1 else f"{number} {noun}s"


def _is_number(text):
    try:
        float(text)
    except ValueError:
        return False
    return True


def train_test_split(X, y=None, test_size=0.2, shuffle=True, seed=None):
    """Split samples (and their labels) into a training part and a test part.

    Parameters
    ----------
    X : array_like
        Samples along the first axis.
    y : array_like, optional
        Labels or targets with as many entries as `X` has samples.
    test_size : float or int, default 0.2
        A fraction strictly between 0 and 1 of the samples (rounded up), or
        a number of samples. Both parts must end up non-empty.
    shuffle : bool, default True
        Shuffle before splitting; if False, the test part is the last
        samples, in order.
    seed : int, numpy.random.Generator or None
        Seed of the shuffle; None draws a fresh one.

    Returns
    -------
    X_train, X_test, y_train, y_test : numpy.ndarray
        In scikit-learn's order; ``X_train, X_test`` alone when `y` is None.

    Raises
    ------
    ValueError
        If `X` is a scalar, `y`'s length differs from `X`'s, or `test_size`
        is not a fraction in (0, 1) or a count that leaves both parts
        non-empty.
    TypeError
        If `test_size` is not a number.
    """
    X = np.asarray(X)
    if X.ndim == 0:
        raise ValueError("X must be an array of samples, got a scalar")
    n_samples = len(X)
    if y is not None:
        y = np.asarray(y)
        if y.ndim == 0:
            raise ValueError("y must be an array of labels, got a scalar")
        if len(y) != n_samples:
            raise ValueError(f"X has {n_samples} samples but y has {len(y)}")

    n_test = _test_count(test_size, n_samples)
    n_train = n_samples - n_test
    if shuffle:
        order = np.random.default_rng(seed).permutation(n_samples)
        train_index, test_index = order[:n_train], order[n_train:]
    else:
        train_index, test_index = slice(0, n_train), slice(n_train, n_samples)
    if y is None:
        return X[train_index], X[test_index]
    return X[train_index], X[test_index], y[train_index], y[test_index]


def _test_count(test_size, n_samples):
    if isinstance(test_size, bool) or not isinstance(test_size, numbers.Real):
        raise TypeError(
            f"test_size must be a fraction or a number of samples, got {test_size!r}"
        )
    if isinstance(test_size, numbers.Integral):
        n_test = int(test_size)
        if not 1 <= n_test <= n_samples - 1:
            raise ValueError(
                f"test_size={n_test} must leave at least one sample in each part: "
                f"X has {n_samples} samples"
            )
        return n_test
    if not 0.0 < test_size < 1.0:
        raise ValueError(
            f"test_size={test_size!r} must be a fraction strictly between 0 and 1, "
            f"or a whole number of samples"
        )
    # Round before the ceiling: 0.7 * 10 is 7.000000000000001 in floating point, not 8 samples.
    n_test = math.ceil(round(test_size * n_samples, 6))
    if not 1 <= n_test <= n_samples - 1:
        raise ValueError(
            f"test_size={test_size!r} of {n_samples} samples leaves {n_samples - n_test} "
            f"for training and {n_test} for testing; both parts need at least one"
        )
    return n_test


def one_hot(labels, n_classes=None):
    """Encode integer class labels as one-hot rows.

    Parameters
    ----------
    labels : array_like
        1-D class labels: integers, or floats with integer values.
    n_classes : int, optional
        Number of classes; defaults to the largest label plus one.

    Returns
    -------
    numpy.ndarray
        ``float32`` array of shape ``(n, n_classes)`` with a 1 in column
        ``labels[i]`` of row ``i`` and 0 elsewhere.

    Raises
    ------
    ValueError
        If `labels` is not 1-D, `n_classes` is below 1, or a label is not an
        integer, is negative, or is at least `n_classes`: the message names
        the first offending label and its index.
    TypeError
        If `labels` is not numeric (booleans are not labels), or `n_classes`
        is not an integer.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {labels.shape}")
    if labels.dtype.kind not in "iuf":
        raise TypeError(f"labels must be integers, got an array of dtype {labels.dtype}")
    if n_classes is not None:
        if isinstance(n_classes, bool) or not isinstance(n_classes, numbers.Integral):
            raise TypeError(f"n_classes must be an integer, got {n_classes!r}")
        if n_classes < 1:
            raise ValueError(f"n_classes must be at least 1, got {n_classes}")
        n_classes = int(n_classes)

    if labels.dtype.kind == "f":
        not_integer = ~np.isfinite(labels) | (labels != np.floor(labels))
    else:
        not_integer = np.zeros(labels.shape, dtype=bool)
    negative = labels < 0
    bad = not_integer | negative
    if n_classes is not None:
        bad |= labels >= n_classes
    if bad.any():
        index = int(np.argmax(bad))
        value = labels[index].item()
        if not_integer[index]:
            problem = "is not an integer"
        elif negative[index]:
            problem = "is negative"
        else:
            problem = f"is out of range for n_classes={n_classes} (0..{n_classes - 1})"
        raise ValueError(f"label {value!r} at index {index} {problem}")

    classes = labels.astype(np.int64)
    if n_classes is None:
        n_classes = int(classes.max()) + 1 if len(classes) else 0
    encoded = np.zeros((len(classes), n_classes), dtype=np.float32)
    encoded[np.arange(len(classes)), classes] = 1.0
    return encoded


def standardize(X_train, *others, eps=1e-8):
    """Scale features to zero mean and unit variance, fitted on the training set.

    Every array gets ``(A - mean) / std`` with the column means and standard
    deviations (population, ``ddof=0``) of `X_train`, so the test data is
    transformed exactly as the training data was. A column of `X_train`
    whose standard deviation is below `eps` is only centred.

    Parameters
    ----------
    X_train : array_like
        ``(n, d)`` training features, finite, at least one row.
    *others : array_like
        Further ``(m, d)`` arrays (validation, test) to transform the same way.
    eps : float, default 1e-8
        Standard deviations below this count as zero.

    Returns
    -------
    tuple of numpy.ndarray
        The transformed `X_train` followed by the transformed `others`, in
        order; always a tuple, even of one array. ``float32`` arrays stay
        ``float32``; anything else becomes ``float64``.

    Raises
    ------
    ValueError
        If an array is not 2-D, `X_train` has no rows or a NaN or infinite
        value (the message gives its row and column), an array of `others`
        has a different number of columns, or `eps` is negative.
    TypeError
        If an array is not numeric.
    """
    if not eps >= 0:
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    train = _as_numeric_matrix(X_train, "X_train")
    if len(train) == 0:
        raise ValueError("X_train has no rows: there is nothing to fit the means on")
    non_finite = ~np.isfinite(train)
    if non_finite.any():
        row, column = np.argwhere(non_finite)[0]
        raise ValueError(f"X_train contains NaN or Inf (first at row {row}, column {column})")
    others = [_as_numeric_matrix(array, f"others[{i}]") for i, array in enumerate(others)]
    for i, array in enumerate(others):
        if array.shape[1] != train.shape[1]:
            raise ValueError(
                f"others[{i}] has {array.shape[1]} columns, X_train has {train.shape[1]}"
            )

    mean = train.mean(axis=0, dtype=np.float64)
    std = train.std(axis=0, dtype=np.float64)
    scale = np.where(std < eps, 1.0, std)
    return tuple(
        ((array - mean) / scale).astype(
            np.float32 if array.dtype == np.float32 else np.float64, copy=False
        )
        for array in [train, *others]
    )


def _as_numeric_matrix(array, name):
    array = np.asarray(array)
    if array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must be numeric, got an array of dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples, features), got shape {array.shape}")
    return array


def _resolve_mnist_folder(path):
    if path is not None:
        return Path(path).expanduser(), "it was passed as the path argument"
    data_root = os.environ.get("FASTGD_DATA")
    if data_root:
        return (
            Path(data_root).expanduser() / "mnist",
            f"FASTGD_DATA is set to {data_root!r}",
        )
    # The XDG base directory specification says to ignore a relative XDG_CACHE_HOME.
    cache_root = os.environ.get("XDG_CACHE_HOME")
    if cache_root and os.path.isabs(cache_root):
        return (
            Path(cache_root) / "fastgd" / "mnist",
            f"no path was given, FASTGD_DATA is not set and XDG_CACHE_HOME is "
            f"{cache_root!r}",
        )
    return (
        Path.home() / ".cache" / "fastgd" / "mnist",
        "no path was given and FASTGD_DATA is not set",
    )


def _mnist_file_candidates(canonical_name):
    stem, _, suffix = canonical_name.rpartition("-")
    dotted_name = f"{stem}.{suffix}"
    return [canonical_name, f"{canonical_name}.gz", dotted_name, f"{dotted_name}.gz"]


def _existing_mnist_file(folder, canonical_name):
    for candidate in _mnist_file_candidates(canonical_name):
        candidate_path = folder / candidate
        if candidate_path.is_file():
            return candidate_path
    return None


def _find_mnist_file(folder, canonical_name):
    path = _existing_mnist_file(folder, canonical_name)
    if path is None:
        candidates = _mnist_file_candidates(canonical_name)
        raise FileNotFoundError(
            f"MNIST file {canonical_name} not found in {folder} "
            f"(tried {', '.join(candidates)}); load_mnist(download=True) downloads "
            f"the missing files there"
        )
    return path


def _download_missing_mnist_files(folder):
    missing = [
        f"{name}.gz"
        for name in MNIST_FILES.values()
        if _existing_mnist_file(folder, name) is None
    ]
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
    for file_name in missing:
        _download_mnist_file(file_name, folder)


def _download_mnist_file(file_name, folder):
    failures = []
    for base_url in MNIST_MIRRORS:
        url = base_url.rstrip("/") + "/" + file_name
        try:
            _fetch_verified(url, folder / file_name, MNIST_SHA256[file_name])
            return
        except _ChecksumMismatch as mismatch:
            failures.append(f"{url}: {mismatch}")
        except urllib.error.HTTPError as error:
            error.close()
            failures.append(f"{url}: HTTP error {error.code} {error.reason}")
        except urllib.error.URLError as error:
            failures.append(f"{url}: {error.reason}")
        except (OSError, http.client.HTTPException, ValueError) as error:
            failures.append(f"{url}: {str(error) or type(error).__name__}")
    reasons = "; ".join(failures) if failures else "MNIST_MIRRORS lists no mirror"
    all_names = ", ".join(MNIST_SHA256)
    raise DatasetError(
        f"could not download MNIST file {file_name}: {reasons}. If this machine is "
        f"offline, fetch the four files ({all_names}) elsewhere and put them in {folder}"
    )


def _fetch_verified(url, destination, expected_sha256):
    """Download `url` to `destination` atomically; raise _ChecksumMismatch, leaving nothing."""

    def write(file):
        digest = hashlib.sha256()
        with urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            for chunk in iter(lambda: response.read(_CHUNK_SIZE), b""):
                digest.update(chunk)
                file.write(chunk)
        actual = digest.hexdigest()
        if actual != expected_sha256:
            raise _ChecksumMismatch(
                f"SHA-256 mismatch: got {actual}, expected {expected_sha256}; "
                f"the download was deleted"
            )

    write_atomically(destination, write)


def _sha256_of_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(_CHUNK_SIZE), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _load_split(split_name, images_path, labels_path):
    images = read_idx(images_path)
    labels = read_idx(labels_path)

    if images.ndim != 3:
        raise DatasetError(
            f"{images_path}: expected 3-D image data (IDX magic 0x00000803), "
            f"got {images.ndim}-D data (magic 0x0000080{images.ndim})"
        )
    if images.shape[1:] != MNIST_IMAGE_SHAPE:
        expected_text = "x".join(str(size) for size in MNIST_IMAGE_SHAPE)
        raise DatasetError(
            f"{images_path}: expected {expected_text} images, "
            f"got {images.shape[1]}x{images.shape[2]}"
        )
    if labels.ndim != 1:
        raise DatasetError(
            f"{labels_path}: expected 1-D label data (IDX magic 0x00000801), "
            f"got {labels.ndim}-D data (magic 0x0000080{labels.ndim})"
        )
    if len(images) != len(labels):
        raise DatasetError(
            f"{images_path}: {split_name}: {len(images)} images but "
            f"{len(labels)} labels in {labels_path}"
        )
    out_of_range = np.flatnonzero(labels >= MNIST_NUM_CLASSES)
    if out_of_range.size:
        index = int(out_of_range[0])
        raise DatasetError(
            f"{labels_path}: label {labels[index]} at index {index} is out of "
            f"range 0..{MNIST_NUM_CLASSES - 1}"
        )

    num_pixels = MNIST_IMAGE_SHAPE[0] * MNIST_IMAGE_SHAPE[1]
    features = images.reshape(len(images), num_pixels).astype(np.float32)
    features /= np.float32(255)
    return features, labels.astype(np.int64)
