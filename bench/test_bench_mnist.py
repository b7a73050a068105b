"""One epoch of MNIST training and batch prediction: fastgd against its NumPy twin.

Each benchmark verifies its result first, then times, and records GFLOP/s in extra_info.
Run: python -m pytest bench --benchmark-json=bench/last.json && python bench/report.py bench/last.json
"""

import numpy as np
import pytest

import fastgd

ENGINES = {"fastgd": fastgd, "numpy": fastgd.reference}

WORKLOADS = {
    "784-30-10 sigmoid mse sgd b10": dict(
        sizes=[784, 30, 10], net=dict(activation="sigmoid", output_activation="sigmoid", loss="mse"),
        optimizer=dict(lr=3.0), batch_size=10,
    ),
    "784-128-10 relu softmax-ce momentum b32": dict(
        sizes=[784, 128, 10], net=dict(activation="relu", output_activation="softmax", loss="cross_entropy"),
        optimizer=dict(lr=0.05, momentum=0.9), batch_size=32,
    ),
}


def training_flops(sizes, samples):
    # forward 2·n_in·n_out per sample per layer; backward twice that, less the first layer's dX
    forward = sum(2 * a * b for a, b in zip(sizes, sizes[1:]))
    return samples * (3 * forward - 2 * sizes[0] * sizes[1])


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("workload", WORKLOADS)
def test_train_one_epoch(benchmark, mnist, workload, engine):
    (X, y), (X_test, y_test) = mnist
    spec = WORKLOADS[workload]
    module = ENGINES[engine]
    benchmark.group = f"train epoch {workload}"
    nets = []

    def setup():
        net = module.Network(spec["sizes"], dtype="float32", seed=0, **spec["net"])
        nets.append(net)
        return (net,), {}

    def one_epoch(net):
        net.fit(X, y, epochs=1, batch_size=spec["batch_size"], optimizer=fastgd.SGD(**spec["optimizer"]), seed=0, verbose=0)

    benchmark.pedantic(one_epoch, setup=setup, rounds=5, warmup_rounds=1)
    assert nets[-1].evaluate(X_test, y_test)["accuracy"] > 0.9
    benchmark.extra_info["gflops"] = training_flops(spec["sizes"], len(X)) / benchmark.stats.stats.median / 1e9


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("sizes", [[784, 30, 10], [784, 128, 10]], ids=["784-30-10", "784-128-10"])
def test_predict_10000(benchmark, mnist, sizes, engine):
    _, (X_test, _) = mnist
    net = ENGINES[engine].Network(sizes, activation="relu", seed=0)
    expected = fastgd.reference.Network(sizes, activation="relu", seed=0).predict(X_test)
    np.testing.assert_allclose(net.predict(X_test), expected, rtol=1e-4, atol=1e-6)
    benchmark.group = f"predict 10000 {'-'.join(map(str, sizes))}"
    benchmark(net.predict, X_test)
    flops = sum(2 * a * b for a, b in zip(sizes, sizes[1:])) * len(X_test)
    benchmark.extra_info["gflops"] = flops / benchmark.stats.stats.median / 1e9


@pytest.mark.parametrize("engine", ENGINES)
def test_predict_one_sample(benchmark, mnist, engine):
    _, (X_test, _) = mnist
    net = ENGINES[engine].Network([784, 128, 10], activation="relu", seed=0)
    sample = X_test[:1]
    benchmark.group = "predict 1 sample 784-128-10"
    benchmark(net.predict, sample)
