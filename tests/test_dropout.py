"""Dropout: the engine's masks against the twin's bit for bit, gradients through fixed masks
against finite differences, training parity, inference untouched, seeding, checkpoints, errors."""

import numpy as np
import pytest

import fastgd
from fastgd import _core, reference
from test_gradcheck import finite_difference_gradient

MASKS = {np.float32: _core.dropout_mask32, np.float64: _core.dropout_mask64}


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("rate", [0.0, 0.1, 1 / 3, 0.5, 0.9, 0.999])
@pytest.mark.parametrize("seed", [0, 1, 123456789, 2**63, 2**64 - 1])
def test_engine_masks_equal_the_twins(dtype, rate, seed):
    for batch, layer in [(0, 0), (5, 2), (2**40, 7)]:
        engine = MASKS[dtype](13, 37, seed, batch, layer, rate)
        twin = reference.dropout_mask(13, 37, seed, batch, layer, rate, dtype)
        assert engine.dtype == twin.dtype == dtype
        np.testing.assert_array_equal(engine, twin)


def test_masks_drop_at_the_rate_and_scale_the_rest():
    for rate in (0.1, 0.5, 0.8):
        mask = _core.dropout_mask64(500, 400, 3, 0, 1, rate)
        dropped = np.mean(mask == 0)
        assert abs(dropped - rate) < 0.005
        assert set(np.unique(mask)) == {0.0, 1 / (1 - rate)}
        assert abs(mask.mean() - 1) < 0.01  # inverted dropout keeps the expected activation
    masks = [_core.dropout_mask64(200, 300, 3, batch, layer, 0.5) for batch in range(3) for layer in range(3)]
    for i, first in enumerate(masks):
        for second in masks[i + 1:]:
            agreement = np.mean((first == 0) == (second == 0))
            assert abs(agreement - 0.5) < 0.01  # independent masks agree half the time


def dropout_problem(engine, dtype="float64", seed=1):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((9, 5))
    y = rng.integers(0, 3, 9)
    layers = [
        fastgd.Dense(5, 6, "tanh", dropout=0.5),
        fastgd.Dense(6, 4, "sigmoid", dropout=0.25),
        fastgd.Dense(4, 3, "softmax"),
    ]
    return engine.Network(layers, dtype=dtype, seed=seed), X, y


@pytest.mark.parametrize("engine", [fastgd, reference], ids=["cpp", "numpy"])
def test_gradient_through_fixed_masks_matches_finite_differences(engine):
    net, X, y = dropout_problem(engine)
    _, analytic = net.gradients(X, y, dropout_seed=42)
    numeric = finite_difference_gradient(net, X, y, dropout_seed=42)
    for pair, numeric_pair in zip(analytic, numeric):
        for a, n in zip(pair, numeric_pair):
            np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-8)
    # the masks change the gradient: dropout is not a no-op
    _, undropped = net.gradients(X, y)
    assert not np.allclose(undropped[0][0], analytic[0][0])


def test_engine_and_twin_gradients_agree_through_masks():
    (cpp, X, y), (twin, _, _) = dropout_problem(fastgd), dropout_problem(reference)
    for seed in (0, 7, 2**64 - 1):
        loss, grads = cpp.gradients(X, y, dropout_seed=seed)
        twin_loss, twin_grads = twin.gradients(X, y, dropout_seed=seed)
        assert loss == pytest.approx(twin_loss, rel=1e-12)
        for pair, twin_pair in zip(grads, twin_grads):
            for a, t in zip(pair, twin_pair):
                np.testing.assert_allclose(a, t, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(("dtype", "tolerance"), [("float64", 1e-9), ("float32", 1e-4)])
def test_training_with_dropout_matches_the_twin(dtype, tolerance):
    rng = np.random.default_rng(4)
    X = rng.standard_normal((203, 10))
    y = rng.integers(0, 4, 203)
    args = dict(activation="relu", dropout=0.3, dtype=dtype, seed=2)
    cpp, twin = fastgd.Network([10, 32, 16, 4], **args), reference.Network([10, 32, 16, 4], **args)
    histories = [
        net.fit(X, y, epochs=4, batch_size=16, optimizer=fastgd.Adam(lr=1e-2), seed=9, verbose=0)
        for net in (cpp, twin)
    ]
    np.testing.assert_allclose(histories[0].history["loss"], histories[1].history["loss"], rtol=tolerance)
    for (W, b), (tW, tb) in zip(cpp.params, twin.params):
        np.testing.assert_allclose(W, tW, rtol=tolerance, atol=tolerance)
        np.testing.assert_allclose(b, tb, rtol=tolerance, atol=tolerance)


def test_inference_uses_every_unit_unscaled():
    net, X, y = dropout_problem(fastgd)
    plain = fastgd.Network(
        [fastgd.Dense(5, 6, "tanh"), fastgd.Dense(6, 4, "sigmoid"), fastgd.Dense(4, 3, "softmax")], dtype="float64"
    )
    plain.params = net.params
    np.testing.assert_array_equal(net.predict(X), plain.predict(X))
    np.testing.assert_array_equal(net.predict(X), net.predict(X))
    assert net.evaluate(X, y) == plain.evaluate(X, y)
    assert net.gradients(X, y)[0] == plain.gradients(X, y)[0]


def fit_weights(seed, fit_seed, epochs=3):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((100, 6)).astype(np.float32)
    y = rng.integers(0, 3, 100)
    net = fastgd.Network([6, 20, 3], dropout=0.5, seed=seed)
    net.fit(X, y, epochs=epochs, batch_size=8, optimizer=fastgd.SGD(lr=0.1), seed=fit_seed, verbose=0)
    return [array.copy() for pair in net.params for array in pair]


def test_same_seeds_give_identical_weights_and_another_seed_other_masks():
    first, again, other = fit_weights(1, 5), fit_weights(1, 5), fit_weights(1, 6)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_unshuffled_epochs_draw_new_masks():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, 6))
    y = rng.integers(0, 3, 40)
    net = fastgd.Network([6, 20, 3], dropout=0.5, dtype="float64", seed=0)
    optimizer = fastgd.SGD(lr=1e-300)  # too small to move any weight
    losses = net.fit(X, y, epochs=3, batch_size=40, optimizer=optimizer, shuffle=False, seed=1, verbose=0).history["loss"]
    assert len(set(losses)) == 3  # the weights stand still, so only new masks change the loss


def test_train_step_draws_new_masks_reproducibly():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((30, 6))
    y = rng.integers(0, 3, 30)
    runs = []
    for _ in range(2):
        net = fastgd.Network([6, 20, 3], dropout=0.5, dtype="float64", seed=3)
        runs.append([net.train_step(X, y, fastgd.SGD(lr=1e-300)) for _ in range(3)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3


def test_dropout_survives_save_and_load(tmp_path):
    net, X, y = dropout_problem(fastgd)
    net.save(tmp_path / "m.fgd")
    loaded = fastgd.load(tmp_path / "m.fgd")
    assert loaded.layers == net.layers and [layer.dropout for layer in loaded.layers] == [0.5, 0.25, 0.0]
    np.testing.assert_array_equal(loaded.gradients(X, y, dropout_seed=3)[1][0][0], net.gradients(X, y, dropout_seed=3)[1][0][0])


@pytest.mark.parametrize(
    ("make", "error", "message"),
    [
        (lambda: fastgd.Dense(3, 4, dropout=1.0), ValueError, "dropout must be below 1"),
        (lambda: fastgd.Dense(3, 4, dropout=-0.1), ValueError, "dropout must be at least 0"),
        (lambda: fastgd.Dense(3, 4, dropout="half"), TypeError, "dropout must be a real number"),
        (lambda: fastgd.Dense(3, 4, dropout=float("nan")), ValueError, "dropout must be finite"),
        (lambda: fastgd.Network([fastgd.Dense(3, 4, "softmax", dropout=0.5)]), ValueError, "not on the output layer"),
        (lambda: fastgd.Network([fastgd.Dense(3, 4, "relu"), fastgd.Dense(4, 2, "softmax")], dropout=0.5), ValueError, "give dropout to each fastgd.Dense"),
        (lambda: fastgd.Network([3, 4, 2], dropout=1.5), ValueError, "dropout must be below 1"),
        (lambda: fastgd.Network([3, 4, 2], dropout=0.5).gradients(np.ones((1, 3)), [0], dropout_seed=-1), ValueError, "dropout_seed must be at least 0"),
        (lambda: fastgd.Network([3, 4, 2], dropout=0.5).gradients(np.ones((1, 3)), [0], dropout_seed=2**64), ValueError, "dropout_seed must be below 2\\*\\*64"),
    ],
)
def test_bad_dropout_is_refused_with_a_clear_message(make, error, message):
    with pytest.raises(error, match=message):
        make()


def test_damaged_dropout_in_a_model_file_is_refused(tmp_path):
    net, _, _ = dropout_problem(fastgd)
    path = tmp_path / "m.fgd"
    net.save(path)
    data = path.read_bytes()
    # The architecture is JSON inside a JSON string: its quotes are escaped.
    damaged = data.replace(b'dropout\\": 0.5', b'dropout\\": 1.5', 1)
    assert damaged != data
    path.write_bytes(damaged)
    with pytest.raises(fastgd.ModelFormatError, match="dropout 1.5"):
        fastgd.load(path)
