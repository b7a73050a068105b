"""The data people hold: every real NumPy dtype, lists, pandas and polars tables, all converted
once to the network's dtype and giving the results of the same values as a float array."""

import subprocess
import sys
import tracemalloc

import numpy as np
import pandas as pd
import polars as pl
import pytest

import fastgd
import fastgd._training
from fastgd._validation import read_X, engine_ready, prepare_X

REAL_DTYPES = [
    bool, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
    np.float16, np.float32, np.float64, np.longdouble,
]
RNG = np.random.default_rng(0)
# small integers: exact in every dtype above but bool, which takes their parity
VALUES = RNG.integers(0, 6, (24, 4))
LABELS = RNG.integers(0, 3, 24)


def network(engine=fastgd, dtype="float32"):
    return engine.Network([4, 5, 3], activation="tanh", dtype=dtype, seed=0)


def run_everything(X, y, engine=fastgd, dtype="float32"):
    """What fit (with validation data), predict, evaluate, gradients and train_step give for (X, y)."""
    net = network(engine, dtype)
    history = net.fit(X, y, epochs=2, batch_size=8, optimizer=fastgd.SGD(lr=0.1), validation_data=(X, y), seed=0, verbose=0)
    results = {"history": history.history, "params": net.params, "predict": net.predict(X), "evaluate": net.evaluate(X, y)}
    results["gradients"] = net.gradients(X, y)
    results["train_step"] = net.train_step(X, y, fastgd.SGD(lr=0.1))
    return results


def assert_same(results, expected):
    assert results["history"] == expected["history"]
    assert results["evaluate"] == expected["evaluate"]
    np.testing.assert_array_equal(results["predict"], expected["predict"])
    for (W, b), (W0, b0) in zip(results["params"], expected["params"]):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    loss, grads = results["gradients"]
    assert loss == expected["gradients"][0]
    for (dW, db), (dW0, db0) in zip(grads, expected["gradients"][1]):
        np.testing.assert_array_equal(dW, dW0)
        np.testing.assert_array_equal(db, db0)
    assert results["train_step"] == expected["train_step"]


def values_as(dtype):
    return VALUES % 2 if dtype is bool else VALUES


@pytest.mark.parametrize("net_dtype", ["float32", "float64"])
@pytest.mark.parametrize("dtype", REAL_DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_real_dtype_gives_the_results_of_the_float_array(dtype, net_dtype):
    values = values_as(dtype)
    expected = run_everything(values.astype(net_dtype), LABELS, dtype=net_dtype)
    assert_same(run_everything(values.astype(dtype), LABELS, dtype=net_dtype), expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.float16, np.int64], ids=lambda d: np.dtype(d).name)
def test_the_numpy_twin_takes_them_too(dtype):
    expected = run_everything(VALUES.astype(np.float64), LABELS, fastgd.reference, "float64")
    assert_same(run_everything(VALUES.astype(dtype), LABELS, fastgd.reference, "float64"), expected)


@pytest.mark.parametrize("dtype", [np.uint8, np.int32, np.float16, bool], ids=lambda d: np.dtype(d).name)
def test_labels_and_targets_of_any_real_dtype(dtype):
    X = VALUES.astype(np.float32)
    labels = LABELS % 2 if dtype is bool else LABELS
    assert_same(run_everything(X, labels.astype(dtype)), run_everything(X, labels.astype(np.int64)))
    targets = np.eye(3)[labels]
    assert_same(run_everything(X, targets.astype(dtype)), run_everything(X, targets.astype(np.float32)))


CONTAINERS = {
    "list-of-int-lists": lambda v: v.tolist(),
    "list-of-float-lists": lambda v: (v / 2).tolist(),
    "tuple-of-tuples": lambda v: tuple(map(tuple, v.tolist())),
    "list-of-arrays": lambda v: list(v.astype(np.uint8)),
    "pandas-int": lambda v: pd.DataFrame(v, columns=list("abcd")),
    "pandas-float": lambda v: pd.DataFrame(v / 2, columns=list("abcd")),
    "pandas-mixed": lambda v: pd.DataFrame(
        {"a": v[:, 0].astype(np.uint8), "b": v[:, 1] / 2, "c": v[:, 2] % 2 == 1, "d": v[:, 3].astype(np.float32)}
    ),
    "pandas-nullable": lambda v: pd.DataFrame(
        {"a": pd.array(v[:, 0], dtype="Int64"), "b": pd.array(v[:, 1] / 2, dtype="Float64"), "c": v[:, 2] % 2 == 1, "d": v[:, 3]}
    ),
    "pandas-categorical": lambda v: pd.DataFrame(v, columns=list("abcd")).astype({"a": "category"}),
    "pandas-non-default-index": lambda v: pd.DataFrame(v, index=np.arange(100, 100 + len(v))[::-1]),
    "polars-int": lambda v: pl.DataFrame(v, schema=list("abcd")),
    "polars-mixed": lambda v: pl.DataFrame(
        {"a": v[:, 0].astype(np.uint8), "b": v[:, 1] / 2, "c": v[:, 2] % 2 == 1, "d": v[:, 3].astype(np.float32)}
    ),
}


# what each container holds, as an array, where that is not VALUES
PLAIN = {
    "list-of-float-lists": lambda v: v / 2,
    "pandas-float": lambda v: v / 2,
    "pandas-mixed": lambda v: np.column_stack([v[:, 0], v[:, 1] / 2, v[:, 2] % 2, v[:, 3]]),
    "pandas-nullable": lambda v: np.column_stack([v[:, 0], v[:, 1] / 2, v[:, 2] % 2, v[:, 3]]),
    "polars-mixed": lambda v: np.column_stack([v[:, 0], v[:, 1] / 2, v[:, 2] % 2, v[:, 3]]),
}


@pytest.mark.parametrize("net_dtype", ["float32", "float64"])
@pytest.mark.parametrize("container", list(CONTAINERS))
def test_containers_give_the_results_of_the_float_array(container, net_dtype):
    expected = run_everything(PLAIN.get(container, lambda v: v)(VALUES).astype(net_dtype), LABELS, dtype=net_dtype)
    assert_same(run_everything(CONTAINERS[container](VALUES), LABELS, dtype=net_dtype), expected)


@pytest.mark.parametrize(
    "make_y",
    [
        lambda labels: labels.tolist(),
        lambda labels: pd.Series(labels, name="target"),
        lambda labels: pd.Series(labels, dtype="Int64"),
        lambda labels: pd.Series(labels.astype(np.uint8), index=np.arange(len(labels))[::-1]),
        lambda labels: pl.Series("target", labels),
    ],
    ids=["list", "pandas", "pandas-Int64", "pandas-uint8-reversed-index", "polars"],
)
def test_labels_as_lists_and_series(make_y):
    X = VALUES.astype(np.float32)
    assert_same(run_everything(pd.DataFrame(X), make_y(LABELS)), run_everything(X, LABELS))


@pytest.mark.parametrize("make", [pd.DataFrame, pl.DataFrame, lambda t: t.tolist()], ids=["pandas", "polars", "list"])
def test_regression_targets_as_tables(make):
    targets = VALUES[:, :3] / 4
    net, twin = (fastgd.Network([4, 3], output_activation="identity", loss="mse", seed=0) for _ in range(2))
    expected = net.fit(VALUES.astype(np.float32), targets.astype(np.float32), epochs=2, seed=0, verbose=0).history
    assert twin.fit(VALUES, make(targets), epochs=2, seed=0, verbose=0).history == expected
    assert twin.evaluate(VALUES, make(targets)) == net.evaluate(VALUES.astype(np.float32), targets.astype(np.float32))


def test_one_sample_as_a_list_or_a_series():
    net = network()
    expected = net.predict(VALUES[0].astype(np.float32))
    np.testing.assert_array_equal(net.predict(VALUES[0].tolist()), expected)
    np.testing.assert_array_equal(net.predict(pd.Series(VALUES[0])), expected)
    np.testing.assert_array_equal(net.predict(pl.Series(VALUES[0])), expected)


def test_predict_into_out_from_any_dtype():
    net = network()
    expected = net.predict(VALUES.astype(np.float32))
    for X in (VALUES.astype(np.uint8), pd.DataFrame(VALUES), VALUES.tolist()):
        out = np.empty((len(VALUES), 3), np.float32)
        assert net.predict(X, out=out) is out
        np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("X_bad", "message"),
    [
        (VALUES.astype(np.complex128), r"X has dtype complex128; fastgd takes real numbers"),
        (VALUES.astype(object), r"X has dtype object; fastgd takes real numbers"),
        (VALUES.astype(str), r"X has dtype <U\d+; fastgd takes real numbers"),
        (VALUES.astype(str).tolist(), r"X has dtype <U\d+; fastgd takes real numbers"),
        (VALUES.astype("datetime64[s]"), r"X has dtype datetime64\[s\]"),
        (VALUES.astype("timedelta64[s]"), r"X has dtype timedelta64\[s\]"),
        (pd.DataFrame(VALUES, columns=list("abcd")).assign(c="x"), r"X column 'c' has dtype (str|object)"),
        (pd.DataFrame(VALUES, columns=list("abcd")).assign(d=pd.Timestamp(0)), r"X column 'd' has dtype datetime64"),
        (pd.DataFrame(VALUES, columns=list("abcd")).assign(b=1j), r"X column 'b' has dtype complex128"),
        (pd.DataFrame(VALUES, columns=list("abcd")).astype({"a": str}).astype({"a": "category"}), r"X column 'a' has dtype category"),
        (pl.DataFrame(VALUES, schema=list("abcd")).with_columns(pl.lit("x").alias("b")), r"X column 'b' has dtype String"),
    ],
    ids=["complex", "object", "str", "str-list", "datetime", "timedelta", "pandas-str", "pandas-datetime",
         "pandas-complex", "pandas-str-category", "polars-str"],
)
def test_what_is_not_a_real_number_is_a_type_error_naming_it(X_bad, message):
    net = network()
    for call in (lambda: net.predict(X_bad), lambda: net.evaluate(X_bad, LABELS), lambda: net.fit(X_bad, LABELS, verbose=0),
                 lambda: net.gradients(X_bad, LABELS), lambda: net.train_step(X_bad, LABELS, fastgd.SGD(lr=0.1)),
                 lambda: net.fit(VALUES, LABELS, validation_data=(X_bad, LABELS), verbose=0)):
        with pytest.raises(TypeError, match=message.replace("X ", "X(_val)? ", 1)):
            call()


def with_missing(table_kind):
    X = VALUES.astype(np.float64)
    if table_kind == "polars":
        return pl.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": [*X[:7, 2], None, *X[8:, 2]], "d": X[:, 3]})
    column = pd.array(X[:, 2].astype(int), dtype="Int64") if table_kind == "pandas-Int64" else pd.array(X[:, 2], dtype="Float64")
    column[7] = pd.NA
    return pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": column, "d": X[:, 3]})


@pytest.mark.parametrize("table_kind", ["pandas-Int64", "pandas-Float64", "polars"])
def test_missing_values_are_a_value_error_naming_column_and_row(table_kind):
    net = network()
    table = with_missing(table_kind)
    message = r"X contains missing values \(first in column 'c', row 7\)"
    for call in (lambda: net.predict(table), lambda: net.evaluate(table, LABELS), lambda: net.fit(table, LABELS, verbose=0)):
        with pytest.raises(ValueError, match=message):
            call()
    with pytest.raises(ValueError, match=r"X_val contains missing values \(first in column 'c', row 7\)"):
        net.fit(VALUES, LABELS, validation_data=(table, LABELS), verbose=0)


@pytest.mark.parametrize(
    "y_bad",
    [pd.Series([*LABELS[:5], None, *LABELS[6:]], dtype="Int64", name="target"), pl.Series("target", [*LABELS[:5], None, *LABELS[6:]])],
    ids=["pandas", "polars"],
)
def test_missing_labels_are_a_value_error(y_bad):
    net = network()
    with pytest.raises(ValueError, match=r"y contains missing values \(first in column 'target', row 5\)"):
        net.fit(VALUES, y_bad, verbose=0)
    with pytest.raises(ValueError, match=r"y_val contains missing values"):
        net.fit(VALUES, LABELS, validation_data=(VALUES, y_bad), verbose=0)


def test_nan_in_a_float_column_and_values_beyond_float32_are_named_as_in_arrays():
    net = network()
    frame = pd.DataFrame(VALUES / 2, columns=list("abcd"))
    frame.iloc[9, 2] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or Inf \(first at row 9, column 2\)"):
        net.fit(frame, LABELS, verbose=0)
    frame.iloc[9, 2] = 1e300
    for call in (lambda: net.predict(frame), lambda: net.fit(frame, LABELS, verbose=0)):
        with pytest.raises(ValueError, match=r"X holds 1e\+300 at row 9, column 'c', beyond the range of float32"):
            call()
    np.testing.assert_array_equal(network(dtype="float64").predict(frame), network(dtype="float64").predict(frame.to_numpy()))
    huge = VALUES.tolist()
    huge[3][1] = 10**39  # a Python int beyond int64 and float32
    with pytest.raises(ValueError, match=r"X holds 1e\+39 at row 3, column 1, beyond the range of float32"):
        net.predict(huge)
    huge[3][1] = 10**400
    with pytest.raises(ValueError, match=r"X holds an integer beyond the range of float64"):
        net.predict(huge)


def test_a_contiguous_array_of_the_network_dtype_is_never_copied():
    X = VALUES.astype(np.float32)
    assert engine_ready(X, 4, np.dtype(np.float32))
    assert prepare_X(X, 4, np.dtype(np.float32))[0] is X
    assert read_X(X, np.dtype(np.float32), "X") is X
    assert not engine_ready(VALUES, 4, np.dtype(np.float32))


def peak_bytes(call):
    tracemalloc.start()
    try:
        call()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize(
    ("make", "copies"),
    [
        (lambda v: v.astype(np.float32), 0),
        (lambda v: v.astype(np.int8), 1),
        (lambda v: v.astype(np.float64), 1),
        (lambda v: pd.DataFrame(v.astype(np.float64)), 1),
        (lambda v: pd.DataFrame(v.astype(np.int16)).assign(extra=np.float64(0.5)), 1),
        (lambda v: pl.DataFrame(v.astype(np.float64)), 1),
    ],
    ids=["float32", "int8", "float64", "pandas-float64", "pandas-mixed", "polars-float64"],
)
def test_input_is_converted_at_most_once_per_call(make, copies):
    # about 4 MB once in float32: an extra copy shows in the peak of traced memory
    rng = np.random.default_rng(1)
    values = rng.integers(-100, 100, (20_000, 50))
    X = make(values)
    net = fastgd.Network([X.shape[1], 3], seed=0)
    out = np.empty((len(values), 3), np.float32)
    one_copy = values.size * 4
    peak = peak_bytes(lambda: net.predict(X, out=out))
    assert copies * one_copy <= peak < copies * one_copy + one_copy // 4
    peak = peak_bytes(lambda: net.evaluate(X, values[:, 0] % 3))
    assert copies * one_copy <= peak < copies * one_copy + one_copy // 2


def test_memory_mapped_integers_are_streamed_in_parts(tmp_path, monkeypatch):
    monkeypatch.setattr(fastgd._training, "STREAM_CHUNK_BYTES", 4 * 4 * 8)  # parts of 8 rows
    np.save(tmp_path / "X.npy", VALUES.astype(np.uint8))
    X = np.load(tmp_path / "X.npy", mmap_mode="r")
    assert prepare_X(X, 4, np.dtype(np.float32), convert=False)[0] is X
    net, twin = network(), network()
    history = net.fit(X, LABELS, epochs=2, batch_size=8, shuffle=False, validation_data=(X, LABELS), seed=0, verbose=0)
    expected = twin.fit(VALUES.astype(np.float32), LABELS, epochs=2, batch_size=8, shuffle=False,
                        validation_data=(VALUES.astype(np.float32), LABELS), seed=0, verbose=0)
    np.testing.assert_allclose(history.history["loss"], expected.history["loss"], rtol=1e-12)
    np.testing.assert_allclose(history.history["val_loss"], expected.history["val_loss"], rtol=1e-12)
    np.testing.assert_allclose(net.evaluate(X, LABELS)["loss"], twin.evaluate(VALUES.astype(np.float32), LABELS)["loss"], rtol=1e-12)
    for (W, b), (W0, b0) in zip(net.params, twin.params):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)


def test_pandas_and_polars_are_not_imported_for_arrays_and_lists():
    code = (
        "import sys, numpy as np, fastgd\n"
        "net = fastgd.Network([4, 3], seed=0)\n"
        "X = np.arange(24).reshape(6, 4)\n"
        "net.fit(X, [0, 1, 2, 0, 1, 2], validation_data=(X.tolist(), np.arange(6) % 3), verbose=0)\n"
        "net.predict(X.astype(np.uint8)); net.evaluate(X.tolist(), [0, 1, 2, 0, 1, 2])\n"
        "print(sorted(name for name in ('pandas', 'polars') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
