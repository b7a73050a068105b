"""Checks and conversions of user input, shared by the C++-backed network and its NumPy twin."""

from __future__ import annotations

import math
import numbers
import sys

import numpy as np

from . import _core

ACTIVATIONS = ("identity", "sigmoid", "tanh", "relu", "leaky_relu", "softmax")
LOSSES = ("mse", "cross_entropy")
DTYPES = {"float32": np.dtype(np.float32), "float64": np.dtype(np.float64)}

_FIRST_NONFINITE = {np.dtype(np.float32): _core.first_nonfinite32, np.dtype(np.float64): _core.first_nonfinite64}


def check_choice(value, choices, what):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {what} {value!r}; expected one of {', '.join(choices)}")
    return value


def check_dtype(dtype):
    try:
        resolved = None if dtype is None else np.dtype(dtype)
    except TypeError:
        resolved = None
    if resolved is None or resolved.name not in DTYPES:
        raise ValueError(f"unsupported dtype {dtype!r}; expected 'float32' or 'float64'")
    return resolved


def check_seed(seed, name="seed"):
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise TypeError(f"{name} must be None or a non-negative integer, got {seed!r}")
    if seed < 0:
        raise ValueError(f"{name} must be None or a non-negative integer, got {seed}")
    return int(seed)


def check_int(value, name, minimum):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return int(value)


def check_real(value, name, minimum=None, strictly_positive=False):
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if strictly_positive and value <= 0:
        raise ValueError(f"{name} must be positive, got {value}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {value}")
    return value


def check_finite(array, name):
    where = _FIRST_NONFINITE[array.dtype](array)
    if where is not None:
        row, col = where
        raise ValueError(f"{name} contains NaN or Inf (first at row {row}, column {col})")


def read_numbers(values, name):
    """`values` as an ndarray, or a TypeError naming `name` when it cannot be one.

    A pandas or polars DataFrame or Series is read column by column into its columns' common
    dtype; a missing value in it raises a ValueError naming its column and row.
    """
    columns = _table_columns(values, name)
    if columns is not None:
        return _read_table(columns, values.shape, name)
    try:
        return np.asarray(values)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be read as an array of numbers: {exc}") from None


def read_X(X, dtype, name):
    """X as an ndarray of real numbers (bool, integer or float), which to_engine converts to `dtype`.

    A NumPy array is returned as it is, so that a memory-mapped one can be converted part by
    part. A pandas or polars table is converted here, straight to a C-contiguous array of
    `dtype` (its one copy). Anything else is read by NumPy.
    """
    if isinstance(X, np.ndarray):
        return _real(X, name)
    columns = _table_columns(X, name)
    if columns is not None:
        return _read_table(columns, X.shape, name, dtype)
    try:
        array = np.asarray(X)
        if array.dtype == object:
            # Python ints beyond int64, None (NaN), Decimals: whatever float() reads
            array = np.asarray(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"{name} could not be read as an array of numbers: {exc}") from None
    except OverflowError:
        raise ValueError(f"{name} holds an integer beyond the range of float64") from None
    return _real(array, name)


def _real(array, what, dtype=None):
    """`array`, or a TypeError naming `what` and `dtype` (the array's by default) if it is not real."""
    if array.dtype.kind not in "biuf":
        shown = array.dtype if dtype is None else dtype
        raise TypeError(f"{what} has dtype {shown}; fastgd takes real numbers (bool, integer or float dtypes)")
    return array


def _table_columns(table, name):
    """(label, the library's dtype, ndarray) per column of a pandas or polars DataFrame or Series;
    None for anything else.

    Neither library is imported here: a table comes from one that is imported already.
    """
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(table, (pandas.DataFrame, pandas.Series)):
        return _pandas_columns(table, name)
    polars = sys.modules.get("polars")
    if polars is not None and isinstance(table, (polars.DataFrame, polars.Series)):
        return _polars_columns(table, isinstance(table, polars.DataFrame), name)
    return None


def _pandas_columns(table, name):
    for label, column in table.items() if table.ndim == 2 else [(table.name, table)]:
        if not isinstance(column.dtype, np.dtype):
            # nullable, categorical and pyarrow columns mark missing values instead of holding NaN
            _raise_if_missing(column.isna().to_numpy(), label, name)
        yield label, column.dtype, column.to_numpy()


def _polars_columns(table, is_frame, name):
    for column in table.get_columns() if is_frame else [table]:
        if column.null_count():
            _raise_if_missing(column.is_null().to_numpy(), column.name, name)
        yield column.name, column.dtype, column.to_numpy()


def _raise_if_missing(missing, label, name):
    if missing.any():
        raise ValueError(f"{name} contains missing values (first in column {label!r}, row {int(missing.argmax())})")


def _read_table(columns, shape, name, dtype=None):
    """A table's `columns` as one C-contiguous array of `shape`, of `dtype` (by default the
    columns' common dtype), each value converted once, as it is copied in."""
    columns = [(label, _real(values, f"{name} column {label!r}", shown)) for label, shown, values in columns]
    if len(shape) == 1:
        return columns[0][1]
    arrays = [values for _, values in columns]
    if dtype is None:
        dtype = np.result_type(*arrays) if arrays else np.float64
    array = np.empty(shape, dtype=dtype)
    # Copied a block of rows at a time, which stays in cache, where a column at a time would
    # stride across all of `array`.
    rows = max(1, 2**22 // max(1, array.shape[1] * array.itemsize))
    try:
        with np.errstate(over="raise"):
            for start in range(0, len(array), rows) if arrays else ():
                np.stack([values[start : start + rows] for values in arrays], axis=1, out=array[start : start + rows])
    except FloatingPointError:
        raise _beyond_range(columns, array.dtype, name) from None
    return array


def _beyond_range(columns, dtype, name):
    """The ValueError for the first column holding a finite value beyond the range of `dtype`."""
    for label, values in columns:
        bad = np.flatnonzero(np.isfinite(values) & (np.abs(values) > np.finfo(dtype).max))
        if bad.size:
            value, row = values[bad[0]], bad[0]
            return ValueError(f"{name} holds {value:g} at row {row}, column {label!r}, beyond the range of {dtype.name}")
    return ValueError(f"{name} holds values beyond the range of {dtype.name}")


def to_engine(array, dtype, name, first_row=0, check=True):
    """2-D `array` as the engine reads it: C-contiguous, aligned, of `dtype`, all finite.

    Copies only when needed. NaN or Inf, and values beyond the range of `dtype`, raise a
    ValueError naming their row (counted from `first_row`, for a part of a larger array) and
    column; with check=False that is left to the caller.
    """
    with np.errstate(over="ignore"):
        converted = np.require(array, dtype=dtype, requirements=["C_CONTIGUOUS", "ALIGNED"])
    if converted.strides != (converted.shape[1] * converted.itemsize, converted.itemsize):
        # NumPy calls an axis of length 1 contiguous whatever its stride, even a negative one,
        # which the engine's binding does not map.
        converted = converted.copy()
    if check:
        raise_if_not_finite(array, converted, name, first_row)
    return converted


def raise_if_not_finite(array, converted, name, first_row=0):
    """The ValueError of to_engine for `array`, converted to the engine's `converted`, if any."""
    where = _FIRST_NONFINITE[converted.dtype](converted)
    if where is not None:
        row, col = where
        value = array[row, col]
        if np.isfinite(value):
            raise ValueError(
                f"{name} holds {value:g} at row {first_row + row}, column {col}, beyond the range of {converted.dtype.name}"
            )
        raise ValueError(f"{name} contains NaN or Inf (first at row {first_row + row}, column {col})")


def engine_ready(X, n_in, dtype):
    """Whether X (1-D or 2-D) can go to the engine as it is, needing only the finiteness check."""
    if not isinstance(X, np.ndarray) or X.dtype != dtype or not X.flags.aligned or X.size == 0:
        return False
    if X.ndim == 1:
        return X.shape[0] == n_in and X.strides[0] == X.itemsize
    return X.ndim == 2 and X.shape[1] == n_in and X.strides == (n_in * X.itemsize, X.itemsize)


def prepare_X(X, n_in, dtype, name="X", allow_1d=False, convert=True, check=True):
    """Return X as a C-contiguous (n, n_in) array of `dtype`, and whether it was one 1-D sample.

    With convert=False the shape and dtype kind are checked but X is returned as it is, for
    callers that convert it part by part; with check=False it is converted but not checked
    for NaN, Inf or values beyond the range of `dtype`, for callers that check it later.
    """
    array = read_X(X, dtype, name)
    single = False
    if array.ndim == 1 and allow_1d:
        array, single = array.reshape(1, -1), True
    if array.ndim != 2:
        raise ValueError(
            f"{name} must be 2-D (n_samples, n_features), got {array.ndim}-D with shape {array.shape}"
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if array.shape[1] != n_in:
        raise ValueError(f"{name} has {array.shape[1]} features, but the network's input layer takes {n_in}")
    return (to_engine(array, dtype, name, check=check) if convert else array), single


def prepare_targets(y, n_samples, n_out, dtype, name="y", x_name="X"):
    """Return (targets (n, n_out) of `dtype`, class labels (n,) or None).

    1-D integer y are class labels, one-hot encoded here; with a single output unit a 1-D y is
    the target column. Labels are returned whenever the targets name one class per sample.
    """
    array = read_numbers(y, name)
    if array.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {array.dtype}; expected integer class labels or float targets")
    if array.ndim == 0 or array.ndim > 2:
        raise ValueError(f"{name} must be 1-D class labels or 2-D targets (n_samples, {n_out}), got shape {array.shape}")
    if array.shape[0] != n_samples:
        raise ValueError(f"{x_name} has {n_samples} samples but {name} has {array.shape[0]}")
    if array.ndim == 1 and n_out > 1:
        labels = _check_labels(array, n_out, name)
        targets = np.zeros((n_samples, n_out), dtype=dtype)
        targets[np.arange(n_samples), labels] = 1
        return targets, labels
    if array.ndim == 2 and array.shape[1] != n_out:
        raise ValueError(f"{name} has shape {array.shape}, but the network has {n_out} outputs: expected ({n_samples}, {n_out})")
    targets = to_engine(array.reshape(n_samples, n_out), dtype, name)
    return targets, _labels_of_targets(targets)


def _check_labels(array, n_out, name):
    if array.dtype.kind == "f":
        bad = np.flatnonzero(~np.isfinite(array) | (array != np.round(array)))
        if bad.size:
            raise ValueError(
                f"{name} holds non-integer class label {float(array[bad[0]])} at index {bad[0]}; "
                f"labels must be integers 0..{n_out - 1} (or give 2-D targets)"
            )
    bad = np.flatnonzero((array < 0) | (array >= n_out))
    if bad.size:
        raise ValueError(
            f"label {int(array[bad[0]])} at index {bad[0]} of {name} is out of range for an output layer "
            f"of {n_out} units (labels must be 0..{n_out - 1})"
        )
    return array.astype(np.int64)


def _labels_of_targets(targets):
    if targets.shape[1] == 1:
        column = targets[:, 0]
        return column.astype(np.int64) if np.all((column == 0) | (column == 1)) else None
    one_hot = np.all((targets == 0) | (targets == 1), axis=1) & (targets.sum(axis=1) == 1)
    return targets.argmax(axis=1) if one_hot.all() else None
