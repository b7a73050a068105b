"""Adam, AdamW, RMSprop and Adagrad: the updates torch.optim documents, in the engine, the twin
and torch itself; every optimizer's state (SGD's too) out and back in through get_state/set_state."""

import numpy as np
import pytest

import fastgd
from conftest import random_problem

SIZES = (6, 9, 7, 4)
NETWORK = dict(activation="tanh", output_activation="softmax", loss="cross_entropy")
STEPS, BATCH = 50, 8

CONFIGS = {
    "adam": (fastgd.Adam, dict(lr=1e-2)),
    "adam-betas-eps-decay": (fastgd.Adam, dict(lr=5e-3, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.05)),
    "adamw": (fastgd.AdamW, dict(lr=1e-2)),
    "adamw-strong-decay": (fastgd.AdamW, dict(lr=2e-2, betas=(0.85, 0.99), weight_decay=0.5)),
    "rmsprop": (fastgd.RMSprop, dict(lr=1e-2)),
    "rmsprop-momentum": (fastgd.RMSprop, dict(lr=5e-3, alpha=0.9, momentum=0.9)),
    "rmsprop-momentum-decay": (fastgd.RMSprop, dict(lr=5e-3, alpha=0.95, eps=1e-6, momentum=0.5, weight_decay=0.05)),
    "adagrad": (fastgd.Adagrad, dict(lr=5e-2)),
    "adagrad-eps-decay": (fastgd.Adagrad, dict(lr=5e-2, eps=1e-6, weight_decay=0.05)),
}
SGD_CONFIGS = {
    "sgd": (fastgd.SGD, dict(lr=0.1)),
    "sgd-nesterov-decay": (fastgd.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.05)),
}
ALL_CONFIGS = {**CONFIGS, **SGD_CONFIGS}
NETWORKS = {"engine": fastgd.Network, "twin": fastgd.reference.Network}


def make(name):
    cls, kwargs = ALL_CONFIGS[name]
    return cls(**kwargs)


def problem(n=STEPS * BATCH, seed=5):
    return random_problem(np.random.default_rng(seed), n, SIZES[0], SIZES[-1], "cross_entropy", "softmax")


def batches(X, y, count=STEPS):
    for step in range(count):
        rows = slice(step * BATCH % len(X), step * BATCH % len(X) + BATCH)
        yield X[rows], y[rows]


def assert_close(actual, expected, rtol):
    """Equal within rtol relative to the largest entry of `expected`, entry by entry."""
    actual, expected = np.asarray(actual), np.asarray(expected)
    scale = max(float(np.max(np.abs(expected))), np.finfo(np.float64).tiny)
    worst = float(np.max(np.abs(actual - expected))) / scale
    assert worst <= rtol, f"off by {worst:.3g} relative to the largest entry {scale:.3g}"


# The update rules as the torch.optim documentation writes them, one tensor at a time, kept
# independent of fastgd's code: w is the parameter, g its gradient, λ its weight decay.
def documented_adam(w, g, state, t, h, decay, decoupled):
    beta1, beta2 = h["betas"]
    m, v = state.get("m", np.zeros_like(w)), state.get("v", np.zeros_like(w))
    if decoupled:
        w = w - h["lr"] * decay * w
    else:
        g = g + decay * w
    m = beta1 * m + (1 - beta1) * g
    v = beta2 * v + (1 - beta2) * g**2
    m_hat = m / (1 - beta1**t)
    v_hat = v / (1 - beta2**t)
    state.update(m=m, v=v)
    return w - h["lr"] * m_hat / (np.sqrt(v_hat) + h["eps"])


def documented_rmsprop(w, g, state, t, h, decay):
    v, b = state.get("v", np.zeros_like(w)), state.get("b", np.zeros_like(w))
    g = g + decay * w
    v = h["alpha"] * v + (1 - h["alpha"]) * g**2
    state["v"] = v
    if h["momentum"] > 0:
        b = h["momentum"] * b + g / (np.sqrt(v) + h["eps"])
        state["b"] = b
        return w - h["lr"] * b
    return w - h["lr"] * g / (np.sqrt(v) + h["eps"])


def documented_adagrad(w, g, state, t, h, decay):
    lr_decay, initial_accumulator_value = 0.0, 0.0
    s = state.get("s", np.full_like(w, initial_accumulator_value))
    lr = h["lr"] / (1 + (t - 1) * lr_decay)
    g = g + decay * w
    s = s + g**2
    state["s"] = s
    return w - lr * g / (np.sqrt(s) + h["eps"])


def documented_step(optimizer, w, g, state, t, decay):
    h = optimizer._hyperparameters()
    if isinstance(optimizer, fastgd.Adam):
        return documented_adam(w, g, state, t, h, decay, decoupled=isinstance(optimizer, fastgd.AdamW))
    if isinstance(optimizer, fastgd.RMSprop):
        return documented_rmsprop(w, g, state, t, h, decay)
    return documented_adagrad(w, g, state, t, h, decay)


@pytest.mark.parametrize("config", CONFIGS)
def test_fifty_steps_follow_the_documented_update(config):
    optimizer = make(config)
    net = fastgd.Network(list(SIZES), dtype="float64", seed=3, **NETWORK)
    start = [W.copy() for W, _ in net.params]
    expected = [[W.copy(), b.copy()] for W, b in net.params]
    states = [[{}, {}] for _ in expected]
    decay = float(optimizer.weight_decay)
    X, y = problem()
    for t, (Xb, yb) in enumerate(batches(X, y), start=1):
        _, grads = net.gradients(Xb, yb)
        net.train_step(Xb, yb, optimizer)
        for layer, (dW, db) in enumerate(grads):
            W, b = expected[layer]
            expected[layer][0] = documented_step(optimizer, W, dW, states[layer][0], t, decay)
            expected[layer][1] = documented_step(optimizer, b, db, states[layer][1], t, 0.0)
    assert optimizer.state(net)["steps"] == STEPS
    moved = max(float(np.max(np.abs(W - W0))) for (W, _), W0 in zip(net.params, start))
    assert moved > 1e-3, "the weights barely moved: the comparison would prove little"
    for (W, b), (want_W, want_b) in zip(net.params, expected):
        assert_close(W, want_W, 1e-12)
        assert_close(b, want_b, 1e-12)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("config", CONFIGS)
def test_engine_and_twin_fit_alike(config, dtype):
    args = dict(NETWORK, dtype=dtype, seed=7)
    cpp, twin = fastgd.Network(list(SIZES), **args), fastgd.reference.Network(list(SIZES), **args)
    X, y = problem(n=203, seed=8)
    opt_cpp, opt_twin = make(config), make(config)
    h_cpp = cpp.fit(X, y, epochs=4, batch_size=16, optimizer=opt_cpp, seed=2, verbose=0)
    h_twin = twin.fit(X, y, epochs=4, batch_size=16, optimizer=opt_twin, seed=2, verbose=0)
    assert opt_cpp.state(cpp)["steps"] == opt_twin.state(twin)["steps"] == 4 * 13
    rtol = {"float64": 1e-9, "float32": 1e-4}[dtype]
    np.testing.assert_allclose(h_cpp.history["loss"], h_twin.history["loss"], rtol=rtol)
    for (W, b), (tW, tb) in zip(cpp.params, twin.params):
        assert_close(W, tW, rtol)
        assert_close(b, tb, rtol)
    state_cpp, state_twin = opt_cpp.state(cpp), opt_twin.state(twin)
    assert state_cpp.keys() == state_twin.keys()
    for key in state_cpp:
        if key != "steps":
            for a, b in zip(state_cpp[key], state_twin[key]):
                assert a.dtype == b.dtype == np.dtype(dtype)
                assert_close(a, b, 10 * rtol)


def torch_optimizer(torch, optimizer, weights, biases):
    h = optimizer._hyperparameters()
    decay = h.pop("weight_decay")
    groups = [{"params": weights, "weight_decay": decay}, {"params": biases, "weight_decay": 0.0}]
    cls = getattr(torch.optim, type(optimizer).__name__)
    return cls(groups, foreach=False, **h)


@pytest.mark.parametrize("config", ALL_CONFIGS)
def test_fifty_steps_match_torch(config):
    torch = pytest.importorskip("torch")
    optimizer = make(config)
    net = fastgd.Network(list(SIZES), dtype="float64", seed=4, **NETWORK)
    weights = [torch.tensor(W.copy(), requires_grad=True) for W, _ in net.params]
    biases = [torch.tensor(b.copy(), requires_grad=True) for _, b in net.params]
    reference = torch_optimizer(torch, optimizer, weights, biases)
    X, y = problem(seed=6)
    for Xb, yb in batches(X, y):
        _, grads = net.gradients(Xb, yb)
        net.train_step(Xb, yb, optimizer)
        for tensor, grad in zip(weights + biases, [dW for dW, _ in grads] + [db for _, db in grads]):
            tensor.grad = torch.from_numpy(grad.copy())
        reference.step()
    for (W, b), tW, tb in zip(net.params, weights, biases):
        assert_close(W, tW.detach().numpy(), 1e-12)
        assert_close(b, tb.detach().numpy(), 1e-12)


def test_biases_are_never_decayed():
    # With zero gradients only the weight decay acts: AdamW shrinks W by (1 − γλ) a step, b stays.
    net = fastgd.Network([3, 2], output_activation="identity", loss="mse", dtype="float64", seed=0)
    net.params = [(net.params[0][0], np.array([0.5, -0.5]))]
    X, y = np.zeros((1, 3)), np.array([[0.5, -0.5]])
    W0 = net.params[0][0].copy()
    optimizer = fastgd.AdamW(lr=0.1, weight_decay=0.5)
    for _ in range(3):
        net.train_step(X, y, optimizer)
    np.testing.assert_allclose(net.params[0][0], W0 * 0.95**3, rtol=1e-15)
    np.testing.assert_array_equal(net.params[0][1], [0.5, -0.5])


def clone(network_cls, source):
    copy = network_cls(list(SIZES), dtype=source.dtype.name, seed=99, **NETWORK)
    copy.params = source.params
    return copy


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize("config", [*ALL_CONFIGS, "sgd-momentum"])
def test_state_round_trip_continues_identically(config, network):
    cls = NETWORKS[network]
    make_optimizer = (lambda: fastgd.SGD(lr=0.1, momentum=0.9)) if config == "sgd-momentum" else (lambda: make(config))
    X, y = problem(n=20 * BATCH, seed=9)
    first, optimizer = cls(list(SIZES), dtype="float64", seed=1, **NETWORK), make_optimizer()
    steps = list(batches(X, y, 20))
    for Xb, yb in steps[:10]:
        first.train_step(Xb, yb, optimizer)
    second, restored = clone(cls, first), make_optimizer()
    restored._state_for(second).set_state(optimizer._state_for(first).get_state())
    assert restored.state(second).keys() == optimizer.state(first).keys()
    for Xb, yb in steps[10:]:
        first.train_step(Xb, yb, optimizer)
        second.train_step(Xb, yb, restored)
    for (W, b), (W2, b2) in zip(first.params, second.params):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    assert restored.state(second)["steps"] == optimizer.state(first)["steps"] == 20


@pytest.mark.parametrize("config", ["adamw-strong-decay", "rmsprop-momentum", "adagrad", "sgd-nesterov-decay"])
def test_state_moves_between_engine_and_twin(config):
    X, y = problem(n=20 * BATCH, seed=10)
    steps = list(batches(X, y, 20))
    cpp, opt_cpp = fastgd.Network(list(SIZES), dtype="float64", seed=2, **NETWORK), make(config)
    for Xb, yb in steps[:10]:
        cpp.train_step(Xb, yb, opt_cpp)
    twin, opt_twin = clone(fastgd.reference.Network, cpp), make(config)
    opt_twin._state_for(twin).set_state(opt_cpp.state(cpp))  # the read-only view is a valid state too
    for Xb, yb in steps[10:]:
        cpp.train_step(Xb, yb, opt_cpp)
        twin.train_step(Xb, yb, opt_twin)
    for (W, b), (tW, tb) in zip(cpp.params, twin.params):
        assert_close(W, tW, 1e-12)
        assert_close(b, tb, 1e-12)


@pytest.mark.parametrize("network", NETWORKS)
def test_state_keys_and_allocation(network):
    cls = NETWORKS[network]
    X, y = problem(n=BATCH)
    expected = {
        fastgd.SGD(lr=0.1): set(),
        fastgd.SGD(lr=0.1, momentum=0.5): {"velocity_w", "velocity_b"},
        fastgd.Adam(): {"exp_avg_w", "exp_avg_b", "exp_avg_sq_w", "exp_avg_sq_b"},
        fastgd.AdamW(): {"exp_avg_w", "exp_avg_b", "exp_avg_sq_w", "exp_avg_sq_b"},
        fastgd.RMSprop(): {"square_avg_w", "square_avg_b"},
        fastgd.RMSprop(momentum=0.9): {"square_avg_w", "square_avg_b", "velocity_w", "velocity_b"},
        fastgd.Adagrad(): {"sum_w", "sum_b"},
    }
    for optimizer, keys in expected.items():
        net = cls(list(SIZES), dtype="float32", seed=0, **NETWORK)
        assert optimizer.state(net) == {"steps": 0}
        net.train_step(X, y, optimizer)
        state = optimizer.state(net)
        assert set(state) == keys | {"steps"} and state["steps"] == 1, optimizer
        for key in keys:
            shapes = [(n_in, n_out) if key.endswith("_w") else (n_out,) for n_in, n_out in zip(SIZES, SIZES[1:])]
            assert [array.shape for array in state[key]] == shapes
            assert all(array.dtype == np.float32 for array in state[key])


@pytest.mark.parametrize("network", NETWORKS)
def test_state_view_is_read_only_and_detached(network):
    net = NETWORKS[network](list(SIZES), dtype="float64", seed=0, **NETWORK)
    optimizer = fastgd.Adam()
    net.train_step(*problem(n=BATCH), optimizer)
    view = optimizer.state(net)
    for key, arrays in view.items():
        if key == "steps":
            continue
        for array in arrays:
            assert not array.flags.writeable
            with pytest.raises(ValueError, match="read-only"):
                array[...] = 0
    before = view["exp_avg_w"][0].copy()
    net.train_step(*problem(n=BATCH), optimizer)
    np.testing.assert_array_equal(view["exp_avg_w"][0], before)
    assert view["steps"] == 1 and optimizer.state(net)["steps"] == 2
    with pytest.raises(TypeError, match="network must be a fastgd Network"):
        optimizer.state("net")


def trained_state(cls, optimizer):
    net = cls(list(SIZES), dtype="float64", seed=0, **NETWORK)
    net.train_step(*problem(n=BATCH), optimizer)
    return optimizer._state_for(net)


def with_key(state, key, value):
    return {**state, key: value}


BAD_STATES = [
    ("wrong-shape", lambda s: with_key(s, "exp_avg_w", [s["exp_avg_w"][0], np.zeros((9, 6)), s["exp_avg_w"][2]]),
     ValueError, r"exp_avg_w\[1\] has shape \(9, 6\), expected \(9, 7\)"),
    ("wrong-bias-shape", lambda s: with_key(s, "exp_avg_sq_b", [np.zeros(8)] + s["exp_avg_sq_b"][1:]),
     ValueError, r"exp_avg_sq_b\[0\] has shape \(8,\), expected \(9,\)"),
    ("too-few-layers", lambda s: with_key(s, "exp_avg_w", s["exp_avg_w"][:2]),
     ValueError, r"exp_avg_w and exp_avg_b hold 2 and 3 arrays, expected one per layer \(3\)"),
    ("wrong-ndim", lambda s: with_key(s, "exp_avg_b", [b[None] for b in s["exp_avg_b"]]),
     ValueError, r"exp_avg_b\[0\] must be 1-D, got shape \(1, 9\)"),
    ("unknown-key", lambda s: with_key(s, "momentum_buffer_w", s["exp_avg_w"]),
     ValueError, r"unknown key 'momentum_buffer_w' in the optimizer state; expected steps, exp_avg_w, exp_avg_b, "
     r"exp_avg_sq_w, exp_avg_sq_b"),
    ("half-a-buffer", lambda s: {k: v for k, v in s.items() if k != "exp_avg_sq_b"},
     ValueError, "the optimizer state has exp_avg_sq_w but no exp_avg_sq_b"),
    ("no-steps", lambda s: {k: v for k, v in s.items() if k != "steps"}, ValueError, "the optimizer state has no 'steps'"),
    ("negative-steps", lambda s: with_key(s, "steps", -1), ValueError, "steps must be non-negative, got -1"),
    ("float-steps", lambda s: with_key(s, "steps", 1.5), TypeError, "steps must be an integer, got 1.5"),
    ("not-a-list", lambda s: with_key(s, "exp_avg_w", s["exp_avg_w"][0]),
     TypeError, "exp_avg_w must be a list of arrays, one per layer, got ndarray"),
    ("strings", lambda s: with_key(s, "exp_avg_w", ["a", "b", "c"]),
     TypeError, r"exp_avg_w\[0\] must be an array of real numbers, got str"),
    ("not-a-dict", lambda s: list(s.items()), TypeError, "state must be a dict as get_state"),
]


@pytest.mark.parametrize("network", NETWORKS)
@pytest.mark.parametrize(("case", "damage", "error", "message"), BAD_STATES, ids=[c[0] for c in BAD_STATES])
def test_bad_state_is_refused_naming_the_buffer_and_changes_nothing(network, case, damage, error, message):
    state = trained_state(NETWORKS[network], fastgd.Adam())
    before = state.get_state()
    with pytest.raises(error, match=message):
        state.set_state(damage(before))
    after = state.get_state()
    assert after.keys() == before.keys() and after["steps"] == before["steps"]
    for key in before:
        if key != "steps":
            for a, b in zip(after[key], before[key]):
                np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("network", NETWORKS)
def test_state_without_buffers_drops_them(network):
    state = trained_state(NETWORKS[network], fastgd.RMSprop(momentum=0.9))
    state.set_state({"steps": 0})
    assert state.get_state() == {"steps": 0}
    state.set_state({"steps": 3, "square_avg_w": [], "square_avg_b": []})
    assert state.get_state() == {"steps": 3}


def test_engine_state_checks_against_the_network_before_any_step():
    fresh = fastgd.Adam()._state_for(fastgd.Network(list(SIZES), seed=0, **NETWORK))
    other = trained_state(fastgd.Network, fastgd.Adam())
    assert fresh.sizes == list(SIZES)
    with pytest.raises(ValueError, match=r"exp_avg_w\[0\] has shape \(6, 9\), expected \(5, 9\)"):
        fastgd._core.Adam64(sizes=[5, 9, 7, 4]).set_state(other.get_state())
    loose = fastgd._core.Adam64()
    loose.set_state(other.get_state())
    assert loose.sizes == list(SIZES) and loose.steps == 1


def test_engine_state_converts_dtype_and_accepts_tuples():
    state = trained_state(fastgd.Network, fastgd.Adagrad())
    saved = state.get_state()
    engine32 = fastgd._core.Adagrad32(sizes=list(SIZES))
    engine32.set_state({key: tuple(value) if key != "steps" else np.int64(value) for key, value in saved.items()})
    restored = engine32.get_state()
    assert restored["steps"] == 1 and isinstance(restored["steps"], int)
    for a, b in zip(restored["sum_w"], saved["sum_w"]):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-7)


@pytest.mark.parametrize(
    ("make_optimizer", "error", "message"),
    [
        (lambda: fastgd.Adam(lr=-1e-3), ValueError, "lr must be positive, got -0.001"),
        (lambda: fastgd.AdamW(lr=0), ValueError, "lr must be positive"),
        (lambda: fastgd.Adam(lr=float("nan")), ValueError, "lr must be finite"),
        (lambda: fastgd.Adam(betas=(1.0, 0.999)), ValueError, r"betas\[0\] must be in \[0, 1\), got 1.0"),
        (lambda: fastgd.Adam(betas=(0.9, -0.1)), ValueError, r"betas\[1\] must be at least 0.0, got -0.1"),
        (lambda: fastgd.AdamW(betas=(0.9,)), TypeError, r"betas must be a pair \(beta1, beta2\)"),
        (lambda: fastgd.Adam(betas="ab"), TypeError, r"betas must be a pair \(beta1, beta2\)"),
        (lambda: fastgd.Adam(betas=(0.9, "x")), TypeError, r"betas\[1\] must be a real number"),
        (lambda: fastgd.Adam(eps=0), ValueError, "eps must be positive, got 0.0"),
        (lambda: fastgd.Adam(weight_decay=-1e-4), ValueError, "weight_decay must be at least 0.0"),
        (lambda: fastgd.RMSprop(lr=-1), ValueError, "lr must be positive"),
        (lambda: fastgd.RMSprop(alpha=1.0), ValueError, r"alpha must be in \[0, 1\), got 1.0"),
        (lambda: fastgd.RMSprop(alpha=-0.5), ValueError, "alpha must be at least 0.0"),
        (lambda: fastgd.RMSprop(eps=-1e-8), ValueError, "eps must be positive"),
        (lambda: fastgd.RMSprop(momentum=-0.9), ValueError, "momentum must be at least 0.0"),
        (lambda: fastgd.RMSprop(weight_decay=float("inf")), ValueError, "weight_decay must be finite"),
        (lambda: fastgd.Adagrad(lr="fast"), TypeError, "lr must be a real number"),
        (lambda: fastgd.Adagrad(eps=0.0), ValueError, "eps must be positive"),
        (lambda: fastgd.Adagrad(weight_decay=-1), ValueError, "weight_decay must be at least 0.0"),
    ],
)
def test_bad_hyperparameters_are_refused_by_name(make_optimizer, error, message):
    with pytest.raises(error, match=message):
        make_optimizer()


def test_hyperparameters_are_kept_verbatim_and_rechecked_before_training():
    optimizer = fastgd.Adam(lr=1, betas=[0.5, 0.75])
    assert optimizer.lr == 1 and optimizer.betas == [0.5, 0.75]
    assert repr(optimizer) == "Adam(lr=1.0, betas=(0.5, 0.75), eps=1e-08, weight_decay=0.0)"
    assert repr(fastgd.AdamW()) == "AdamW(lr=0.001, betas=(0.9, 0.999), eps=1e-08, weight_decay=0.01)"
    assert repr(fastgd.RMSprop()) == "RMSprop(lr=0.01, alpha=0.99, eps=1e-08, momentum=0.0, weight_decay=0.0)"
    assert repr(fastgd.Adagrad()) == "Adagrad(lr=0.01, eps=1e-10, weight_decay=0.0)"
    net = fastgd.Network(list(SIZES), seed=0, **NETWORK)
    optimizer.betas = (0.9, 1.5)
    with pytest.raises(ValueError, match=r"betas\[1\] must be in \[0, 1\)"):
        net.train_step(*problem(n=BATCH), optimizer)


def test_changed_hyperparameters_reach_the_engine():
    net = fastgd.Network(list(SIZES), dtype="float64", seed=0, **NETWORK)
    optimizer = fastgd.AdamW(lr=1e-3)
    net.train_step(*problem(n=BATCH), optimizer)
    optimizer.lr, optimizer.betas, optimizer.weight_decay = 0.5, (0.5, 0.6), 0.25
    net.train_step(*problem(n=BATCH), optimizer)
    engine = optimizer._states[net]
    assert (engine.lr, engine.betas, engine.weight_decay, engine.decoupled_weight_decay) == (0.5, (0.5, 0.6), 0.25, True)


def test_engine_states_check_their_own_hyperparameters():
    core = fastgd._core
    assert core.Adam32().betas == (0.9, 0.999) and not core.Adam32().decoupled_weight_decay
    assert (core.RMSprop64().alpha, core.Adagrad64().eps) == (0.99, 1e-10)
    with pytest.raises(ValueError, match=r"betas\[0\] must be in \[0, 1\), got 1"):
        core.Adam64(betas=(1.0, 0.5))
    with pytest.raises(ValueError, match="eps must be positive, got 0"):
        core.RMSprop32(eps=0.0)
    with pytest.raises(ValueError, match="lr must be positive, got -1"):
        core.Adagrad64().set_hyperparameters(lr=-1.0, eps=1e-10, weight_decay=0.0)
    with pytest.raises(ValueError, match="sizes must be positive"):
        core.SGD64(0.1, sizes=[3, 0])
    with pytest.raises(ValueError, match="optimizer's state belongs to a network of another shape"):
        net = fastgd.Network([4, 3], seed=0)
        net._core.train_epoch(core.Adam32(sizes=[4, 5, 3]), np.zeros((2, 4), np.float32), np.zeros((2, 3), np.float32), None, 2)
