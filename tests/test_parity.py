"""The C++ engine and the NumPy twin take the same steps: same seed, same batches, same weights."""

import numpy as np
import pytest

import fastgd
from conftest import random_problem

TOLERANCE = {"float64": dict(rtol=1e-9, atol=1e-12), "float32": dict(rtol=1e-4, atol=1e-6)}
OPTIMIZERS = {
    "plain": dict(lr=0.1),
    "momentum": dict(lr=0.05, momentum=0.9),
    "nesterov": dict(lr=0.05, momentum=0.9, nesterov=True),
    "weight_decay": dict(lr=0.1, momentum=0.5, weight_decay=0.01),
}
NETWORKS = {
    "sigmoid-mse": dict(activation="sigmoid", output_activation="sigmoid", loss="mse"),
    "relu-softmax-ce": dict(activation="relu", output_activation="softmax", loss="cross_entropy"),
    "tanh-sigmoid-ce": dict(activation="tanh", output_activation="sigmoid", loss="cross_entropy"),
    "leaky-identity-mse": dict(activation="leaky_relu", output_activation="identity", loss="mse"),
}


def twins(config, dtype, sizes=(12, 16, 8, 5)):
    args = dict(config, dtype=dtype, seed=7)
    return fastgd.Network(list(sizes), **args), fastgd.reference.Network(list(sizes), **args)


def assert_same_params(cpp, twin, dtype):
    for (W, b), (tW, tb) in zip(cpp.params, twin.params):
        np.testing.assert_allclose(W, tW, **TOLERANCE[dtype])
        np.testing.assert_allclose(b, tb, **TOLERANCE[dtype])


@pytest.mark.parametrize("inputs", ["dense", "sparse"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("network", NETWORKS)
def test_hundred_sgd_steps_give_the_same_weights(network, optimizer, dtype, inputs):
    config = NETWORKS[network]
    cpp, twin = twins(config, dtype)
    assert_same_params(cpp, twin, dtype)
    rng = np.random.default_rng(11)
    # 230 rows in batches of 10: 23 steps an epoch, the last batch full; 4 epochs + 8 train_steps = 100.
    X, y = random_problem(rng, 230, 12, 5, config["loss"], config["output_activation"])
    if inputs == "sparse":
        # 80 % zeros: the engine's first layer takes each batch through its sparse kernels
        X = np.where(rng.random(X.shape) < 0.8, 0.0, X).astype(X.dtype)
    opt_cpp, opt_twin = fastgd.SGD(**OPTIMIZERS[optimizer]), fastgd.SGD(**OPTIMIZERS[optimizer])
    h_cpp = cpp.fit(X, y, epochs=4, batch_size=10, optimizer=opt_cpp, seed=3, verbose=0)
    h_twin = twin.fit(X, y, epochs=4, batch_size=10, optimizer=opt_twin, seed=3, verbose=0)
    for step in range(8):
        rows = slice(step * 7, step * 7 + 7)
        loss_cpp = cpp.train_step(X[rows], y[rows], opt_cpp)
        loss_twin = twin.train_step(X[rows], y[rows], opt_twin)
        assert loss_cpp == pytest.approx(loss_twin, rel=TOLERANCE[dtype]["rtol"])
    assert opt_cpp._states[cpp].steps == 100
    assert opt_twin._states[twin].steps == 100
    np.testing.assert_allclose(h_cpp.history["loss"], h_twin.history["loss"], rtol=TOLERANCE[dtype]["rtol"])
    assert_same_params(cpp, twin, dtype)
    np.testing.assert_allclose(cpp.predict(X), twin.predict(X), **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_uneven_last_batch_and_validation_match(dtype):
    config = NETWORKS["relu-softmax-ce"]
    cpp, twin = twins(config, dtype, sizes=(6, 9, 4))
    rng = np.random.default_rng(2)
    X, y = random_problem(rng, 53, 6, 4, "cross_entropy", "softmax")
    Xv, yv = random_problem(rng, 17, 6, 4, "cross_entropy", "softmax")
    kwargs = dict(epochs=3, batch_size=8, seed=9, validation_data=(Xv, yv), verbose=0)
    h_cpp = cpp.fit(X, y, optimizer=fastgd.SGD(lr=0.2, momentum=0.8), **kwargs)
    h_twin = twin.fit(X, y, optimizer=fastgd.SGD(lr=0.2, momentum=0.8), **kwargs)
    assert set(h_cpp.history) == {"loss", "val_loss", "val_accuracy"}
    for key in h_cpp.history:
        np.testing.assert_allclose(h_cpp.history[key], h_twin.history[key], rtol=TOLERANCE[dtype]["rtol"])
    assert_same_params(cpp, twin, dtype)


def test_unshuffled_fit_visits_rows_in_order():
    cpp, twin = twins(NETWORKS["sigmoid-mse"], "float64", sizes=(3, 2))
    rng = np.random.default_rng(0)
    X, y = random_problem(rng, 10, 3, 2, "mse", "sigmoid")
    cpp.fit(X, y, epochs=2, batch_size=4, shuffle=False, optimizer=fastgd.SGD(lr=0.5), verbose=0)
    opt = fastgd.SGD(lr=0.5)
    for _ in range(2):
        for start in range(0, 10, 4):
            twin.train_step(X[start:start + 4], y[start:start + 4], opt)
    assert_same_params(cpp, twin, "float64")


@pytest.mark.parametrize("n_out", [8, 30, 67, 1030])
def test_sparse_first_layer_matches_its_twins(n_out):
    # The engine's first layer skips the zeros of a mostly-zero input (sparse.hpp); its NumPy
    # twins do the same, and all of them equal the dense products.
    rng = np.random.default_rng(n_out)
    X = np.where(rng.random((40, 50)) < 0.8, 0.0, rng.standard_normal((40, 50)))
    X[3] = 0.0
    cpp = fastgd.Network([50, n_out, 4], activation="identity", output_activation="identity", loss="mse", dtype="float64", seed=1)
    W, b = cpp.params[0]
    b[...] = rng.standard_normal(n_out)
    z = fastgd.reference.sparse_dense_forward(X, W, b)
    np.testing.assert_allclose(z, fastgd.reference.dense_forward(X, W, b), rtol=1e-12, atol=1e-12)
    dz = rng.standard_normal((40, n_out))
    target = rng.standard_normal(W.shape)
    expected = target - 0.5 * fastgd.reference.dense_backward_params(dz, X)[0]
    np.testing.assert_allclose(fastgd.reference.sparse_accumulate_gradient(target.copy(), -0.5, X, dz), expected, rtol=1e-12, atol=1e-12)
    # the engine: its output is the first layer's z through identity layers, and its first
    # layer's weight gradient is Xᵀ dz for the dz its loss gives
    twin = fastgd.reference.Network([50, n_out, 4], activation="identity", output_activation="identity", loss="mse", dtype="float64", seed=1)
    twin.params = cpp.params
    np.testing.assert_allclose(cpp.predict(X), twin.predict(X), rtol=1e-12, atol=1e-12)
    y = rng.standard_normal((40, 4))
    (_, grads), (_, twin_grads) = cpp.gradients(X, y), twin.gradients(X, y)
    for (dW, db), (tW, tb) in zip(grads, twin_grads):
        np.testing.assert_allclose(dW, tW, rtol=1e-11, atol=1e-13)
        np.testing.assert_allclose(db, tb, rtol=1e-11, atol=1e-13)
    assert not grads[0][0][~X.any(axis=0)].any()
