"""The public Network API: construction, params, predict/evaluate/fit/train_step, dtypes, seeds."""

import numpy as np
import pytest

import fastgd

XOR_X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float64)
XOR_Y = np.array([0, 1, 1, 0])


def test_public_names():
    for name in fastgd.__all__:
        assert hasattr(fastgd, name), name
    assert fastgd.__version__ == "0.1.0"
    info = fastgd.build_info()
    assert info["eigen"].startswith("3.4")
    # Assertions are compiled out of a release build; only the sanitizer build keeps them.
    assert info["debug"] is info["sanitizers"]


def test_sizes_and_dense_layers_build_the_same_network():
    by_sizes = fastgd.Network([784, 128, 10], activation="relu", output_activation="softmax", seed=0)
    by_layers = fastgd.Network(
        [fastgd.Dense(784, 128, activation="relu"), fastgd.Dense(128, 10, activation="softmax")],
        loss="cross_entropy",
        seed=0,
    )
    assert by_sizes.layers == by_layers.layers
    assert by_sizes.sizes == [784, 128, 10]
    for (W, b), (W2, b2) in zip(by_sizes.params, by_layers.params):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    assert "Dense(784, 128, activation='relu')" in repr(by_sizes)


@pytest.mark.parametrize("dtype", ["float32", "float64", np.float32, np.dtype("float64")])
def test_params_shapes_dtype_and_initialization(dtype):
    net = fastgd.Network([50, 20, 3], dtype=dtype, seed=4)
    assert [(W.shape, b.shape) for W, b in net.params] == [((50, 20), (20,)), ((20, 3), (3,))]
    for W, b in net.params:
        assert W.dtype == net.dtype and b.dtype == net.dtype
        assert W.flags.c_contiguous and W.flags.writeable
        np.testing.assert_array_equal(b, 0)
    # W ~ N(0, 1/n_in)
    assert np.std(net.params[0][0]) == pytest.approx(1 / np.sqrt(50), rel=0.1)


def test_same_seed_same_weights_and_float32_matches_float64_draw():
    a = fastgd.Network([30, 10, 2], seed=123, dtype="float64")
    b = fastgd.Network([30, 10, 2], seed=123, dtype="float64")
    c = fastgd.Network([30, 10, 2], seed=124, dtype="float64")
    d = fastgd.Network([30, 10, 2], seed=123, dtype="float32")
    np.testing.assert_array_equal(a.params[0][0], b.params[0][0])
    assert not np.array_equal(a.params[0][0], c.params[0][0])
    np.testing.assert_array_equal(d.params[0][0], a.params[0][0].astype(np.float32))
    twin = fastgd.reference.Network([30, 10, 2], seed=123, dtype="float64")
    np.testing.assert_array_equal(twin.params[0][0], a.params[0][0])


def test_params_are_views_shared_with_the_engine():
    net = fastgd.Network([3, 2], activation="relu", output_activation="identity", loss="mse", dtype="float64", seed=0)
    W, b = net.params[0]
    W[...] = [[1, 0], [0, 1], [1, 1]]
    b[...] = [10, 20]
    np.testing.assert_array_equal(net.predict([[1.0, 2.0, 3.0]]), [[14.0, 25.0]])
    net.fit(np.ones((4, 3)), np.zeros((4, 2)), epochs=2, optimizer=fastgd.SGD(lr=0.01), verbose=0)
    net.params.clear()
    np.testing.assert_array_equal(net.params[0][0], W)
    assert np.shares_memory(net.params[0][0], W)
    assert not np.array_equal(W, [[1, 0], [0, 1], [1, 1]])


def test_params_view_outlives_the_network():
    W = fastgd.Network([4, 3], seed=0).params[0][0]
    W[0, 0] = 5.0
    assert W[0, 0] == 5.0


def test_params_assignment_copies_and_checks():
    net = fastgd.Network([3, 4, 2], seed=0, dtype="float64")
    other = fastgd.Network([3, 4, 2], seed=1, dtype="float64")
    net.params = other.params
    for (W, b), (W2, b2) in zip(net.params, other.params):
        np.testing.assert_array_equal(W, W2)
        assert not np.shares_memory(W, W2)
    before = [W.copy() for W, _ in net.params]
    with pytest.raises(ValueError, match=r"params\[1\] W has shape \(4, 3\), expected \(4, 2\)"):
        net.params = [other.params[0], (np.zeros((4, 3)), np.zeros(2))]
    with pytest.raises(ValueError, match=r"params\[0\] b contains NaN"):
        net.params = [(other.params[0][0], np.full(4, np.nan)), other.params[1]]
    for (W, _), saved in zip(net.params, before):
        np.testing.assert_array_equal(W, saved)


@pytest.mark.parametrize("engine", [fastgd, fastgd.reference], ids=["cpp", "numpy"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_learns_xor(engine, dtype):
    net = engine.Network([2, 8, 1], activation="tanh", output_activation="sigmoid", loss="cross_entropy", dtype=dtype, seed=0)
    history = net.fit(XOR_X, XOR_Y, epochs=500, batch_size=4, optimizer=fastgd.SGD(lr=0.5, momentum=0.9), verbose=0)
    assert history.history["loss"][-1] < 0.02
    assert history.history["loss"][-1] < history.history["loss"][0] / 10
    np.testing.assert_array_equal(net.predict(XOR_X)[:, 0] > 0.5, XOR_Y == 1)
    assert net.evaluate(XOR_X, XOR_Y)["accuracy"] == 1.0


def test_restored_params_predict_the_same():
    trained = fastgd.Network([2, 8, 2], activation="tanh", seed=0)
    trained.fit(XOR_X, XOR_Y, epochs=300, batch_size=2, optimizer=fastgd.SGD(lr=0.3, momentum=0.9), seed=0, verbose=0)
    saved = [(W.copy(), b.copy()) for W, b in trained.params]
    restored = fastgd.Network([2, 8, 2], activation="tanh", seed=99)
    restored.params = saved
    np.testing.assert_array_equal(restored.predict(XOR_X), trained.predict(XOR_X))
    assert restored.evaluate(XOR_X, XOR_Y) == trained.evaluate(XOR_X, XOR_Y)
    assert trained.evaluate(XOR_X, XOR_Y)["accuracy"] == 1.0


def test_predict_shapes_and_input_forms():
    net = fastgd.Network([3, 5, 4], seed=0)
    X = np.random.default_rng(0).standard_normal((7, 3))
    out = net.predict(X)
    assert out.shape == (7, 4) and out.dtype == np.float32
    np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-6)
    np.testing.assert_array_equal(net.predict(X.tolist()), out)
    np.testing.assert_array_equal(net.predict(np.asfortranarray(X)), out)
    np.testing.assert_array_equal(net.predict(X[::-1])[::-1], out)
    single = net.predict(X[2])
    assert single.shape == (4,)
    np.testing.assert_array_equal(single, out[2])
    big = np.random.default_rng(1).standard_normal((3000, 3))
    np.testing.assert_allclose(net.predict(big)[1500:1507], net.predict(big[1500:1507]), rtol=1e-6)


def test_evaluate_returns_mean_loss_and_accuracy():
    net = fastgd.Network([2, 3], activation="relu", output_activation="softmax", dtype="float64", seed=0)
    W, b = net.params[0]
    W[...] = [[2, 0, 0], [0, 2, 0]]
    X = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])
    y = np.array([0, 1, 2])
    result = net.evaluate(X, y)
    probs = np.exp([2, 0, 0]) / np.exp([2, 0, 0]).sum()
    assert result["loss"] == pytest.approx(-(2 * np.log(probs[0]) + np.log(probs[2])) / 3)
    assert result["accuracy"] == pytest.approx(2 / 3)
    one_hot = np.eye(3)[y]
    assert net.evaluate(X, one_hot) == pytest.approx(result)


def test_regression_has_no_accuracy():
    net = fastgd.Network([2, 4, 2], output_activation="identity", loss="mse", seed=0)
    result = net.evaluate(np.ones((3, 2)), np.full((3, 2), 0.3))
    assert set(result) == {"loss"}
    history = net.fit(np.ones((3, 2)), np.full((3, 2), 0.3), validation_data=(np.ones((2, 2)), np.zeros((2, 2))), verbose=0)
    assert set(history.history) == {"loss", "val_loss"}


def test_train_step_returns_loss_before_the_update():
    net = fastgd.Network([4, 6, 3], dtype="float64", seed=2)
    X = np.random.default_rng(0).standard_normal((8, 4))
    y = np.arange(8) % 3
    before = net.evaluate(X, y)["loss"]
    loss = net.train_step(X, y, fastgd.SGD(lr=0.1))
    assert loss == pytest.approx(before, rel=1e-12)
    assert net.evaluate(X, y)["loss"] < before


def test_fit_history_and_verbose_output(capsys):
    net = fastgd.Network([4, 3], seed=0)
    X = np.random.default_rng(0).standard_normal((20, 4))
    y = np.arange(20) % 3
    history = net.fit(X, y, epochs=3, batch_size=6, validation_data=(X, y), verbose=1)
    assert history.epoch == [1, 2, 3]
    assert all(len(values) == 3 for values in history.history.values())
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 3 and lines[0].startswith("epoch 1/3 - loss: ") and "val_accuracy" in lines[0]
    net.fit(X, y, epochs=2, verbose=0)
    assert capsys.readouterr().out == ""


def test_batch_larger_than_data_is_one_batch():
    a = fastgd.Network([3, 2], dtype="float64", seed=0)
    b = fastgd.Network([3, 2], dtype="float64", seed=0)
    X, y = np.random.default_rng(0).standard_normal((5, 3)), np.array([0, 1, 1, 0, 1])
    a.fit(X, y, epochs=1, batch_size=1000, shuffle=False, optimizer=fastgd.SGD(lr=0.1), verbose=0)
    b.train_step(X, y, fastgd.SGD(lr=0.1))
    np.testing.assert_array_equal(a.params[0][0], b.params[0][0])


def test_training_is_reproducible_bit_for_bit():
    rng = np.random.default_rng(5)
    X, y = rng.standard_normal((300, 20)).astype(np.float32), rng.integers(0, 4, 300)

    def train():
        net = fastgd.Network([20, 32, 4], seed=1)
        net.fit(X, y, epochs=3, batch_size=16, optimizer=fastgd.SGD(lr=0.1, momentum=0.9), seed=2, verbose=0)
        return net.params

    for (W, b), (W2, b2) in zip(train(), train()):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)


def test_optimizer_keeps_state_per_network():
    opt = fastgd.SGD(lr=0.1, momentum=0.9)
    a, b = fastgd.Network([3, 2], seed=0), fastgd.Network([5, 4, 2], seed=0)
    a.fit(np.ones((4, 3)), [0, 1, 0, 1], epochs=2, batch_size=2, optimizer=opt, verbose=0)
    b.fit(np.ones((6, 5)), [0, 1, 0, 1, 1, 1], epochs=1, batch_size=3, optimizer=opt, verbose=0)
    assert opt._states[a].steps == 4 and opt._states[b].steps == 2
    assert [v[0].shape for v in opt._states[b].velocity] == [(5, 4), (4, 2)]


def test_changed_learning_rate_is_used_by_the_next_fit():
    opt = fastgd.SGD(lr=0.1)
    net = fastgd.Network([3, 2], dtype="float64", seed=0)
    X, y = np.ones((2, 3)), [0, 1]
    net.fit(X, y, optimizer=opt, verbose=0)
    opt.lr = 0.0125
    before = net.params[0][0].copy()
    _, ((dW, _),) = net.gradients(X, y)
    net.fit(X, y, optimizer=opt, verbose=0)
    np.testing.assert_allclose(net.params[0][0], before - 0.0125 * dW, rtol=1e-12)


def test_thread_count_can_be_set():
    saved = fastgd.get_num_threads()
    try:
        fastgd.set_num_threads(1)
        assert fastgd.get_num_threads() == 1
    finally:
        fastgd.set_num_threads(saved)
    with pytest.raises(ValueError, match="at least 1"):
        fastgd.set_num_threads(0)


@pytest.mark.parametrize(
    ("init", "std"),
    [("scaled_normal", 1 / np.sqrt(400)), ("normal", 1.0), ("glorot_uniform", np.sqrt(2 / 600)), ("he_normal", np.sqrt(2 / 400))],
)
def test_initializers_draw_the_documented_distributions(init, std):
    net = fastgd.Network([400, 200, 10], init=init, dtype="float64", seed=0)
    W, b = net.params[0]
    assert np.std(W) == pytest.approx(std, rel=0.03)
    assert abs(np.mean(W)) < 0.05 * std
    np.testing.assert_array_equal(b, 0)
    if init == "glorot_uniform":
        assert np.abs(W).max() <= np.sqrt(6 / 600)
    twin = fastgd.reference.Network([400, 200, 10], init=init, dtype="float64", seed=0)
    np.testing.assert_array_equal(twin.params[0][0], W)


def test_normal_biases_and_bad_initializer_names():
    b = fastgd.Network([50, 2000, 10], bias_init="normal", dtype="float64", seed=0).params[0][1]
    assert np.std(b) == pytest.approx(1.0, rel=0.05)
    with pytest.raises(ValueError, match="unknown init 'xavier'"):
        fastgd.Network([4, 3], init="xavier")
    with pytest.raises(ValueError, match="unknown bias_init 'ones'"):
        fastgd.Network([4, 3], bias_init="ones")
