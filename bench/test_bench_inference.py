"""Inference: single-sample latency and 10,000-row throughput, fastgd against the NumPy twin,
ONNX Runtime and PyTorch (each peer only when installed).

Every benchmark checks its outputs against fastgd's before timing. Run:
python -m pytest bench/test_bench_inference.py --benchmark-json=bench/last-inference.json
"""

import threading

import numpy as np
import pytest

import fastgd

NETWORKS = {"784-128-10": [784, 128, 10], "784-1024-1024-10": [784, 1024, 1024, 10]}


@pytest.fixture(scope="module")
def samples(mnist):
    _, (X_test, _) = mnist
    return np.ascontiguousarray(X_test)


def fastgd_net(sizes):
    return fastgd.Network(sizes, activation="relu", seed=0)


def make_predictor(engine, net, tmp_path):
    """A callable X -> outputs (n, n_out) for `engine`, running the weights of `net`."""
    if engine == "fastgd":
        return net.predict
    if engine == "numpy":
        twin = fastgd.reference.Network(net.layers, loss=net.loss, dtype=net.dtype)
        twin.params = net.params
        return twin.predict
    if engine == "onnxruntime":
        ort = pytest.importorskip("onnxruntime")
        pytest.importorskip("onnx")
        path = tmp_path / "model.onnx"
        net.to_onnx(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = fastgd.get_num_threads()
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return lambda X: session.run(None, {"input": X.reshape(-1, net.n_in)})[0]
    torch = pytest.importorskip("torch")
    torch.set_num_threads(fastgd.get_num_threads())
    modules = []
    for layer, (W, b) in zip(net.layers, net.params):
        linear = torch.nn.Linear(layer.n_in, layer.n_out)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b.copy()))
        modules.append(linear)
        modules.append(torch.nn.ReLU() if layer.activation == "relu" else torch.nn.Softmax(dim=1))
    model = torch.nn.Sequential(*modules).eval()

    def run(X):
        with torch.inference_mode():
            return model(torch.from_numpy(X.reshape(-1, net.n_in))).numpy()

    return run


ENGINES = ["fastgd", "numpy", "onnxruntime", "torch"]


@pytest.mark.parametrize("engine", ENGINES)
def test_predict_one_sample_latency(benchmark, samples, engine, tmp_path):
    net = fastgd_net(NETWORKS["784-128-10"])
    predict = make_predictor(engine, net, tmp_path)
    sample = samples[0]
    np.testing.assert_allclose(np.reshape(predict(sample), -1), net.predict(sample), rtol=1e-4, atol=1e-6)
    benchmark.group = "predict 1 sample 784-128-10"
    if engine == "fastgd":
        out = np.empty(10, dtype=np.float32)
        benchmark(net.predict, sample, out=out)
    else:
        benchmark(predict, sample)


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("network", NETWORKS)
def test_predict_10000_rows_throughput(benchmark, samples, network, engine, tmp_path):
    net = fastgd_net(NETWORKS[network])
    predict = make_predictor(engine, net, tmp_path)
    np.testing.assert_allclose(predict(samples[:100]), net.predict(samples[:100]), rtol=1e-4, atol=1e-6)
    benchmark.group = f"predict 10000 rows {network}"
    benchmark.pedantic(predict, args=(samples,), rounds=10, warmup_rounds=1)
    flops = sum(2 * a * b for a, b in zip(NETWORKS[network], NETWORKS[network][1:])) * len(samples)
    benchmark.extra_info["gflops"] = flops / benchmark.stats.stats.median / 1e9


@pytest.mark.parametrize("python_threads", [1, 2])
def test_predict_from_python_threads(benchmark, samples, python_threads):
    # Each Python thread predicts its share of the rows in 100-row calls, the engine on one
    # thread per call: the GIL being released lets two callers use two cores.
    net = fastgd_net(NETWORKS["784-1024-1024-10"])
    saved = fastgd.get_num_threads()
    fastgd.set_num_threads(1)
    shares = np.array_split(samples, python_threads)

    def work(rows):
        for start in range(0, len(rows), 100):
            net.predict(rows[start:start + 100])

    def run():
        threads = [threading.Thread(target=work, args=(rows,)) for rows in shares]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    try:
        benchmark.group = "predict 10000 rows 784-1024-1024-10 in 100-row calls from Python threads"
        benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    finally:
        fastgd.set_num_threads(saved)
