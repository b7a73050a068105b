"""Properties that hold for any network and any input: shapes, batching, layouts, parity, shared params.

Each test draws networks (1 to 3 layers of 1 to 12 units, either dtype, any activations and a loss
that suits the output) and data with hypothesis, and checks the C++ engine against itself or
against its NumPy twin.
"""

import numpy as np
import pytest
from hypothesis import assume, event, example, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import fastgd

# No example database: it would write a .hypothesis folder into the repository on every run.
SETTINGS = settings(deadline=None, database=None)

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu"]
OUTPUTS = HIDDEN + ["softmax"]
# The same tolerances as test_parity.py: the engine and the twin sum products in different orders.
TWIN_TOLERANCE = {"float32": dict(rtol=1e-4, atol=1e-5), "float64": dict(rtol=1e-10, atol=1e-12)}
# For the weights after one SGD step, with atol multiplied by the largest change the step made:
# the absolute error grows with the update. Through a saturated tanh or sigmoid, a' computed from
# a loses digits (1 - a² from an a within 5 ulps for Eigen's float tanh, 1 for NumPy's), and the
# learning rate, up to 1, multiplies what is lost.
STEP_TOLERANCE = {"float32": dict(rtol=1e-4, atol=1e-4), "float64": dict(rtol=1e-10, atol=1e-11)}
# A few ulps, for the engine against itself. Its output for a row depends, in the last bits, on
# where that row sits in the batch. Eigen's GEMM computes the rows left over from a full block
# of rows with other micro-kernels, which round differently (float32: a 3-row predict differs
# from the first 3 rows of a 64-row predict, even with identity activations). And
# Eigen evaluates exp and tanh with SIMD packets from each row's first 16-byte-aligned coefficient
# on, and with scalar std::exp and std::tanh before it: a 1-row predict of a 5-unit sigmoid layer
# differs by 1 ulp from the second row of a 2-row predict, which starts 20 bytes in.
ULP_TOLERANCE = {"float32": dict(rtol=1e-6, atol=1e-6), "float64": dict(rtol=1e-12, atol=1e-12)}


@st.composite
def configs(draw):
    """Constructor arguments of a random network."""
    output = draw(st.sampled_from(OUTPUTS))
    losses = ["mse", "cross_entropy"] if output in ("softmax", "sigmoid") else ["mse"]
    return dict(
        layers=draw(st.lists(st.integers(1, 12), min_size=2, max_size=4)),
        activation=draw(st.sampled_from(HIDDEN)),
        output_activation=output,
        loss=draw(st.sampled_from(losses)),
        dtype=draw(st.sampled_from(["float32", "float64"])),
        seed=draw(st.integers(0, 2**32 - 1)),
    )


def floats_in(dtype, low, high):
    return st.floats(low, high, width=np.dtype(dtype).itemsize * 8)


def inputs(dtype, n, n_in):
    return hnp.arrays(np.dtype(dtype), (n, n_in), elements=floats_in(dtype, -3, 3))


def targets(config, n):
    """Targets that suit the loss: class labels or probabilities for softmax, [0, 1] for sigmoid."""
    dtype, n_out = np.dtype(config["dtype"]), config["layers"][-1]
    output = config["output_activation"]
    if output == "softmax":
        labels = hnp.arrays(np.int64, n, elements=st.integers(0, n_out - 1))
        return st.one_of(labels, hnp.arrays(dtype, (n, n_out), elements=floats_in(dtype, 0, 1)))
    if output == "sigmoid" or config["loss"] == "cross_entropy":
        return hnp.arrays(dtype, (n, n_out), elements=floats_in(dtype, 0, 1))
    return hnp.arrays(dtype, (n, n_out), elements=floats_in(dtype, -3, 3))


@st.composite
def problems(draw, min_n=1, max_n=24):
    """(config, X, y): a random network's arguments and data that suits it, in its dtype."""
    config = draw(configs())
    n = draw(st.integers(min_n, max_n))
    X = draw(inputs(config["dtype"], n, config["layers"][0]))
    return config, X, draw(targets(config, n))


@st.composite
def sgd_arguments(draw, max_lr=1.0):
    momentum = draw(st.one_of(st.just(0.0), st.floats(0.0, 0.95)))
    return dict(
        lr=draw(st.floats(1e-3, max_lr)),
        momentum=momentum,
        nesterov=momentum > 0 and draw(st.booleans()),
        weight_decay=draw(st.one_of(st.just(0.0), st.floats(0.0, 0.1))),
    )


def twins(config):
    return fastgd.Network(**config), fastgd.reference.Network(**config)


def flat_params(net):
    """Copies of [W0, b0, W1, b1, ...]."""
    return [array.copy() for pair in net.params for array in pair]


def assert_same_params(cpp, twin, tolerance):
    for layer, ((W, b), (tW, tb)) in enumerate(zip(cpp.params, twin.params)):
        np.testing.assert_allclose(W, tW, **tolerance, err_msg=f"W of layer {layer}")
        np.testing.assert_allclose(b, tb, **tolerance, err_msg=f"b of layer {layer}")


def assert_same_scores(got, want, out, tolerance):
    """evaluate() results agree; `out` is the twin's predictions, to find rows near a class tie."""
    assert got.keys() == want.keys()
    assert got["loss"] == pytest.approx(want["loss"], rel=tolerance["rtol"], abs=tolerance["atol"])
    if "accuracy" in want:
        # A row whose two best outputs are within rounding of each other may be classified
        # either way by two correct implementations.
        if out.shape[1] == 1:
            near_ties = np.abs(out[:, 0] - 0.5) <= 10 * tolerance["atol"]
        else:
            best_two = np.sort(out, axis=1)[:, -2:]
            near_ties = best_two[:, 1] - best_two[:, 0] <= 10 * tolerance["atol"]
        assert abs(got["accuracy"] - want["accuracy"]) <= near_ties.sum() / len(out) + 1e-12


@given(problems(), st.sampled_from([1e3, 1e6]))
@settings(SETTINGS, max_examples=200)
def test_predict_shape_dtype_finiteness_and_single_samples(problem, scale):
    config, X, _ = problem
    net = fastgd.Network(**config)
    out = net.predict(X)
    assert out.shape == (len(X), net.n_out)
    assert out.dtype == net.dtype
    assert np.all(np.isfinite(out))
    # Large inputs saturate sigmoid and tanh and push softmax to its limits, but stay finite.
    assert np.all(np.isfinite(net.predict(X * net.dtype.type(scale))))
    for i, row in enumerate(X):
        single = net.predict(row)
        assert single.shape == (net.n_out,)
        assert single.dtype == net.dtype
        np.testing.assert_allclose(single, out[i], **ULP_TOLERANCE[config["dtype"]], err_msg=f"row {i}")


SPLIT_EXAMPLE_CONFIG = dict(
    layers=[12, 12, 12, 12], activation="tanh", output_activation="softmax", loss="cross_entropy", seed=5
)


@given(configs(), st.integers(1, 80), st.integers(0, 8), st.integers(0, 2**32 - 1))
@example(dict(SPLIT_EXAMPLE_CONFIG, dtype="float32"), 2500, 6, 1)  # more than the engine's 1024-row chunk
@example(dict(SPLIT_EXAMPLE_CONFIG, dtype="float64"), 2049, 3, 2)
@settings(SETTINGS, max_examples=100)
def test_predict_ignores_how_rows_are_split_and_ordered(config, n, n_cuts, seed):
    net = fastgd.Network(**config)
    rng = np.random.default_rng(seed)
    X = rng.uniform(-3, 3, (n, net.n_in)).astype(net.dtype)
    whole = net.predict(X)
    cuts = np.sort(rng.choice(np.arange(1, n), size=min(n_cuts, n - 1), replace=False))
    pieces = [net.predict(part) for part in np.split(X, cuts)]
    np.testing.assert_allclose(np.concatenate(pieces), whole, **ULP_TOLERANCE[config["dtype"]])
    order = rng.permutation(n)
    np.testing.assert_allclose(net.predict(X[order]), whole[order], **ULP_TOLERANCE[config["dtype"]])


@given(problems())
@settings(SETTINGS, max_examples=200)
def test_engine_predicts_and_evaluates_like_the_twin(problem):
    config, X, y = problem
    cpp, twin = twins(config)
    tolerance = TWIN_TOLERANCE[config["dtype"]]
    out = twin.predict(X)
    np.testing.assert_allclose(cpp.predict(X), out, **tolerance)
    assert_same_scores(cpp.evaluate(X, y), twin.evaluate(X, y), out, tolerance)


@given(
    problems(),
    sgd_arguments(),
    st.lists(st.tuples(st.integers(0, 23), st.integers(1, 24)), min_size=1, max_size=3),
)
@settings(SETTINGS, max_examples=200)
def test_train_steps_match_the_twin(problem, sgd, batches):
    config, X, y = problem
    cpp, twin = twins(config)
    tolerance = TWIN_TOLERANCE[config["dtype"]]
    opt_cpp, opt_twin = fastgd.SGD(**sgd), fastgd.SGD(**sgd)
    # Up to three steps, so that momentum buffers carry over from one to the next.
    for start, size in batches:
        if max(np.abs(array).max() for array in flat_params(cpp)) > 100:
            # Weights start near unit scale; at a learning rate near 1 they can run away and
            # overflow a step later, which the twin reports with NumPy overflow warnings.
            event("stopped early: the weights ran away")
            break
        # Each step starts from the engine's weights, so that what is compared is one step's
        # arithmetic: at learning rates near 1, rounding differences compound over steps.
        twin.params = cpp.params
        before = flat_params(twin)
        rows = slice(start % len(X), start % len(X) + size)
        event(f"batch of {'one' if len(X[rows]) == 1 else 'several'} rows")
        loss_cpp = cpp.train_step(X[rows], y[rows], opt_cpp)
        loss_twin = twin.train_step(X[rows], y[rows], opt_twin)
        assert loss_cpp == pytest.approx(loss_twin, rel=tolerance["rtol"], abs=tolerance["atol"])
        update = max(np.abs(after - old).max() for after, old in zip(flat_params(twin), before))
        step_tolerance = STEP_TOLERANCE[config["dtype"]]
        assert_same_params(cpp, twin, dict(step_tolerance, atol=step_tolerance["atol"] * max(1.0, update)))


@given(
    problems(min_n=3),
    # Learning rates up to 0.1 (not 1 as for one step): over dozens of steps a larger one can
    # make training chaotic, where rounding differences grow until they exceed any tolerance.
    sgd_arguments(max_lr=0.1),
    st.sampled_from(["one", "divides n", "does not divide n", "more than n"]),
    st.integers(1, 2),
    st.booleans(),
    st.integers(0, 2**32 - 1),
    st.data(),
)
@settings(SETTINGS, max_examples=100)
def test_fit_matches_the_twin(problem, sgd, batch_kind, epochs, shuffle, seed, data):
    config, X, y = problem
    n = len(X)
    batch_size = data.draw(
        {
            "one": st.just(1),
            "divides n": st.sampled_from([b for b in range(2, n + 1) if n % b == 0]),
            "does not divide n": st.sampled_from([b for b in range(2, n) if n % b]),
            "more than n": st.integers(n + 1, n + 10),
        }[batch_kind],
        label="batch_size",
    )
    event(f"batch size {batch_kind}")
    cpp, twin = twins(config)
    tolerance = TWIN_TOLERANCE[config["dtype"]]
    kwargs = dict(epochs=epochs, batch_size=batch_size, shuffle=shuffle, seed=seed, verbose=0)
    with np.errstate(over="ignore", invalid="ignore"):
        try:
            h_twin = twin.fit(X, y, optimizer=fastgd.SGD(**sgd), **kwargs)
        except fastgd.TrainingDiverged:
            h_twin = None
    # Only runs whose weights stay near their starting scale say anything: when training runs
    # away, rounding differences grow with the weights until they exceed any tolerance.
    assume(h_twin is not None and max(np.abs(array).max() for array in flat_params(twin)) <= 100)
    h_cpp = cpp.fit(X, y, optimizer=fastgd.SGD(**sgd), **kwargs)
    np.testing.assert_allclose(h_cpp.history["loss"], h_twin.history["loss"], **tolerance)
    assert_same_params(cpp, twin, tolerance)


def every_other_row(a):
    buffer = np.zeros((2 * len(a),) + a.shape[1:], a.dtype)
    buffer[::2] = a
    return buffer[::2]


def every_other_column(a):
    if a.ndim == 1:
        return every_other_row(a)
    buffer = np.zeros((a.shape[0], 2 * a.shape[1]), a.dtype)
    buffer[:, ::2] = a
    return buffer[:, ::2]


def fortran_ordered(a):
    return np.asfortranarray(a)


def read_only(a):
    copy = a.copy()
    copy.flags.writeable = False
    return copy


def broadcast_first_row(a):
    return np.broadcast_to(a[0], a.shape)


def reversed_rows(a):
    """The same values seen through a negative row stride."""
    return a[::-1].copy()[::-1]


def reversed_columns(a):
    if a.ndim == 1:
        return reversed_rows(a)
    return a[:, ::-1].copy()[:, ::-1]


def misaligned(a):
    buffer = bytearray(a.nbytes + 1)
    view = np.frombuffer(buffer, a.dtype, count=a.size, offset=1).reshape(a.shape)
    view[...] = a
    assert not view.flags.aligned
    return view


def other_dtype(a):
    """float32 for float64 and the reverse, with bits below float32's precision; int32 labels."""
    if a.dtype == np.float64:
        return a.astype(np.float32)
    if a.dtype == np.float32:
        return a.astype(np.float64) * (1 + 2.0**-30)
    return a.astype(np.int32)


LAYOUTS = [
    every_other_row,
    every_other_column,
    fortran_ordered,
    read_only,
    broadcast_first_row,
    reversed_rows,
    reversed_columns,
    misaligned,
    other_dtype,
]


def contiguous_copy(a, dtype):
    """What an odd array should behave like: a C-contiguous copy, floats in the network's dtype."""
    return np.array(a, dtype=dtype if a.dtype.kind == "f" else a.dtype, order="C", copy=True)


@pytest.mark.parametrize("layout", LAYOUTS, ids=lambda layout: layout.__name__)
@given(problems(min_n=1, max_n=12), st.sampled_from([1, 3, 64]), st.integers(0, 2**32 - 1))
@settings(SETTINGS, max_examples=40)
def test_odd_layouts_act_like_contiguous_copies(layout, problem, batch_size, seed):
    config, X, y = problem

    def fit_outcome(X, y):
        """The weights after a short fit, or the epoch and batch where it diverged."""
        net = fastgd.Network(**config)
        optimizer = fastgd.SGD(lr=0.05, momentum=0.5)
        try:
            net.fit(X, y, epochs=2, batch_size=batch_size, optimizer=optimizer, seed=seed, verbose=0)
        except fastgd.TrainingDiverged as diverged:
            return [np.array([diverged.epoch, diverged.batch])]
        return flat_params(net)

    net = fastgd.Network(**config)
    odd_X, odd_y = layout(X), layout(y)
    X_copy, y_copy = contiguous_copy(odd_X, net.dtype), contiguous_copy(odd_y, net.dtype)
    for which, (Xa, ya, Xc, yc) in {
        "X": (odd_X, y, X_copy, y),
        "y": (X, odd_y, X, y_copy),
        "X and y": (odd_X, odd_y, X_copy, y_copy),
    }.items():
        # Bit-for-bit: the engine is given the same values, only laid out differently.
        if which == "X":
            np.testing.assert_array_equal(net.predict(Xa), net.predict(Xc), err_msg=f"odd {which}")
        assert net.evaluate(Xa, ya) == net.evaluate(Xc, yc), f"odd {which}"
        got, want = fit_outcome(Xa, ya), fit_outcome(Xc, yc)
        assert len(got) == len(want), f"odd {which}: only one of the fits diverged"
        for got_array, want_array in zip(got, want):
            np.testing.assert_array_equal(got_array, want_array, err_msg=f"odd {which}")


@given(problems(min_n=2, max_n=16), st.integers(1, 16), st.integers(1, 20), st.integers(0, 2**32 - 1))
@settings(SETTINGS, max_examples=60)
def test_params_views_stay_shared_through_fit_and_assignment(problem, first_batch, second_batch, seed):
    config, X, y = problem
    net = fastgd.Network(**config)
    # Goes through the same calls with no view of its params kept: bit-for-bit what `net` must hold.
    shadow = fastgd.Network(**config)
    tolerance = TWIN_TOLERANCE[config["dtype"]]
    rng = np.random.default_rng(seed)
    views = net.params
    W, b = views[0]

    def check_views():
        for layer, ((kept_W, kept_b), (W_now, b_now), (want_W, want_b)) in enumerate(
            zip(views, net.params, shadow.params)
        ):
            assert np.shares_memory(kept_W, W_now) and np.shares_memory(kept_b, b_now), f"layer {layer}"
            np.testing.assert_array_equal(kept_W, W_now, err_msg=f"W of layer {layer}")
            np.testing.assert_array_equal(kept_W, want_W, err_msg=f"W of layer {layer}")
            np.testing.assert_array_equal(kept_b, want_b, err_msg=f"b of layer {layer}")
        # Writing through the kept view changes what the engine computes: afterwards it predicts
        # what the twin predicts with the written weights.
        before = net.predict(X)
        new_W = (rng.standard_normal(W.shape) / np.sqrt(W.shape[0])).astype(net.dtype)
        W[...] = new_W
        shadow.params = [(new_W, b)] + shadow.params[1:]
        twin = fastgd.reference.Network(net.layers, loss=net.loss, dtype=net.dtype)
        twin.params = [(new_W, b)] + views[1:]
        expected = twin.predict(X)
        after = net.predict(X)
        np.testing.assert_allclose(after, expected, **tolerance)
        if not np.allclose(expected, before, **tolerance):
            assert not np.array_equal(after, before)

    check_views()
    # A larger batch (the data permitting) in the second fit makes the engine re-size its buffers.
    n = len(X)
    event("buffers re-sized" if min(second_batch, n) > min(first_batch, n) else "buffers kept")
    for batch_size in (first_batch, second_batch):
        for network in (net, shadow):
            network.fit(X, y, batch_size=batch_size, optimizer=fastgd.SGD(lr=0.001), shuffle=False, verbose=0)
        check_views()

    assigned = [(rng.uniform(-1, 1, W_now.shape), rng.uniform(-1, 1, b_now.shape)) for W_now, b_now in net.params]
    net.params = assigned
    shadow.params = assigned
    for (kept_W, kept_b), (want_W, want_b) in zip(views, assigned):
        np.testing.assert_array_equal(kept_W, want_W.astype(net.dtype))
        np.testing.assert_array_equal(kept_b, want_b.astype(net.dtype))
    check_views()
