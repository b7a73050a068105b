"""Gradients of the C++ engine and of the NumPy twin against central finite differences, float64."""

import itertools

import numpy as np
import pytest

import fastgd
from conftest import random_problem

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu"]
OUTPUT_LOSS = [(output, "mse") for output in HIDDEN + ["softmax"]] + [
    ("softmax", "cross_entropy"),
    ("sigmoid", "cross_entropy"),
]
CASES = [((output, loss), [], 1) for output, loss in OUTPUT_LOSS] + [
    ((output, loss), hidden, depth)
    for (output, loss), hidden, depth in itertools.product(OUTPUT_LOSS, HIDDEN, (2, 3))
]


def finite_difference_gradient(net, X, y, eps=1e-6, dropout_seed=None):
    grads = []
    for W, b in net.params:
        pair = []
        for param in (W, b):
            numeric = np.zeros_like(param)
            for index in np.ndindex(param.shape):
                saved = param[index]
                param[index] = saved + eps
                plus = net.gradients(X, y, dropout_seed)[0]
                param[index] = saved - eps
                minus = net.gradients(X, y, dropout_seed)[0]
                param[index] = saved
                numeric[index] = (plus - minus) / (2 * eps)
            pair.append(numeric)
        grads.append(tuple(pair))
    return grads


@pytest.mark.parametrize("engine", [fastgd, fastgd.reference], ids=["cpp", "numpy"])
@pytest.mark.parametrize(
    ("output_loss", "hidden", "depth"),
    CASES,
    ids=[f"{o}-{l}-{h or 'none'}-{d}layer" for (o, l), h, d in CASES],
)
def test_gradient_matches_finite_differences(engine, output_loss, hidden, depth):
    output, loss = output_loss
    rng = np.random.default_rng(depth)
    sizes = [4, 5, 3, 3][: depth] + [3]
    net = engine.Network(
        sizes, activation=hidden or "identity", output_activation=output, loss=loss, dtype="float64", seed=1
    )
    for _, b in net.params:
        b[...] = rng.standard_normal(b.shape)
    X, y = random_problem(rng, 6, sizes[0], sizes[-1], loss, output)
    _, analytic = net.gradients(X, y)
    numeric = finite_difference_gradient(net, X, y)
    worst = 0.0
    for (dW, db), (nW, nb) in zip(analytic, numeric):
        for a, n in ((dW, nW), (db, nb)):
            np.testing.assert_allclose(a, n, rtol=1e-5, atol=1e-7)
            worst = max(worst, float(np.max(np.abs(a - n))))
    assert worst < 1e-7


@pytest.mark.parametrize("engine", [fastgd, fastgd.reference], ids=["cpp", "numpy"])
@pytest.mark.parametrize(("hidden", "output", "loss"), [("relu", "softmax", "cross_entropy"), ("sigmoid", "sigmoid", "mse")])
def test_gradient_of_a_mostly_zero_input_matches_finite_differences(engine, hidden, output, loss):
    # 85 % zeros and a first layer 17 wide: the engine computes the first layer's product and
    # weight gradient from the input's nonzeros only
    rng = np.random.default_rng(8)
    net = engine.Network([20, 17, 3], activation=hidden, output_activation=output, loss=loss, dtype="float64", seed=2)
    for _, b in net.params:
        b[...] = rng.standard_normal(b.shape)  # a row of zeros then meets relu away from its kink
    X, y = random_problem(rng, 6, 20, 3, loss, output)
    X[rng.random(X.shape) < 0.85] = 0.0
    X[0, :] = 0.0
    _, analytic = net.gradients(X, y)
    numeric = finite_difference_gradient(net, X, y)
    for (dW, db), (nW, nb) in zip(analytic, numeric):
        np.testing.assert_allclose(dW, nW, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(db, nb, rtol=1e-5, atol=1e-7)
    zero_columns = ~X.any(axis=0)
    assert zero_columns.any()
    assert not analytic[0][0][zero_columns].any()


def test_cpp_gradients_equal_twin_gradients():
    rng = np.random.default_rng(3)
    for output, loss in OUTPUT_LOSS:
        args = dict(activation="tanh", output_activation=output, loss=loss, dtype="float64", seed=5)
        cpp, twin = fastgd.Network([7, 6, 5, 4], **args), fastgd.reference.Network([7, 6, 5, 4], **args)
        X, y = random_problem(rng, 9, 7, 4, loss, output)
        loss_cpp, grads_cpp = cpp.gradients(X, y)
        loss_twin, grads_twin = twin.gradients(X, y)
        assert loss_cpp == pytest.approx(loss_twin, rel=1e-12)
        for (dW, db), (tW, tb) in zip(grads_cpp, grads_twin):
            np.testing.assert_allclose(dW, tW, rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(db, tb, rtol=1e-10, atol=1e-14)


def test_soft_targets_softmax_cross_entropy_gradient():
    rng = np.random.default_rng(0)
    net = fastgd.Network([3, 4], activation="relu", output_activation="softmax", dtype="float64", seed=0)
    X = rng.standard_normal((5, 3))
    y = rng.uniform(0, 1, (5, 4))  # rows that do not sum to 1
    _, ((dW, db),) = net.gradients(X, y)
    (nW, nb), = finite_difference_gradient(net, X, y)
    np.testing.assert_allclose(dW, nW, rtol=1e-6, atol=1e-8)
    np.testing.assert_allclose(db, nb, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("output", ["softmax", "sigmoid"])
def test_cross_entropy_is_finite_for_saturated_outputs(output):
    net = fastgd.Network([2, 3], output_activation=output, loss="cross_entropy", dtype="float64", seed=0)
    W, b = net.params[0]
    W[...] = [[1000, -1000, 0], [0, 0, 0]]
    X = np.array([[1.0, 0.0]])
    wrong = [1] if output == "softmax" else [[0.0, 1.0, 0.0]]
    result = net.evaluate(X, wrong)
    assert np.isfinite(result["loss"]) and result["loss"] > 999
    loss, grads = net.gradients(X, wrong)
    assert np.isfinite(loss) and all(np.isfinite(g).all() for pair in grads for g in pair)
