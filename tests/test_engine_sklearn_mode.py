"""The engine in scikit-learn's mode: per-row sample weights and scikit-learn's L2 penalty in the
epoch, CSR input, the full gradient (the lbfgs objective), and scikit-learn's SGD and Adam. Checked
against the NumPy twin, central finite differences, and scikit-learn's own MLP internals."""

import subprocess
import sys
import textwrap
import warnings

import numpy as np
import pytest
import scipy.sparse as sp

import fastgd
from fastgd import reference
from fastgd._training import loss_and_gradients, prepare_sparse, run_epoch
from fastgd.optimizers import SklearnAdam, SklearnSGD

TOLERANCE = {"float64": 1e-9, "float32": 1e-4}
NETWORKS = {
    "relu-softmax-ce": dict(activation="relu", output_activation="softmax", loss="cross_entropy"),
    "tanh-sigmoid-ce": dict(activation="tanh", output_activation="sigmoid", loss="cross_entropy"),
    "sigmoid-identity-mse": dict(activation="sigmoid", output_activation="identity", loss="mse"),
}
OPTIMIZERS = {
    "sklearn-sgd-nesterov": lambda: SklearnSGD(lr=0.05, momentum=0.9, nesterov=True),
    "sklearn-sgd-momentum": lambda: SklearnSGD(lr=0.05, momentum=0.9, nesterov=False),
    "sklearn-sgd-no-momentum": lambda: SklearnSGD(lr=0.1, momentum=0.0, nesterov=False),
    "sklearn-sgd-no-momentum-nesterov": lambda: SklearnSGD(lr=0.1, momentum=0.0, nesterov=True),
    "sklearn-adam": lambda: SklearnAdam(lr=0.01),
    # torch's SGD fuses its update with the backward pass when there is no L2 term
    "torch-sgd": lambda: fastgd.SGD(lr=0.05, momentum=0.9),
}
ENGINES = {"cpp": fastgd.Network, "twin": reference.Network}


def assert_close(actual, expected, rtol, what=""):
    """Equal within rtol relative to the largest entry of `expected`, entry by entry."""
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} vs {expected.shape}"
    scale = max(float(np.max(np.abs(expected))), np.finfo(np.float64).tiny)
    worst = float(np.max(np.abs(actual - expected))) / scale
    assert worst <= rtol, f"{what}: off by {worst:.3g} relative to the largest entry {scale:.3g}"


def assert_same_params(got, want, rtol, what="params"):
    for layer, ((W, b), (tW, tb)) in enumerate(zip(got, want)):
        assert_close(W, tW, rtol, f"{what} W[{layer}]")
        assert_close(b, tb, rtol, f"{what} b[{layer}]")


def assert_same_state(got, want, rtol):
    assert got.keys() == want.keys()
    assert got["steps"] == want["steps"]
    for key in got:
        if key != "steps":
            for layer, (a, b) in enumerate(zip(got[key], want[key], strict=True)):
                assert_close(a, b, rtol, f"state {key}[{layer}]")


def targets_for(rng, n, n_out, config, dtype=np.float64):
    """(n, n_out) targets as the engine reads them: one-hot rows for softmax, [0, 1] for sigmoid."""
    if config["output_activation"] == "softmax":
        return np.eye(n_out, dtype=dtype)[rng.integers(0, n_out, n)]
    if config["output_activation"] == "sigmoid":
        return rng.uniform(0, 1, (n, n_out)).astype(dtype)
    return rng.standard_normal((n, n_out)).astype(dtype)


def twins(config, dtype, sizes):
    args = dict(config, dtype=dtype, seed=7)
    return fastgd.Network(list(sizes), **args), reference.Network(list(sizes), **args)


def copy_params(net):
    return [(W.copy(), b.copy()) for W, b in net.params]


# The epoch with sample weights and L2 against the twin


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("mode", ["weights", "l2", "both"])
@pytest.mark.parametrize("optimizer", OPTIMIZERS)
@pytest.mark.parametrize("network", NETWORKS)
def test_weighted_penalized_epochs_match_twin(network, optimizer, mode, dtype):
    config = NETWORKS[network]
    cpp, twin = twins(config, dtype, (12, 16, 8, 5))
    rng = np.random.default_rng(11)
    n, batch, epochs = 53, 8, 3  # 7 batches an epoch, the last of 5 rows
    X = rng.standard_normal((n, 12)).astype(dtype)
    T = targets_for(rng, n, 5, config, dtype)
    orders = [rng.permutation(n).astype(np.int64) for _ in range(epochs)]
    weight, l2 = None, 0.0
    if mode in ("weights", "both"):
        weight = rng.uniform(0.2, 3.0, n)
        weight[rng.random(n) < 0.2] = 0.0
        weight[orders[0][batch : 2 * batch]] = 0.0  # the first epoch's second batch weighs nothing
    if mode in ("l2", "both"):
        l2 = 0.3
    opt_cpp, opt_twin = OPTIMIZERS[optimizer](), OPTIMIZERS[optimizer]()
    rtol = TOLERANCE[dtype]
    for epoch, order in enumerate(orders):
        r_cpp = run_epoch(cpp, opt_cpp._state_for(cpp), X, T, order, batch, sample_weight=weight, l2=l2)
        r_twin = run_epoch(twin, opt_twin._state_for(twin), X, T, order, batch, sample_weight=weight, l2=l2)
        assert r_cpp.samples == r_twin.samples == n
        assert r_cpp.failed_batch == r_twin.failed_batch == -1
        assert r_cpp.loss_sum == pytest.approx(r_twin.loss_sum, rel=rtol), f"epoch {epoch}"
        assert r_cpp.penalty_sum == pytest.approx(r_twin.penalty_sum, rel=rtol), f"epoch {epoch}"
        assert (r_cpp.penalty_sum > 0) == (l2 > 0)
    steps = epochs * 7 - (weight is not None)  # the batch of weight 0 takes no step
    assert opt_cpp.state(cpp)["steps"] == steps
    assert_same_params(cpp.params, twin.params, rtol)
    assert_same_state(opt_cpp.state(cpp), opt_twin.state(twin), 10 * rtol)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("optimizer", ["sklearn-sgd-nesterov", "sklearn-adam", "torch-sgd"])
def test_a_batch_of_zero_weight_is_skipped(engine, optimizer):
    """Batches [0, 8) and [16, 24) trained, [8, 16) of weight 0 skipped: what training on the
    two batches alone gives, momentum included, while the rows are still counted."""
    config = NETWORKS["relu-softmax-ce"]
    rng = np.random.default_rng(3)
    X = rng.standard_normal((24, 6))
    T = targets_for(rng, 24, 3, config)
    weight = np.ones(24)
    weight[8:16] = 0.0
    net = ENGINES[engine]([6, 7, 3], **config, dtype="float64", seed=1)
    alone = ENGINES[engine]([6, 7, 3], **config, dtype="float64", seed=1)
    opt, opt_alone = OPTIMIZERS[optimizer](), OPTIMIZERS[optimizer]()
    result = run_epoch(net, opt._state_for(net), X, T, None, 8, sample_weight=weight)
    kept = np.r_[0:8, 16:24]
    expected = run_epoch(alone, opt_alone._state_for(alone), X[kept], T[kept], None, 8)
    assert result.samples == 24 and result.failed_batch == -1
    assert opt.state(net)["steps"] == 2
    assert result.loss_sum == pytest.approx(expected.loss_sum, rel=1e-14)
    assert_same_params(net.params, alone.params, 1e-14)


# scikit-learn's SGD and Adam against sklearn.neural_network._stochastic_optimizers


def linear_step(net, optimizer, X, rng):
    """One run_epoch step on a linear mse network with X = I: picks targets that make the
    gradient random, and returns the gradient the engine computes for them."""
    W, b = net.params[0]
    m = len(X)
    Y = X @ W + b - m * rng.standard_normal(W.shape)  # dz = (XW + b - Y)/m, dW = dz, db = Σ dz
    _, grads = net.gradients(X, Y)
    result = run_epoch(net, optimizer._state_for(net), X, Y, None, m)
    assert result.failed_batch == -1
    return grads


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("momentum", "nesterov"), [(0.9, True), (0.9, False), (0.0, False), (0.0, True), (0.5, True)])
def test_sklearn_sgd_follows_scikit_learn(engine, momentum, nesterov):
    from sklearn.neural_network._stochastic_optimizers import SGDOptimizer

    rng = np.random.default_rng(4)
    net = ENGINES[engine]([6, 3], output_activation="identity", loss="mse", dtype="float64", seed=2)
    for _, b in net.params:
        b[...] = rng.standard_normal(b.shape)
    X = np.eye(6)
    ours = SklearnSGD(lr=0.1, momentum=momentum, nesterov=nesterov)
    params = [p.copy() for p in net.params[0]]
    theirs = SGDOptimizer(params, learning_rate_init=0.1, momentum=momentum, nesterov=nesterov)
    for step, lr in enumerate([0.1, 0.1, 0.03, 0.3, 0.3, 0.007, 0.05, 0.05]):
        ours.lr = theirs.learning_rate = lr  # as invscaling and adaptive change it between epochs
        ((dW, db),) = linear_step(net, ours, X, rng)
        theirs.update_params(params, [dW, db])
        assert_close(net.params[0][0], params[0], 1e-12, f"W after step {step + 1}")
        assert_close(net.params[0][1], params[1], 1e-12, f"b after step {step + 1}")
        state = ours.state(net)
        assert state["steps"] == step + 1
        assert_close(state["velocity_w"][0], theirs.velocities[0], 1e-12, "velocity_w")
        assert_close(state["velocity_b"][0], theirs.velocities[1], 1e-12, "velocity_b")


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    "hyper", [dict(), dict(beta_1=0.5, beta_2=0.9, epsilon=1e-3)], ids=["defaults", "betas-epsilon"]
)
def test_sklearn_adam_follows_scikit_learn(engine, hyper):
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer

    rng = np.random.default_rng(5)
    net = ENGINES[engine]([6, 3], output_activation="identity", loss="mse", dtype="float64", seed=2)
    X = np.eye(6)
    ours = SklearnAdam(lr=0.01, **hyper)
    params = [p.copy() for p in net.params[0]]
    theirs = AdamOptimizer(params, learning_rate_init=0.01, **hyper)
    for step, lr in enumerate([0.01, 0.01, 0.003, 0.05, 0.05, 0.05, 0.001, 0.02]):
        ours.lr = theirs.learning_rate_init = lr
        ((dW, db),) = linear_step(net, ours, X, rng)
        theirs.update_params(params, [dW, db])
        assert_close(net.params[0][0], params[0], 1e-12, f"W after step {step + 1}")
        assert_close(net.params[0][1], params[1], 1e-12, f"b after step {step + 1}")
        state = ours.state(net)
        assert state["steps"] == theirs.t == step + 1
        assert_close(state["exp_avg_w"][0], theirs.ms[0], 1e-12, "exp_avg_w")
        assert_close(state["exp_avg_b"][0], theirs.ms[1], 1e-12, "exp_avg_b")
        assert_close(state["exp_avg_sq_w"][0], theirs.vs[0], 1e-12, "exp_avg_sq_w")
        assert_close(state["exp_avg_sq_b"][0], theirs.vs[1], 1e-12, "exp_avg_sq_b")


def test_reference_updates_follow_scikit_learn():
    from sklearn.neural_network._stochastic_optimizers import AdamOptimizer, SGDOptimizer

    rng = np.random.default_rng(6)
    start = rng.standard_normal((4, 5))
    grads = [rng.standard_normal((4, 5)) for _ in range(6)]
    for momentum, nesterov in [(0.9, True), (0.9, False), (0.0, True)]:
        param, velocity = start.copy(), np.zeros_like(start)
        theirs_param = [start.copy()]
        theirs = SGDOptimizer(theirs_param, 0.1, momentum=momentum, nesterov=nesterov)
        for step, grad in enumerate(grads):
            lr = 0.1 / (step + 1)
            theirs.learning_rate = lr
            reference.sklearn_sgd_update(param, grad, velocity, lr, momentum, nesterov)
            theirs.update_params(theirs_param, [grad])
            assert_close(param, theirs_param[0], 1e-15, f"SGD momentum {momentum} nesterov {nesterov}")
            assert_close(velocity, theirs.velocities[0], 1e-15, "velocity")
    param, m, v = start.copy(), np.zeros_like(start), np.zeros_like(start)
    theirs_param = [start.copy()]
    theirs = AdamOptimizer(theirs_param, 0.01)
    for step, grad in enumerate(grads, start=1):
        reference.sklearn_adam_update(param, grad, m, v, step, 0.01, 0.9, 0.999, 1e-8)
        theirs.update_params(theirs_param, [grad])
        assert_close(param, theirs_param[0], 1e-15, f"Adam step {step}")
        assert_close(m, theirs.ms[0], 1e-15, "m")
        assert_close(v, theirs.vs[0], 1e-15, "v")


# The engine's loop against MLPClassifier and MLPRegressor themselves

# task: (estimator, hidden activation as scikit-learn names it, targets from the digit labels)
MLP_TASKS = {
    "multiclass-relu": ("classifier", "relu", lambda y: y),
    "binary-tanh": ("classifier", "tanh", lambda y: y % 2),
    "regression-logistic": ("regressor", "logistic", lambda y: y / 9.0),
}
ENGINE_ACTIVATION = {"relu": "relu", "tanh": "tanh", "logistic": "sigmoid"}


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    X, y = load_digits(return_X_y=True)
    return X / 16.0, y


def mlp_setup(task, solver, digits, max_iter, alpha):
    """(fitted estimator, engine network with scikit-learn's initial weights, engine targets,
    the estimator's random state after the initialization)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier, MLPRegressor
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state

    kind, activation, target = MLP_TASKS[task]
    X, labels = digits
    y = target(labels)
    estimator = (MLPClassifier if kind == "classifier" else MLPRegressor)(
        hidden_layer_sizes=(30,), activation=activation, solver=solver, alpha=alpha, learning_rate_init=0.01,
        max_iter=max_iter, random_state=0,
    )
    if kind == "classifier":
        T = LabelBinarizer().fit_transform(y).astype(np.float64)
        output, loss = ("softmax" if T.shape[1] > 1 else "sigmoid"), "cross_entropy"
    else:
        T, output, loss = y.reshape(-1, 1).astype(np.float64), "identity", "mse"
    sizes = [X.shape[1], 30, T.shape[1]]
    # scikit-learn's _init_coef: Glorot's uniform bound, factor 2 for the logistic activation
    rs = check_random_state(0)
    factor = 2.0 if activation == "logistic" else 6.0
    params = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        bound = np.sqrt(factor / (fan_in + fan_out))
        params.append((rs.uniform(-bound, bound, (fan_in, fan_out)), rs.uniform(-bound, bound, fan_out)))
    net = fastgd.Network(
        sizes, activation=ENGINE_ACTIVATION[activation], output_activation=output, loss=loss, dtype="float64"
    )
    net.params = params
    return estimator, net, T, rs, ConvergenceWarning


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("inputs", ["dense", "csr"])
@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("task", MLP_TASKS)
def test_engine_loop_reproduces_scikit_learn_mlp(task, solver, inputs, weighted, digits):
    from sklearn.utils import shuffle

    alpha, epochs = 1e-3, 5
    estimator, net, T, rs, convergence_warning = mlp_setup(task, solver, digits, epochs, alpha)
    X, labels = digits
    n = len(X)
    weight = None
    if weighted:
        weight = np.random.default_rng(8).uniform(0.5, 2.0, n)
        weight[::10] = 0.0
    X_fit = sp.csr_matrix(X) if inputs == "csr" else X
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", convergence_warning)
        estimator.fit(X_fit, MLP_TASKS[task][2](labels), sample_weight=weight)
    optimizer = SklearnSGD(lr=0.01, momentum=0.9, nesterov=True) if solver == "sgd" else SklearnAdam(lr=0.01)
    X_engine = prepare_sparse(X_fit, X.shape[1], np.float64) if inputs == "csr" else np.ascontiguousarray(X)
    rows, curve = np.arange(n), []
    for _ in range(epochs):
        rows = shuffle(rows, random_state=rs)
        result = run_epoch(
            net, optimizer._state_for(net), X_engine, T, rows.astype(np.int64), 200, sample_weight=weight, l2=alpha
        )
        curve.append((result.loss_sum + result.penalty_sum) / n)
    np.testing.assert_allclose(curve, estimator.loss_curve_, rtol=1e-10)
    for layer, ((W, b), coef, intercept) in enumerate(zip(net.params, estimator.coefs_, estimator.intercepts_)):
        assert_close(W, coef, 1e-10, f"coefs_[{layer}]")
        assert_close(b, intercept, 1e-10, f"intercepts_[{layer}]")
    out = net.predict(X_engine)
    expected = estimator.predict_proba(X) if MLP_TASKS[task][0] == "classifier" else estimator.predict(X)
    if out.shape[1] == 1 and expected.ndim == 2 and expected.shape[1] == 2:
        expected = expected[:, 1:]
    assert_close(out, expected.reshape(out.shape), 1e-10, "outputs")


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("inputs", ["dense", "csr"])
@pytest.mark.parametrize("task", MLP_TASKS)
def test_full_gradient_is_scikit_learn_lbfgs_objective(task, inputs, weighted, digits):
    """loss_and_gradients at a fitted estimator's weights against its own _backprop."""
    from sklearn.preprocessing import LabelBinarizer

    alpha = 0.05
    estimator, net, T, _, convergence_warning = mlp_setup(task, "sgd", digits, 2, alpha)
    X, labels = digits
    y = MLP_TASKS[task][2](labels)
    weight = None
    if weighted:
        weight = np.random.default_rng(9).uniform(0.0, 3.0, len(X))
        weight[::7] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", convergence_warning)
        estimator.fit(X, y, sample_weight=weight)
    net.params = list(zip(estimator.coefs_, estimator.intercepts_))
    X_engine = prepare_sparse(sp.csr_matrix(X), X.shape[1], np.float64) if inputs == "csr" else X
    loss, penalty, grads = loss_and_gradients(net, X_engine, T, weight, alpha)
    Y = LabelBinarizer().fit(y).transform(y) if MLP_TASKS[task][0] == "classifier" else y.reshape(-1, 1)
    layers = len(estimator.coefs_) + 1
    activations = [X] + [None] * (layers - 1)
    deltas = [None] * (layers - 1)
    coef_grads = [np.empty_like(c) for c in estimator.coefs_]
    intercept_grads = [np.empty_like(c) for c in estimator.intercepts_]
    their_loss, coef_grads, intercept_grads = estimator._backprop(
        X, Y.astype(np.float64), weight, activations, deltas, coef_grads, intercept_grads
    )
    assert loss + penalty == pytest.approx(their_loss, rel=1e-12)
    for layer, ((dW, db), coef, intercept) in enumerate(zip(grads, coef_grads, intercept_grads)):
        assert_close(dW, coef, 1e-11, f"dW[{layer}]")
        assert_close(db, intercept, 1e-11, f"db[{layer}]")


# CSR input

# (sizes, density): the first layer takes each batch's nonzeros, or the batch is made dense
SPARSE_SHAPES = {
    "wide": ([120, 64, 5], 0.05),
    "too-dense": ([120, 64, 5], 0.5),
    "too-narrow": ([120, 1, 5], 0.05),  # narrower than a packet on any instruction set
}


def sparse_problem(rng, n, n_in, density, dtype=np.float64):
    X = rng.standard_normal((n, n_in)) * (rng.random((n, n_in)) < density)
    return X.astype(dtype)


def as_format(X, fmt):
    return {"csr": sp.csr_matrix, "csc": sp.csc_matrix, "coo": sp.coo_matrix, "csr_array": sp.csr_array}[fmt](X)


@pytest.mark.parametrize("training", ["torch-sgd", "sklearn-adam-weights-l2"])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("shape", SPARSE_SHAPES)
def test_sparse_epochs_give_the_dense_weights(shape, fmt, training):
    sizes, density = SPARSE_SHAPES[shape]
    config = NETWORKS["relu-softmax-ce"]
    rng = np.random.default_rng(21)
    n, batch = 150, 16
    X = sparse_problem(rng, n, sizes[0], density)
    T = targets_for(rng, n, sizes[-1], config)
    X_sparse = prepare_sparse(as_format(X, fmt), sizes[0], np.float64)
    assert sp.issparse(X_sparse) and X_sparse.format == "csr"
    weight, l2 = (None, 0.0)
    if training == "sklearn-adam-weights-l2":
        weight, l2 = rng.uniform(0.0, 2.0, n), 0.1
    make = OPTIMIZERS["torch-sgd" if training == "torch-sgd" else "sklearn-adam"]
    dense, sparse, twin = (ENGINES[e](sizes, **config, dtype="float64", seed=3) for e in ("cpp", "cpp", "twin"))
    opts = [make() for _ in range(3)]
    for epoch in range(3):
        order = rng.permutation(n).astype(np.int64)
        r_dense = run_epoch(dense, opts[0]._state_for(dense), X, T, order, batch, sample_weight=weight, l2=l2)
        r_sparse = run_epoch(sparse, opts[1]._state_for(sparse), X_sparse, T, order, batch, sample_weight=weight, l2=l2)
        r_twin = run_epoch(twin, opts[2]._state_for(twin), X_sparse, T, order, batch, sample_weight=weight, l2=l2)
        assert r_sparse.samples == n and r_sparse.failed_batch == -1
        assert r_sparse.loss_sum == pytest.approx(r_dense.loss_sum, rel=1e-12, abs=1e-12)
        assert r_sparse.penalty_sum == pytest.approx(r_dense.penalty_sum, rel=1e-12, abs=1e-12)
        assert r_sparse.loss_sum == pytest.approx(r_twin.loss_sum, rel=1e-9)
    assert_same_params(sparse.params, dense.params, 1e-12, "CSR vs dense")
    assert_same_params(sparse.params, twin.params, 1e-9, "CSR vs twin")
    assert_same_state(opts[1].state(sparse), opts[0].state(dense), 1e-12)


@pytest.mark.parametrize("fmt", ["csr", "csc", "coo", "csr_array"])
@pytest.mark.parametrize("shape", SPARSE_SHAPES)
def test_network_methods_with_sparse_X_equal_dense(shape, fmt):
    sizes, density = SPARSE_SHAPES[shape]
    rng = np.random.default_rng(22)
    n = 1100  # predict and evaluate take rows 1024 at a time
    X = sparse_problem(rng, n, sizes[0], density)
    labels = rng.integers(0, sizes[-1], n)
    X_val, labels_val = X[:300], labels[:300]
    config = NETWORKS["relu-softmax-ce"]
    dense, sparse = (fastgd.Network(sizes, **config, dtype="float64", seed=4) for _ in range(2))
    fit = dict(epochs=2, batch_size=200, seed=5, verbose=0)
    h_dense = dense.fit(
        X, labels, optimizer=fastgd.SGD(lr=0.1, momentum=0.9), validation_data=(X_val, labels_val), **fit
    )
    h_sparse = sparse.fit(
        as_format(X, fmt), labels, optimizer=fastgd.SGD(lr=0.1, momentum=0.9),
        validation_data=(as_format(X_val, fmt), labels_val), **fit,
    )
    for key in h_dense.history:
        np.testing.assert_allclose(h_sparse.history[key], h_dense.history[key], rtol=1e-12)
    assert_same_params(sparse.params, dense.params, 1e-12, "fit")
    np.testing.assert_allclose(sparse.predict(as_format(X, fmt)), sparse.predict(X), rtol=1e-13, atol=1e-15)
    e_sparse, e_dense = sparse.evaluate(as_format(X, fmt), labels), sparse.evaluate(X, labels)
    assert e_sparse["accuracy"] == e_dense["accuracy"]
    assert e_sparse["loss"] == pytest.approx(e_dense["loss"], rel=1e-13)
    loss_sparse, grads_sparse = sparse.gradients(as_format(X, fmt), labels)
    loss_dense, grads_dense = sparse.gradients(X, labels)
    assert loss_sparse == pytest.approx(loss_dense, rel=1e-12)
    assert_same_params(grads_sparse, grads_dense, 1e-12, "gradients")


def test_predict_makes_dense_parts_of_a_wide_csr():
    """A CSR too dense for the sparse kernels, of 2000 columns: predict and evaluate make it dense
    a few hundred rows at a time, within and across the 1024-row chunks."""
    rng = np.random.default_rng(23)
    X = sparse_problem(rng, 1100, 2000, 0.5)
    labels = rng.integers(0, 3, 1100)
    net = fastgd.Network([2000, 8, 3], activation="tanh", dtype="float64", seed=6)
    X_sparse = sp.csr_matrix(X)
    np.testing.assert_allclose(net.predict(X_sparse), net.predict(X), rtol=1e-13, atol=1e-15)
    assert net.evaluate(X_sparse, labels)["loss"] == pytest.approx(net.evaluate(X, labels)["loss"], rel=1e-13)


def non_canonical_csr(rng, n, n_in, per_row):
    """A CSR matrix whose rows hold repeated columns, in no order."""
    indptr = np.zeros(n + 1, dtype=np.int64)
    indices, data = [], []
    for i in range(n):
        columns = rng.integers(0, n_in, per_row)
        columns[-2:] = columns[0]  # the first column three times
        indices.append(columns)
        data.append(rng.standard_normal(per_row))
        indptr[i + 1] = indptr[i] + per_row
    X = sp.csr_matrix((np.concatenate(data), np.concatenate(indices), indptr), shape=(n, n_in))
    assert not X.has_canonical_format
    return X


@pytest.mark.parametrize("shape", ["wide", "too-narrow"])
def test_duplicate_entries_of_a_non_canonical_csr_add_up(shape):
    sizes, _ = SPARSE_SHAPES[shape]
    rng = np.random.default_rng(24)
    n = 120
    X_sparse = non_canonical_csr(rng, n, sizes[0], per_row=8)
    X = X_sparse.toarray()  # duplicates summed
    prepared = prepare_sparse(X_sparse, sizes[0], np.float64)
    assert prepared.nnz == X_sparse.nnz, "prepare_sparse merged the duplicates: the engine never saw them"
    config = NETWORKS["relu-softmax-ce"]
    T = targets_for(rng, n, sizes[-1], config)
    weight = rng.uniform(0.5, 1.5, n)
    dense, sparse = (fastgd.Network(sizes, **config, dtype="float64", seed=4) for _ in range(2))
    opt_dense, opt_sparse = SklearnSGD(lr=0.1), SklearnSGD(lr=0.1)
    for _ in range(2):
        order = rng.permutation(n).astype(np.int64)
        train = dict(sample_weight=weight, l2=0.01)
        r_dense = run_epoch(dense, opt_dense._state_for(dense), X, T, order, 10, **train)
        r_sparse = run_epoch(sparse, opt_sparse._state_for(sparse), prepared, T, order, 10, **train)
        assert r_sparse.loss_sum == pytest.approx(r_dense.loss_sum, rel=1e-12)
    assert_same_params(sparse.params, dense.params, 1e-12, "epochs")
    np.testing.assert_allclose(sparse.predict(X_sparse), sparse.predict(X), rtol=1e-13, atol=1e-15)
    g_sparse = loss_and_gradients(sparse, prepared, T, weight, 0.01)
    g_dense = loss_and_gradients(sparse, X, T, weight, 0.01)
    assert g_sparse[0] == pytest.approx(g_dense[0], rel=1e-12)
    assert_same_params(g_sparse[2], g_dense[2], 1e-12, "full gradient")


MALFORMED_CSR = {
    # (indptr, indices) of a 3 × 4 matrix
    "column-too-large": ([0, 2, 3, 4], [0, 3, 4, 1]),
    "negative-column": ([0, 2, 3, 4], [0, -1, 2, 1]),
    "decreasing-indptr": ([0, 3, 1, 4], [0, 1, 2, 3]),
    "indptr-not-from-zero": ([1, 2, 3, 4], [0, 1, 2, 3]),
    "indptr-beyond-the-data": ([0, 2, 3, 9], [0, 1, 2, 3]),
    "indptr-past-the-end-then-back": ([0, 99, 2, 4], [0, 1, 2, 3]),
}


@pytest.mark.parametrize("case", MALFORMED_CSR)
def test_malformed_csr_arrays_raise_value_error(case):
    """Given straight to the engine's sparse entry points, not through prepare_sparse; in a
    subprocess, so that a crash fails this case instead of the run."""
    indptr, indices = MALFORMED_CSR[case]
    script = textwrap.dedent(
        f"""
        import numpy as np, fastgd
        for dtype in (np.float64, np.float32):
            for hidden in (8, 1):  # a sparse-capable first layer, and one that makes batches dense
                net = fastgd.Network([4, hidden, 2], dtype=dtype, seed=0)
                before = [W.copy() for W, _ in net.params]
                x = (np.array({indptr}, np.int64), np.array({indices}, np.int32), np.ones(4, dtype))
                y = np.eye(2, dtype=dtype)[[0, 1, 0]]
                out = np.empty((3, 2), dtype)
                state = fastgd.optimizers.SklearnSGD(lr=0.1)._state_for(net)
                calls = {{
                    "train_epoch_sparse": lambda: net._core.train_epoch_sparse(state, x, y, None, 2),
                    "predict_sparse": lambda: net._core.predict_sparse(out, x),
                    "evaluate_sparse": lambda: net._core.evaluate_sparse(out, x, y),
                    "full_gradient_sparse": lambda: net._core.full_gradient_sparse(x, y),
                }}
                for name, call in calls.items():
                    try:
                        call()
                        print(name, "no error")
                    except Exception as error:
                        print(name, type(error).__name__, error)
                unchanged = all(np.array_equal(W, b) for (W, _), b in zip(net.params, before))
                print("weights", "unchanged" if unchanged else "changed")
        """
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
    lines = done.stdout.splitlines()
    assert len(lines) == 4 * 5, done.stdout
    for line in lines:
        name, outcome = line.split(" ", 1)
        if name == "weights":
            assert outcome == "unchanged"
        else:
            assert outcome.startswith("ValueError "), line


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("fmt", ["csr", "csc"])
@pytest.mark.parametrize("call", ["fit", "fit-validation", "predict", "evaluate", "gradients"])
def test_nonfinite_sparse_data_is_named_by_row_and_column(call, fmt, value):
    rng = np.random.default_rng(25)
    X = sparse_problem(rng, 40, 30, 0.1)
    X[17, 23] = value
    X[30, 2] = value  # a later one; the first is named
    labels = rng.integers(0, 3, 40)
    net = fastgd.Network([30, 8, 3], dtype="float64", seed=0)
    before = copy_params(net)
    bad, good = as_format(X, fmt), as_format(np.nan_to_num(X, nan=0, posinf=0, neginf=0), fmt)
    name = "X_val" if call == "fit-validation" else "X"
    with pytest.raises(ValueError, match=rf"^{name} contains NaN or Inf \(first at row 17, column 23\)"):
        if call == "fit":
            net.fit(bad, labels, verbose=0)
        elif call == "fit-validation":
            net.fit(good, labels, validation_data=(bad, labels), verbose=0)
        elif call == "predict":
            net.predict(bad)
        elif call == "evaluate":
            net.evaluate(bad, labels)
        else:
            net.gradients(bad, labels)
    assert_same_params(net.params, before, 0.0)


# The full gradient: scikit-learn's objective for lbfgs

# (sizes, activation of every layer, loss)
FULL_GRADIENT_NETWORKS = {
    "sigmoid-softmax-ce": ([5, 6, 3], ["sigmoid", "softmax"], "cross_entropy"),
    "tanh-sigmoid-ce": ([5, 6, 2], ["tanh", "sigmoid"], "cross_entropy"),
    "relu-identity-mse": ([5, 6, 2], ["relu", "identity"], "mse"),
    "relu-tanh-softmax-ce": ([5, 6, 4, 3], ["relu", "tanh", "softmax"], "cross_entropy"),
}


def layered(engine, sizes, activations, loss, seed):
    layers = [fastgd.Dense(n_in, n_out, kind) for n_in, n_out, kind in zip(sizes, sizes[1:], activations)]
    return ENGINES[engine](layers, loss=loss, dtype="float64", seed=seed)


def activate(kind, z):
    if kind == "sigmoid":
        return 1 / (1 + np.exp(-z))
    if kind == "tanh":
        return np.tanh(z)
    if kind == "relu":
        return np.maximum(z, 0)
    if kind == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return z


def smallest_relu_input(params, activations, X):
    """The smallest |z| at a relu unit, where the loss has no derivative."""
    a, smallest = X, np.inf
    for (W, b), kind in zip(params, activations):
        z = a @ W + b
        if kind == "relu":
            smallest = min(smallest, float(np.min(np.abs(z))))
        a = activate(kind, z)
    return smallest


def objective(params, activations, loss, X, T, weight, l2):
    """(weighted mean loss, penalty) in plain NumPy, written apart from fastgd."""
    a = X
    for (W, b), kind in zip(params, activations):
        a = activate(kind, a @ W + b)
    if loss == "mse":
        per_row = 0.5 * np.sum((a - T) ** 2, axis=1)
    elif activations[-1] == "softmax":
        per_row = -np.sum(T * np.log(a), axis=1)
    else:
        per_row = -np.sum(T * np.log(a) + (1 - T) * np.log(1 - a), axis=1)
    w = np.ones(len(X)) if weight is None else weight
    penalty = 0.5 * l2 * sum(float(np.sum(W * W)) for W, _ in params) / w.sum()
    return float(np.sum(w * per_row) / w.sum()), penalty


@pytest.mark.parametrize("inputs", ["dense", "csr"])
@pytest.mark.parametrize(("weighted", "l2"), [(False, 0.0), (True, 0.0), (False, 0.3), (True, 0.3)])
@pytest.mark.parametrize("network", FULL_GRADIENT_NETWORKS)
def test_full_gradient_matches_finite_differences(network, weighted, l2, inputs):
    sizes, activations, loss_name = FULL_GRADIENT_NETWORKS[network]
    config = dict(output_activation=activations[-1])
    rng = np.random.default_rng(26)
    n = 9
    net, twin = (layered(engine, sizes, activations, loss_name, seed=8) for engine in ("cpp", "twin"))
    for (_, b), (_, tb) in zip(net.params, twin.params):
        b[...] = tb[...] = rng.uniform(-0.5, 0.5, b.shape)
    for _ in range(100):  # inputs away from relu's kink
        X = rng.standard_normal((n, sizes[0])) * (rng.random((n, sizes[0])) > 0.4)
        if smallest_relu_input(net.params, activations, X) > 1e-3:
            break
    else:
        pytest.fail("no input away from the relu kinks")
    T = targets_for(rng, n, sizes[-1], config)
    weight = None
    if weighted:
        weight = rng.uniform(0.5, 3.0, n)
        weight[[2, 5]] = 0.0
    X_engine = prepare_sparse(sp.csr_matrix(X), sizes[0], np.float64) if inputs == "csr" else X
    loss, penalty, grads = loss_and_gradients(net, X_engine, T, weight, l2)
    want_loss, want_penalty = objective(net.params, activations, loss_name, X, T, weight, l2)
    assert loss == pytest.approx(want_loss, rel=1e-13)
    assert penalty == pytest.approx(want_penalty, rel=1e-13, abs=0.0)
    eps = 1e-6
    params = net.params
    for layer, (W, b) in enumerate(params):
        for name, param, grad in (("W", W, grads[layer][0]), ("b", b, grads[layer][1])):
            numeric = np.zeros_like(param)
            for index in np.ndindex(param.shape):
                saved = param[index]
                param[index] = saved + eps
                plus = sum(objective(params, activations, loss_name, X, T, weight, l2))
                param[index] = saved - eps
                minus = sum(objective(params, activations, loss_name, X, T, weight, l2))
                param[index] = saved
                numeric[index] = (plus - minus) / (2 * eps)
            np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-9, err_msg=f"d{name}[{layer}]")
    twin_loss, twin_penalty, twin_grads = loss_and_gradients(twin, X_engine, T, weight, l2)
    assert loss == pytest.approx(twin_loss, rel=1e-12)
    assert penalty == pytest.approx(twin_penalty, rel=1e-12)
    assert_same_params(grads, twin_grads, 1e-12, "twin")


@pytest.mark.parametrize("inputs", ["dense", "csr"])
def test_full_gradient_in_chunks_equals_one_pass(inputs):
    """2500 rows, taken by the engine 1024 at a time; parts of fewer rows are one chunk each."""
    sizes, config = [20, 16, 4], NETWORKS["relu-softmax-ce"]
    rng = np.random.default_rng(27)
    n = 2500
    X = sparse_problem(rng, n, sizes[0], 0.1)
    T = targets_for(rng, n, sizes[-1], config)
    weight = rng.uniform(0.0, 2.0, n)
    weight[rng.random(n) < 0.1] = 0.0
    l2 = 0.2
    net = fastgd.Network(sizes, **config, dtype="float64", seed=9)
    twin = reference.Network(sizes, **config, dtype="float64", seed=9)
    as_input = (lambda A: prepare_sparse(sp.csr_matrix(A), sizes[0], np.float64)) if inputs == "csr" else (lambda A: A)
    loss, penalty, grads = loss_and_gradients(net, as_input(X), T, weight, l2)
    # the twin: all rows in one pass
    twin_loss, twin_penalty, twin_grads = loss_and_gradients(twin, X, T, weight, l2)
    assert loss == pytest.approx(twin_loss, rel=1e-12)
    assert penalty == pytest.approx(twin_penalty, rel=1e-12)
    assert_same_params(grads, twin_grads, 1e-12, "twin")
    # the engine on three parts of one chunk each, weighed by their share of the weight
    total, combined_loss = weight.sum(), 0.0
    combined = [(np.zeros_like(W), np.zeros_like(b)) for W, b in net.params]
    for part in (slice(0, 700), slice(700, 1600), slice(1600, n)):
        share = weight[part].sum() / total
        part_loss, part_penalty, part_grads = loss_and_gradients(net, as_input(X[part]), T[part], weight[part], 0.0)
        assert part_penalty == 0.0
        combined_loss += share * part_loss
        for (cW, cb), (dW, db) in zip(combined, part_grads):
            cW += share * dW
            cb += share * db
    for (cW, _), (W, _) in zip(combined, net.params):
        cW += l2 / total * W
    assert loss == pytest.approx(combined_loss, rel=1e-12)
    assert_same_params(grads, combined, 1e-12, "parts")
    # without weights or penalty, the gradient of one batch of all rows
    loss, penalty, grads = loss_and_gradients(net, as_input(X), T)
    one_loss, one_grads = net.gradients(X, T)
    assert penalty == 0.0 and loss == pytest.approx(one_loss, rel=1e-12)
    assert_same_params(grads, one_grads, 1e-12, "net.gradients")


@pytest.mark.parametrize("inputs", ["dense", "csr"])
@pytest.mark.parametrize("engine", ENGINES)
def test_weight_two_is_a_duplicated_row_and_zero_a_removed_row(engine, inputs):
    sizes, config = [6, 7, 3], NETWORKS["tanh-sigmoid-ce"]
    rng = np.random.default_rng(28)
    n = 12
    X = sparse_problem(rng, n, sizes[0], 0.3)
    T = targets_for(rng, n, sizes[-1], config)
    weight = np.ones(n)
    weight[[1, 6]] = 2.0
    weight[[3, 10]] = 0.0
    rows = np.r_[0, 1, 1, 2, 4, 5, 6, 6, 7, 8, 9, 11]
    as_input = (lambda A: prepare_sparse(sp.csr_matrix(A), sizes[0], np.float64)) if inputs == "csr" else (lambda A: A)
    l2 = 0.4
    weighted, repeated = (ENGINES[engine](sizes, **config, dtype="float64", seed=10) for _ in range(2))
    g_weighted = loss_and_gradients(weighted, as_input(X), T, weight, l2)
    g_repeated = loss_and_gradients(repeated, as_input(X[rows]), T[rows], None, l2)
    assert g_weighted[0] == pytest.approx(g_repeated[0], rel=1e-14)
    assert g_weighted[1] == pytest.approx(g_repeated[1], rel=1e-14)
    assert_same_params(g_weighted[2], g_repeated[2], 1e-14, "full gradient")
    # one epoch of one batch holding every row takes the same step
    opt_weighted, opt_repeated = SklearnAdam(lr=0.05), SklearnAdam(lr=0.05)
    for _ in range(3):
        state_weighted, state_repeated = opt_weighted._state_for(weighted), opt_repeated._state_for(repeated)
        r_weighted = run_epoch(weighted, state_weighted, as_input(X), T, None, n, sample_weight=weight, l2=l2)
        r_repeated = run_epoch(repeated, state_repeated, as_input(X[rows]), T[rows], None, len(rows), l2=l2)
        # the sums count each batch's mean m times, m the rows given
        assert r_weighted.loss_sum / n == pytest.approx(r_repeated.loss_sum / len(rows), rel=1e-14)
        assert r_weighted.penalty_sum / n == pytest.approx(r_repeated.penalty_sum / len(rows), rel=1e-14)
    assert_same_params(weighted.params, repeated.params, 1e-13, "after three steps")
