"""How fastgd's training epoch scales with the data: time per sample and peak memory.

One epoch of W2 and of W3 on the first 10,000, 30,000 and 60,000 training images; report.py
compares the time per sample at 60k with that at 10k. For 10k and 60k the epoch also runs in a
fresh subprocess that samples VmRSS from /proc/self/status on a background thread: the peak
during the epoch minus VmRSS just before it, with the data (X and float32 one-hot targets)
already allocated. ru_maxrss would not do, since a child inherits its parent's high-water
mark across exec. The 60k epoch may grow by at most 10 % more than the 10k one (1 MiB at
least, the allocator's noise), plus 64 bytes per extra image for what ``fit`` keeps per sample:
the shuffled order and the labels it derives from the targets (about 50 bytes an image here,
which is 9 % of W3's growth at 60k). Also: W5 predicted in 100-row calls from one and from two
Python threads, the engine on one thread per call.
"""

import json
import os
import subprocess
import sys
import threading

import numpy as np
import pytest

import fastgd

SIZES = [10_000, 30_000, 60_000]
MEMORY_SIZES = (10_000, 60_000)
TIMING = {"W2": dict(rounds=5, warmup_rounds=1), "W3": dict(rounds=3, warmup_rounds=0)}
ACCURACY = 0.85
PER_SAMPLE_BYTES = 64

# Run as `python -c CHILD spec n threads mnist_dir`; prints VmRSS before and at the peak of one
# epoch, and the data's size, as JSON.
CHILD = r"""
import json, sys, threading, time
import numpy as np
import fastgd
from fastgd import datasets

spec, n, threads, folder = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]


def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024


fastgd.set_num_threads(threads)
(X, y), _ = datasets.load_mnist(folder)
X = np.ascontiguousarray(X[:n])
targets = np.eye(spec["sizes"][-1], dtype=np.float32)[y[:n]]
net = fastgd.Network(spec["sizes"], dtype="float32", seed=0, **spec["net"])
optimizer = getattr(fastgd, spec["optimizer"][0])(**spec["optimizer"][1])
peak, done = [0], threading.Event()


def sample():
    while not done.is_set():
        peak[0] = max(peak[0], rss())
        time.sleep(0.0005)


before = rss()
sampler = threading.Thread(target=sample)
sampler.start()
net.fit(X, targets, epochs=1, batch_size=spec["batch_size"], optimizer=optimizer, seed=0, verbose=0)
done.set()
sampler.join()
peak[0] = max(peak[0], rss())
print(json.dumps(dict(before=before, peak=peak[0], data=X.nbytes + targets.nbytes)))
"""


def median(benchmark):
    return benchmark.stats.stats.median if benchmark.stats else None


@pytest.fixture(scope="module")
def epoch_memory(mnist_dir, threads):
    """A function (key, spec, n) -> the child's measurement, each run once per module."""
    runs = {}
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))

    def measure(key, spec, n):
        if (key, n) not in runs:
            result = subprocess.run(
                [sys.executable, "-c", CHILD, json.dumps(spec), str(n), str(threads), str(mnist_dir)],
                capture_output=True, text=True, env=env, timeout=900,
            )
            assert result.returncode == 0, f"the memory run of {key} on {n} images failed:\n{result.stderr}"
            run = json.loads(result.stdout.splitlines()[-1])
            run["growth"] = run["peak"] - run["before"]
            runs[key, n] = run
        return runs[key, n]

    return measure


@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("key", list(TIMING))
def test_train_epoch_scaling(benchmark, mnist, workloads, epoch_memory, key, n):
    spec = workloads[key]
    (X, y), (X_test, y_test) = mnist
    X, y = X[:n], y[:n]
    benchmark.group = f"scaling {key} {spec['title']}"
    benchmark.extra_info.update(workload=key, engine="fastgd", samples=n, scaling=True)
    built = []

    def setup():
        net = fastgd.Network(spec["sizes"], dtype="float32", seed=0, **spec["net"])
        name, options = spec["optimizer"]
        built[:] = [net]
        return (net, getattr(fastgd, name)(**options)), {}

    def epoch(net, optimizer):
        net.fit(X, y, epochs=1, batch_size=spec["batch_size"], optimizer=optimizer, seed=0, verbose=0)

    benchmark.pedantic(epoch, setup=setup, **TIMING[key])
    accuracy = built[0].evaluate(X_test, y_test)["accuracy"]
    benchmark.extra_info["accuracy"] = accuracy
    assert accuracy > ACCURACY, f"one epoch of {key} on {n} images reached {accuracy:.2%}"
    seconds = median(benchmark)
    if seconds:
        benchmark.extra_info.update(seconds_per_sample=seconds / n, gflops=spec["flops_per_sample"] * n / seconds / 1e9)

    if n not in MEMORY_SIZES:
        return
    run = epoch_memory(key, spec, n)
    benchmark.extra_info.update(rss_before=run["before"], rss_peak=run["peak"], rss_growth=run["growth"], data_bytes=run["data"])
    if n == max(MEMORY_SIZES):
        small = epoch_memory(key, spec, min(MEMORY_SIZES))
        benchmark.extra_info.update(rss_growth_small=small["growth"], rss_growth_small_samples=min(MEMORY_SIZES))
        extra = PER_SAMPLE_BYTES * (n - min(MEMORY_SIZES))
        allowed = max(1.10 * small["growth"], small["growth"] + 2**20) + extra
        assert run["growth"] <= allowed, (
            f"one epoch of {key} grew the resident set by {run['growth'] / 2**20:.1f} MiB on {n} images "
            f"but {small['growth'] / 2**20:.1f} MiB on {min(MEMORY_SIZES)}"
        )


@pytest.mark.parametrize("python_threads", [1, 2])
def test_predict_from_python_threads(benchmark, mnist, workloads, python_threads):
    # Each Python thread predicts its share of the rows in 100-row calls, the engine on one
    # thread per call: predict releasing the GIL lets two callers use two cores.
    _, (X_test, _) = mnist
    spec = workloads["W5"]
    net = fastgd.Network(spec["sizes"], activation="relu", output_activation="softmax", dtype="float32", seed=0)
    shares = np.array_split(X_test[:spec["rows"]], python_threads)
    saved = fastgd.get_num_threads()

    def work(rows):
        for start in range(0, len(rows), 100):
            net.predict(rows[start:start + 100])

    def run():
        workers = [threading.Thread(target=work, args=(rows,)) for rows in shares]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    benchmark.group = "W5 in 100-row calls from Python threads, the engine on 1 thread"
    benchmark.extra_info.update(workload="W5", engine="fastgd", python_threads=python_threads, engine_threads=1)
    fastgd.set_num_threads(1)
    try:
        benchmark.pedantic(run, rounds=5, warmup_rounds=1)
    finally:
        fastgd.set_num_threads(saved)
