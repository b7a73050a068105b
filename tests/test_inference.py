"""The predict path: out=, single samples, and concurrent calls from many threads."""

import threading

import numpy as np
import pytest

import fastgd


@pytest.fixture(scope="module")
def net():
    return fastgd.Network([784, 128, 10], activation="relu", seed=0)


def test_out_receives_the_result_and_is_returned(net):
    X = np.random.default_rng(0).random((5, 784), dtype=np.float32)
    out = np.full((5, 10), np.nan, dtype=np.float32)
    assert net.predict(X, out=out) is out
    np.testing.assert_array_equal(out, net.predict(X))
    single = np.empty(10, dtype=np.float32)
    assert net.predict(X[3], out=single) is single
    # One row goes through GEMV, a batch through GEMM: the sums round differently in the last bit.
    np.testing.assert_allclose(single, out[3], rtol=1e-6)


@pytest.mark.parametrize(
    ("out", "message"),
    [
        (np.empty((5, 10), np.float64), r"float32 array of shape \(5, 10\), got float64 \(5, 10\)"),
        (np.empty((5, 11), np.float32), r"got float32 \(5, 11\)"),
        (np.empty((10, 5), np.float32).T, "C-contiguous"),
        (np.empty(50, np.float32), r"got float32 \(50,\)"),
        ([[0.0] * 10] * 5, "got list"),
    ],
)
def test_bad_out_is_refused(net, out, message):
    X = np.zeros((5, 784), np.float32)
    with pytest.raises(ValueError, match=message):
        net.predict(X, out=out)


def test_read_only_out_is_refused(net):
    out = np.empty((2, 10), np.float32)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="writeable"):
        net.predict(np.zeros((2, 784), np.float32), out=out)


def test_fast_path_still_checks_for_nan(net):
    X = np.zeros((3, 784), np.float32)
    X[2, 5] = np.inf
    with pytest.raises(ValueError, match=r"first at row 2, column 5"):
        net.predict(X)
    with pytest.raises(ValueError, match=r"first at row 0, column 5"):
        net.predict(X[2])


def test_eight_threads_predicting_at_once_match_serial_results(net):
    rng = np.random.default_rng(1)
    inputs = [rng.random((1000, 784), dtype=np.float32) for _ in range(8)]
    serial = [[net.predict(x[i]) for i in range(0, 1000, 50)] + [net.predict(x)] for x in inputs]
    results = [None] * 8
    start = threading.Barrier(8)

    def worker(index):
        x = inputs[index]
        out = np.empty(10, dtype=np.float32)
        start.wait()
        singles = []
        for i in range(1000):
            net.predict(x[i], out=out)
            if i % 50 == 0:
                singles.append(out.copy())
        results[index] = singles + [net.predict(x)]

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for got, want in zip(results, serial):
        for g, w in zip(got, want):
            np.testing.assert_array_equal(g, w)


def test_predicting_while_another_thread_trains_is_safe():
    net = fastgd.Network([20, 32, 4], seed=0)
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((2000, 20)).astype(np.float32), rng.integers(0, 4, 2000)
    trainer = threading.Thread(target=lambda: net.fit(X, y, epochs=5, batch_size=16, verbose=0))
    trainer.start()
    outputs = [net.predict(X[:100]) for _ in range(50)]
    trainer.join()
    for out in outputs:
        assert np.isfinite(out).all()
        np.testing.assert_allclose(out.sum(axis=1), 1, rtol=1e-5)


def test_large_inputs_are_predicted_in_chunks_equal_to_one_pass(net):
    X = np.random.default_rng(2).random((2500, 784), dtype=np.float32)
    full = net.predict(X)
    np.testing.assert_allclose(full[1000:1100], net.predict(X[1000:1100]), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(full[2048:], net.predict(X[2048:]), rtol=1e-6, atol=1e-7)


def test_two_threads_splitting_the_rows_give_one_threads_results(net):
    rng = np.random.default_rng(3)
    X = rng.random((3001, 784), dtype=np.float32)
    X[X < 0.8] = 0  # mostly zeros, like MNIST: the first layer takes the sparse path
    y = rng.integers(0, 10, 3001)
    saved = fastgd.get_num_threads()
    try:
        fastgd.set_num_threads(1)
        one, one_scores = net.predict(X), net.evaluate(X, y)
        fastgd.set_num_threads(2)
        two, two_scores = net.predict(X), net.evaluate(X, y)
    finally:
        fastgd.set_num_threads(saved)
    np.testing.assert_allclose(two, one, rtol=1e-6, atol=1e-7)
    assert two_scores["accuracy"] == one_scores["accuracy"]
    assert two_scores["loss"] == pytest.approx(one_scores["loss"], rel=1e-6)
