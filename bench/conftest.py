"""Shared setup of the benchmarks: MNIST, the workloads, and one thread count for every engine.

``--threads N`` (default: ``fastgd.get_num_threads()``) sets fastgd's threads, NumPy's BLAS
threads (through threadpoolctl when it is installed; without it OPENBLAS_NUM_THREADS or
OMP_NUM_THREADS must say N), ``torch.set_num_threads`` and ONNX Runtime's
``intra_op_num_threads``. Every benchmark records it in ``extra_info["threads"]``.
"""

import os
import sys
from pathlib import Path

import numpy as np
import pytest

import fastgd
from fastgd import datasets

MNIST_DIR = Path(os.environ.get("FASTGD_MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))

BLAS_ENVIRONMENT = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")


def forward_flops(sizes):
    """Flops of one sample's forward pass: 2 per multiply-add of each layer's product."""
    return sum(2 * a * b for a, b in zip(sizes, sizes[1:]))


def training_flops(sizes):
    # per sample: the forward products, then dW = Xᵀ·dZ and dX = dZ·Wᵀ for every layer (each as
    # many flops as its forward product) except the first layer's dX, which nothing needs
    return 3 * forward_flops(sizes) - 2 * sizes[0] * sizes[1]


# The performance issue's workloads, as plain data so that a subprocess can rebuild them:
# fastgd.Network(sizes, **net), getattr(fastgd, optimizer[0])(**optimizer[1]). For training,
# `accuracy` is the bar on the 10,000 test images after one epoch and `rounds` the timed
# epochs; W4 and W5 predict `rows` test images with a relu/softmax network.
WORKLOADS = {
    "W1": dict(
        title="train epoch: textbook 784-30-10 sigmoid mse SGD(lr=3.0) b10",
        sizes=[784, 30, 10],
        net=dict(activation="sigmoid", output_activation="sigmoid", loss="mse"),
        optimizer=("SGD", dict(lr=3.0)),
        batch_size=10, rounds=5, accuracy=0.85,
    ),
    "W2": dict(
        title="train epoch: small 784-128-10 relu softmax-ce SGD(lr=0.05, momentum=0.9) b32",
        sizes=[784, 128, 10],
        net=dict(activation="relu", output_activation="softmax", loss="cross_entropy"),
        optimizer=("SGD", dict(lr=0.05, momentum=0.9)),
        batch_size=32, rounds=5, accuracy=0.90,
    ),
    "W3": dict(
        title="train epoch: wide 784-1024-1024-10 relu softmax-ce Adam(lr=1e-3) b256",
        sizes=[784, 1024, 1024, 10],
        net=dict(activation="relu", output_activation="softmax", loss="cross_entropy"),
        optimizer=("Adam", dict(lr=1e-3)),
        batch_size=256, rounds=3, accuracy=0.90,
    ),
    "W4": dict(title="latency: predict 1 sample 784-128-10", sizes=[784, 128, 10], rows=1),
    "W5": dict(title="throughput: predict 10,000 samples 784-1024-1024-10", sizes=[784, 1024, 1024, 10], rows=10_000),
}
for _spec in WORKLOADS.values():
    _spec["flops_per_sample"] = forward_flops(_spec["sizes"]) if "rows" in _spec else training_flops(_spec["sizes"])


def pytest_configure(config):
    config.addinivalue_line("markers", "bench: a benchmark of bench/, timed by pytest-benchmark; not part of the test suite")


def pytest_addoption(parser):
    parser.addoption(
        "--threads", type=int, default=None,
        help="threads for every engine: fastgd, NumPy's BLAS, PyTorch, ONNX Runtime (default: fastgd.get_num_threads())",
    )


def limit_blas(threads):
    """Limit the BLAS and OpenMP pools loaded so far to `threads`.

    Called again after a peer is imported, since its own libraries load with it.
    """
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        value = next((os.environ[name] for name in BLAS_ENVIRONMENT if name in os.environ), None)
        if value != str(threads) and not (value is None and threads == os.cpu_count()):
            raise pytest.UsageError(
                f"--threads {threads} needs threadpoolctl (pip install threadpoolctl) or "
                f"OPENBLAS_NUM_THREADS={threads} OMP_NUM_THREADS={threads} in the environment"
            )
        return
    threadpool_limits(limits=threads)


def numpy_blas_threads():
    """Threads of NumPy's BLAS as threadpoolctl reads them, else as the environment sets them."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        value = next((os.environ[name] for name in BLAS_ENVIRONMENT if name in os.environ), None)
        return int(value) if value else os.cpu_count()
    blas = [pool for pool in threadpool_info() if pool["user_api"] == "blas"]
    # NumPy's wheels keep their OpenBLAS in site-packages/numpy.libs
    own = [pool for pool in blas if Path(pool["filepath"]).parent.name.startswith("numpy")]
    return (own or blas or [{"num_threads": None}])[0]["num_threads"]


@pytest.fixture(scope="session")
def threads(request):
    """The thread count of every engine, applied to fastgd and NumPy's BLAS."""
    n = request.config.getoption("threads")
    n = fastgd.get_num_threads() if n is None else n
    if n < 1:
        raise pytest.UsageError(f"--threads must be at least 1, got {n}")
    limit_blas(n)
    fastgd.set_num_threads(n)
    assert fastgd.get_num_threads() == n
    return n


@pytest.fixture(autouse=True)
def _record_threads(request, threads):
    if "benchmark" in request.fixturenames:
        info = request.getfixturevalue("benchmark").extra_info
        info["threads"] = threads
        info["blas_threads"] = numpy_blas_threads()


@pytest.fixture(scope="session")
def torch(threads):
    """PyTorch at `threads` threads, or a skip when it is not installed."""
    torch = pytest.importorskip("torch")
    torch.set_num_threads(threads)
    limit_blas(threads)
    return torch


@pytest.fixture(scope="session")
def sklearn_mlp(threads):
    """``sklearn.neural_network`` with its BLAS at `threads` threads, or a skip."""
    module = pytest.importorskip("sklearn.neural_network")
    limit_blas(threads)
    return module


@pytest.fixture(scope="session")
def ort_session(threads, tmp_path_factory):
    """A function net -> ONNX Runtime session of ``net.to_onnx``, sequential, on `threads` threads."""
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    folder = tmp_path_factory.mktemp("onnx")

    def make(net):
        path = folder / f"{'-'.join(map(str, net.sizes))}.onnx"
        net.to_onnx(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    return make


@pytest.fixture(scope="session")
def mnist_dir():
    if not MNIST_DIR.is_dir():
        pytest.skip(f"MNIST files not found at {MNIST_DIR} (set FASTGD_MNIST_DIR)")
    return MNIST_DIR


@pytest.fixture(scope="session")
def mnist(mnist_dir):
    (X, y), (X_test, y_test) = datasets.load_mnist(mnist_dir)
    return (np.ascontiguousarray(X), y), (np.ascontiguousarray(X_test), y_test)


@pytest.fixture(scope="session")
def workloads():
    """The workloads W1-W5 by key."""
    return WORKLOADS


def pytest_benchmark_update_json(config, benchmarks, output_json):
    # What report.py prints above its tables: the engine build and the peers' versions.
    versions = {"numpy": np.__version__}
    for name in ("torch", "sklearn", "onnxruntime", "threadpoolctl"):
        if name in sys.modules:
            versions[name] = getattr(sys.modules[name], "__version__", "?")
    info = fastgd.build_info()
    output_json["fastgd"] = {
        "version": fastgd.__version__,
        "isa": info.get("isa"),
        "simd": info.get("simd"),
        "threads": fastgd.get_num_threads(),
        "versions": versions,
    }
