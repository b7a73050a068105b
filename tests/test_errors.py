"""Bad input raises a Python exception whose message names the problem."""

import numpy as np
import pytest

import fastgd


@pytest.fixture
def net():
    return fastgd.Network([4, 5, 3], seed=0)


X = np.zeros((6, 4), dtype=np.float32)
Y = np.array([0, 1, 2, 0, 1, 2])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(layers=[4, 5, 3], activation="swish"), ValueError, "unknown activation 'swish'"),
        (dict(layers=[4, 3], loss="hinge"), ValueError, "unknown loss 'hinge'"),
        (dict(layers=[4, 3], dtype="float16"), ValueError, "unsupported dtype 'float16'"),
        (dict(layers=[4, 3], dtype="int32"), ValueError, "unsupported dtype"),
        (dict(layers=[4]), ValueError, "at least an input and an output size"),
        (dict(layers=[4, 0, 3]), ValueError, "layer size must be at least 1, got 0"),
        (dict(layers=[4, -2, 3]), ValueError, "layer size must be at least 1, got -2"),
        (dict(layers=[4, 2.5, 3]), TypeError, "layer size must be an integer"),
        (dict(layers="784,10"), TypeError, "layers must be a list"),
        (dict(layers=[4, 5, 3], activation="softmax"), ValueError, "softmax is only allowed on the output layer"),
        (dict(layers=[4, 3], output_activation="relu"), ValueError, "cross_entropy needs a softmax or sigmoid output layer, got 'relu'"),
        (dict(layers=[fastgd.Dense(4, 5), fastgd.Dense(6, 3, "softmax")]), ValueError, "layers do not chain"),
        (dict(layers=[fastgd.Dense(4, 5), 3]), TypeError, "not a mix"),
    ],
)
def test_constructor_errors(kwargs, error, message):
    with pytest.raises(error, match=message):
        fastgd.Network(**kwargs)


def test_dense_errors():
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        fastgd.Dense(3, 4, activation="gelu")
    with pytest.raises(ValueError, match="n_out must be at least 1"):
        fastgd.Dense(3, 0)


def _nan_at(row, col):
    bad = X.copy()
    bad[row, col] = np.nan
    return bad


@pytest.mark.parametrize(
    ("X_bad", "error", "message"),
    [
        (np.zeros((6, 5), np.float32), ValueError, "X has 5 features, but the network's input layer takes 4"),
        (np.zeros((6, 4, 1), np.float32), ValueError, "X must be 2-D"),
        (np.zeros((0, 4), np.float32), ValueError, r"X is empty \(0 samples\)"),
        (_nan_at(3, 2), ValueError, r"X contains NaN or Inf \(first at row 3, column 2\)"),
        (np.full((6, 4), np.inf), ValueError, "X contains NaN or Inf"),
        (np.zeros((6, 4), np.complex128), TypeError, "X has dtype complex128; fastgd takes real numbers"),
        (np.zeros((6, 4), object), TypeError, "X has dtype object"),
        (np.array([["a"] * 4] * 6), TypeError, "X has dtype <U1"),
        ([["a", "b", "c", "d"]] * 6, TypeError, "X has dtype <U1"),
    ],
)
def test_bad_X_in_fit_predict_evaluate(net, X_bad, error, message):
    with pytest.raises(error, match=message):
        net.fit(X_bad, Y, verbose=0)
    with pytest.raises(error, match=message):
        net.evaluate(X_bad, Y)
    if np.ndim(X_bad) == 2:
        with pytest.raises(error, match=message):
            net.predict(X_bad)


@pytest.mark.parametrize(
    ("y_bad", "error", "message"),
    [
        (np.array([0, 1, 2, 3, 1, 2]), ValueError, r"label 3 at index 3 of y is out of range for an output layer of 3 units \(labels must be 0..2\)"),
        (np.array([0, -1, 2, 0, 1, 2]), ValueError, "label -1 at index 1"),
        (np.array([0, 1.5, 2, 0, 1, 2]), ValueError, "non-integer class label 1.5 at index 1"),
        (np.array([0, np.nan, 2, 0, 1, 2]), ValueError, "non-integer class label nan at index 1"),
        (np.array([0, 1, 2]), ValueError, "X has 6 samples but y has 3"),
        (np.zeros((6, 4)), ValueError, r"y has shape \(6, 4\), but the network has 3 outputs"),
        (np.full((6, 3), np.inf), ValueError, "y contains NaN or Inf"),
        (np.array(["a"] * 6), TypeError, "y has dtype <U1"),
        (np.zeros((6, 3, 1)), ValueError, "y must be 1-D class labels or 2-D targets"),
    ],
)
def test_bad_y(net, y_bad, error, message):
    with pytest.raises(error, match=message):
        net.fit(X, y_bad, verbose=0)
    with pytest.raises(error, match=message):
        net.evaluate(X, y_bad)
    with pytest.raises(error, match=message):
        net.train_step(X, y_bad, fastgd.SGD(lr=0.1))


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(epochs=0), ValueError, "epochs must be at least 1, got 0"),
        (dict(epochs=2.0), TypeError, "epochs must be an integer"),
        (dict(batch_size=0), ValueError, "batch_size must be at least 1, got 0"),
        (dict(batch_size=-5), ValueError, "batch_size must be at least 1"),
        (dict(optimizer="sgd"), TypeError, "optimizer must be a fastgd optimizer"),
        (dict(validation_data=X), TypeError, r"validation_data must be a tuple \(X_val, y_val\)"),
        (dict(validation_data=(X[:, :3], Y)), ValueError, "X_val has 3 features"),
        (dict(validation_data=(X, Y[:2])), ValueError, "X_val has 6 samples but y_val has 2"),
    ],
)
def test_bad_fit_arguments(net, kwargs, error, message):
    with pytest.raises(error, match=message):
        net.fit(X, Y, verbose=0, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        (dict(lr=-0.1), ValueError, "lr must be positive, got -0.1"),
        (dict(lr=0), ValueError, "lr must be positive"),
        (dict(lr=float("nan")), ValueError, "lr must be finite, got nan"),
        (dict(lr="fast"), TypeError, "lr must be a real number"),
        (dict(lr=0.1, momentum=-0.5), ValueError, "momentum must be at least 0.0"),
        (dict(lr=0.1, weight_decay=float("inf")), ValueError, "weight_decay must be finite"),
        (dict(lr=0.1, nesterov=True), ValueError, "nesterov momentum needs momentum > 0"),
    ],
)
def test_bad_optimizer(kwargs, error, message):
    with pytest.raises(error, match=message):
        fastgd.SGD(**kwargs)


def test_optimizer_changed_to_bad_value_is_caught_at_fit(net):
    opt = fastgd.SGD(lr=0.1)
    opt.lr = -1
    with pytest.raises(ValueError, match="lr must be positive"):
        net.fit(X, Y, optimizer=opt, verbose=0)


def test_divergence_raises_naming_epoch_and_batch():
    net = fastgd.Network([4, 16, 3], activation="relu", output_activation="identity", loss="mse", seed=0)
    X_big = np.random.default_rng(0).standard_normal((64, 4)).astype(np.float32) * 100
    y = np.random.default_rng(1).standard_normal((64, 3)).astype(np.float32)
    with pytest.raises(fastgd.TrainingDiverged, match=r"at epoch \d+, batch \d+ \(learning rate 100\); the weights were restored .*try a lower learning rate"):
        net.fit(X_big, y, epochs=50, batch_size=8, optimizer=fastgd.SGD(lr=100.0), verbose=0)


def test_core_rejects_mismatched_arrays_without_crashing(net):
    core = net._core
    with pytest.raises(ValueError, match=r"out has shape \(6, 2\), expected \(6, 3\)"):
        core.predict(np.empty((6, 2), np.float32), X)
    with pytest.raises(ValueError, match="X has 3 features, the network takes 4"):
        core.predict(np.empty((6, 3), np.float32), np.zeros((6, 3), np.float32))
    with pytest.raises(TypeError):
        core.predict(np.empty((6, 3), np.float32), X.astype(np.float64))
    with pytest.raises(ValueError, match=r"order holds row 6, outside \[0, 6\)"):
        core.train_epoch(fastgd._core.SGD32(0.1), X, np.zeros((6, 3), np.float32), np.arange(1, 7), 2)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        core.train_epoch(fastgd._core.SGD32(0.1), X, np.zeros((6, 3), np.float32), None, 0)
    other = fastgd.Network([4, 3], seed=0)
    state = fastgd._core.SGD32(0.1, momentum=0.9)
    other._core.train_epoch(state, X, np.zeros((6, 3), np.float32), None, 6)
    with pytest.raises(ValueError, match="optimizer's state belongs to a network of another shape"):
        core.train_epoch(state, X, np.zeros((6, 3), np.float32), None, 6)
    with pytest.raises(IndexError):
        core.weight(2)


@pytest.mark.parametrize("engine", [fastgd, fastgd.reference], ids=["cpp", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_nan_found_mid_epoch_names_the_first_and_leaves_nothing_trained(engine, dtype):
    # The C++ engine finds bad rows as the epoch gathers them (in shuffled order), after some
    # batches were applied; fit must still name the first bad value and undo those batches.
    rng = np.random.default_rng(4)
    X = rng.standard_normal((300, 6)).astype(dtype)
    y = rng.integers(0, 3, 300)
    X[250, 4] = np.inf
    X[200, 2] = np.nan
    net = engine.Network([6, 8, 3], dtype=dtype, seed=0)
    optimizer = fastgd.SGD(lr=0.1, momentum=0.9)
    net.fit(X[:100], y[:100], epochs=1, batch_size=10, optimizer=optimizer, seed=0, verbose=0)
    before = [(W.copy(), b.copy()) for W, b in net.params]
    state_before = optimizer._state_for(net).get_state()
    with pytest.raises(ValueError, match=r"X contains NaN or Inf \(first at row 200, column 2\)"):
        net.fit(X, y, epochs=3, batch_size=10, optimizer=optimizer, seed=1, verbose=0)
    for (W, b), (W0, b0) in zip(net.params, before):
        np.testing.assert_array_equal(W, W0)
        np.testing.assert_array_equal(b, b0)
    state_after = optimizer._state_for(net).get_state()
    assert state_after["steps"] == state_before["steps"]
    for key, value in state_before.items():
        if isinstance(value, list):
            for array, array_before in zip(state_after[key], value):
                np.testing.assert_array_equal(array, array_before)


@pytest.mark.parametrize("engine", [fastgd, fastgd.reference], ids=["cpp", "numpy"])
def test_fit_names_a_value_beyond_float32_and_bad_values_in_the_validation_part(engine):
    rng = np.random.default_rng(5)
    X = rng.standard_normal((120, 6))
    y = rng.integers(0, 3, 120)
    net = engine.Network([6, 8, 3], dtype="float32", seed=0)
    X[70, 1] = 1e39
    with pytest.raises(ValueError, match=r"X holds 1e\+39 at row 70, column 1, beyond the range of float32"):
        net.fit(X, y, batch_size=10, verbose=0)
    X[70, 1] = 0.0
    X[110, 5] = np.nan
    with pytest.raises(ValueError, match=r"X contains NaN or Inf \(first at row 110, column 5\)"):
        net.fit(X, y, batch_size=10, validation_split=0.25, verbose=0)
    # a learning rate that diverges within the epoch does not hide the bad row
    with pytest.raises(ValueError, match=r"X contains NaN or Inf \(first at row 110, column 5\)"):
        net.fit(X, y, batch_size=1, optimizer=fastgd.SGD(lr=1e30), shuffle=False, verbose=0)
