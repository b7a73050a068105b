"""fastgd.sklearn's MLPClassifier against scikit-learn's, in the same run: fit and predict.

The estimators take the same parameters, ``hidden_layer_sizes=(100,), solver="adam",
random_state=0`` and scikit-learn's defaults otherwise (batches of 200, alpha 1e-4):

- ``test_fit``: load_digits scaled to [0, 1] (1,347 training rows, 450 held out), 200 epochs;
  MNIST pixels / 255 (60,000 and 10,000), 20 epochs. Float64, as scikit-learn users hold their
  data, and float32, which both estimators keep (fastgd's dtype follows the input).
- ``test_fit_sparse``: a scipy.sparse CSR problem of 100,000 features at 0.1 % density and 20
  classes (see `sparse_problem`), the same matrix to both, float64 and float32, 3 epochs. A
  fresh subprocess also measures the fit's peak resident set (see `MEMORY_CHILD`), to compare
  with the size the matrix would have dense.
- ``test_predict``: one row and 1,000 rows through the fitted estimators' ``predict``, and
  through the fitted fastgd ``network_.predict`` (the engine without scikit-learn's checks).

Verified before anything is timed: every fit is first run once, untimed, and its accuracy on
the held-out rows must lie within 0.3 points of scikit-learn's float64 fit (which must itself
pass a bar); the last timed fit is checked again. Predictions must equal scikit-learn's
(float64) or agree on 99 % of the rows (float32). ``extra_info`` holds the accuracies, the
iterations run, the largest relative difference of the loss curve from scikit-learn's float64
one, and the 1-minute load average when the timing started (the machine is shared).

Run: python -m pytest bench/test_bench_sklearn.py -p no:cacheprovider --benchmark-columns=min,median,max,rounds
"""

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("sklearn")
pytest.importorskip("scipy.sparse")

import scipy.sparse
from sklearn.exceptions import ConvergenceWarning

import fastgd.sklearn

pytestmark = pytest.mark.bench

PARAMETERS = dict(hidden_layer_sizes=(100,), solver="adam", random_state=0)
EPOCHS = {"digits": 200, "mnist": 20, "sparse": 3}
# scikit-learn's float64 fit must reach this accuracy on the held-out rows, and every other fit
# its accuracy within TOLERANCE.
BAR = {"digits": 0.95, "mnist": 0.97, "sparse": 0.80}
TOLERANCE = 0.003
ROUNDS = 3

SPARSE = dict(n_train=10_000, n_test=2_000, n_features=100_000, density=0.001, n_classes=20)


def estimator_class(engine):
    if engine == "sklearn":
        from sklearn.neural_network import MLPClassifier
        return MLPClassifier
    return fastgd.sklearn.MLPClassifier


def fit(engine, case, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter ends the fit, on purpose
        return estimator_class(engine)(max_iter=EPOCHS[case], **PARAMETERS).fit(X, y)


def sparse_problem(n_samples, n_features, density, n_classes, seed=0):
    """A learnable sparse classification problem as a float64 CSR matrix, and its labels.

    Each class owns a block of 1,000 features. Every row holds density · n_features
    nonzeros (fewer by the rare repeated column, summed): 12 % drawn from its class's block,
    the rest from all features, with values uniform in [0.1, 1) and each row scaled to unit
    L2 norm, as a TF-IDF vectorizer leaves text. With 12 %, 3 epochs on 10,000 rows reach about 95 %
    on held-out rows (10 %: 79 %, 15 %: 99.7 %).
    """
    rng = np.random.default_rng(seed)
    per_row = round(n_features * density)
    own, block = round(0.12 * per_row), 1000
    assert n_classes * block <= n_features
    y = rng.integers(n_classes, size=n_samples)
    columns = np.empty((n_samples, per_row), dtype=np.int64)
    columns[:, :own] = y[:, None] * block + rng.integers(block, size=(n_samples, own))
    columns[:, own:] = rng.integers(n_features, size=(n_samples, per_row - own))
    values = rng.uniform(0.1, 1.0, size=(n_samples, per_row))
    indptr = np.arange(0, n_samples * per_row + 1, per_row)
    X = scipy.sparse.csr_matrix((values.ravel(), columns.ravel(), indptr), shape=(n_samples, n_features))
    X.sum_duplicates()
    norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
    X = scipy.sparse.csr_matrix(scipy.sparse.diags(1.0 / norms) @ X)
    X.sort_indices()
    return X, y


def sparse_split(dtype):
    spec = SPARSE
    X, y = sparse_problem(spec["n_train"] + spec["n_test"], spec["n_features"], spec["density"], spec["n_classes"])
    X = X.astype(dtype)
    n = spec["n_train"]
    return (X[:n], y[:n]), (X[n:], y[n:])


@pytest.fixture(scope="module")
def data(request):
    """A function (case, dtype) -> ((X_train, y_train), (X_test, y_test)), each built once."""
    built = {}

    def load(case, dtype):
        if (case, dtype) in built:
            return built[case, dtype]
        if dtype == "float32":
            (X, y), (X_test, y_test) = load(case, "float64")
            split = (X.astype(np.float32), y), (X_test.astype(np.float32), y_test)
        elif case == "digits":
            from sklearn.datasets import load_digits
            from sklearn.model_selection import train_test_split

            X, y = load_digits(return_X_y=True)
            X_train, X_test, y_train, y_test = train_test_split(X / 16.0, y, test_size=0.25, random_state=0, stratify=y)
            split = (X_train, y_train), (X_test, y_test)
        elif case == "mnist":
            # conftest's MNIST is float32 pixels / 255; the pixels back, then / 255 in float64
            mnist = request.getfixturevalue("mnist")  # skips when the files are missing
            split = tuple((np.rint(X * 255).astype(np.uint8) / 255.0, y) for X, y in mnist)
        else:
            split = sparse_split(np.float64)
        built[case, dtype] = split
        return split

    return load


@pytest.fixture(scope="module")
def verified(data):
    """A function (case, dtype, engine) -> the checked untimed fit: model, accuracy, seconds.

    Each is fitted once per module; scikit-learn's float64 fit is every case's reference.
    """
    fits = {}

    def get(case, dtype, engine):
        if (case, dtype, engine) not in fits:
            (X, y), (X_test, y_test) = data(case, dtype)
            start = time.perf_counter()
            model = fit(engine, case, X, y)
            seconds = time.perf_counter() - start
            fits[case, dtype, engine] = dict(model=model, accuracy=model.score(X_test, y_test), seconds=seconds)
        return fits[case, dtype, engine]

    return get


def check_against_reference(benchmark, verified, case, dtype, engine):
    """Assert the untimed fit's accuracy is scikit-learn float64's within TOLERANCE; record both."""
    reference = verified(case, "float64", "sklearn")
    assert reference["accuracy"] >= BAR[case], f"scikit-learn reached {reference['accuracy']:.2%} on {case}"
    mine = verified(case, dtype, engine)
    gap = mine["accuracy"] - reference["accuracy"]
    curve, reference_curve = np.array(mine["model"].loss_curve_), np.array(reference["model"].loss_curve_)
    benchmark.extra_info.update(
        accuracy=mine["accuracy"], accuracy_sklearn_float64=reference["accuracy"], n_iter=mine["model"].n_iter_,
        n_iter_sklearn_float64=reference["model"].n_iter_, untimed_fit_seconds=mine["seconds"],
    )
    if len(curve) == len(reference_curve):
        benchmark.extra_info["loss_curve_max_rel_diff"] = float(np.max(np.abs(curve / reference_curve - 1)))
    assert abs(gap) <= TOLERANCE, (
        f"{engine} {dtype} reached {mine['accuracy']:.2%} on {case}, scikit-learn float64 {reference['accuracy']:.2%}"
    )
    return reference


def time_fit(benchmark, data, case, dtype, engine):
    """Time ROUNDS fits; returns the last one's held-out accuracy."""
    (X, y), (X_test, y_test) = data(case, dtype)
    models = []

    def run():
        models[:] = [fit(engine, case, X, y)]

    benchmark.extra_info["load_average"] = os.getloadavg()[0]
    benchmark.pedantic(run, rounds=ROUNDS, warmup_rounds=0)
    return models[0].score(X_test, y_test)


@pytest.mark.parametrize("engine", ["sklearn", "fastgd"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("case", ["digits", "mnist"])
def test_fit(benchmark, data, verified, case, dtype, engine):
    benchmark.group = f"fit {case} {dtype}, 100 hidden relu, adam, {EPOCHS[case]} epochs"
    (X, _), (X_test, _) = data(case, dtype)
    benchmark.extra_info.update(case=case, dtype=dtype, engine=engine, samples=X.shape[0], held_out=X_test.shape[0])
    reference = check_against_reference(benchmark, verified, case, dtype, engine)
    accuracy = time_fit(benchmark, data, case, dtype, engine)
    benchmark.extra_info["accuracy_last_timed"] = accuracy
    assert abs(accuracy - reference["accuracy"]) <= TOLERANCE, f"the last timed fit reached {accuracy:.2%}"


# Run as `python -c MEMORY_CHILD engine dtype threads bench_dir`: fits the sparse problem and
# prints, as JSON, VmRSS just before the fit and the peak resident set of the fit (VmHWM after
# the fit, its high-water mark reset to the current RSS just before it through
# /proc/self/clear_refs), the CSR's bytes and what the training matrix would take dense.
# ru_maxrss would not do: a child inherits its parent's high-water mark across exec.
MEMORY_CHILD = r"""
import json, sys
import numpy as np
engine, dtype, threads, folder = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
sys.path.insert(0, folder)
import fastgd
import test_bench_sklearn as bench

fastgd.set_num_threads(threads)


def status(key):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024


(X, y), _ = bench.sparse_split(np.dtype(dtype))
bench.estimator_class(engine)  # imports the estimator's module before the measurement
before = status("VmRSS")
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")
reset = status("VmHWM")
model = bench.fit(engine, "sparse", X, y)
peak = status("VmHWM")
csr = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
print(json.dumps(dict(before=before, reset=reset, peak=peak, csr=csr, dense=X.shape[0] * X.shape[1] * X.dtype.itemsize,
                      n_iter=model.n_iter_)))
"""


def fit_memory(engine, dtype, threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OPENBLAS_NUM_THREADS=str(threads))
    result = subprocess.run(
        [sys.executable, "-c", MEMORY_CHILD, engine, dtype, str(threads), str(Path(__file__).parent)],
        capture_output=True, text=True, env=env, timeout=900,
    )
    assert result.returncode == 0, f"the memory run of {engine} {dtype} failed:\n{result.stderr}"
    run = json.loads(result.stdout.splitlines()[-1])
    assert run["reset"] <= run["before"] * 1.01 + 2**20, f"VmHWM was not reset: {run}"
    return run


@pytest.mark.parametrize("engine", ["sklearn", "fastgd"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_fit_sparse(benchmark, data, verified, threads, engine, dtype):
    spec = SPARSE
    benchmark.group = (
        f"fit sparse CSR {dtype}, {spec['n_train']:,} x {spec['n_features']:,} at {spec['density']:.1%}, "
        f"{spec['n_classes']} classes, adam, {EPOCHS['sparse']} epochs"
    )
    (X, _), _ = data("sparse", dtype)
    benchmark.extra_info.update(case="sparse", dtype=dtype, engine=engine, samples=X.shape[0], nnz=X.nnz,
                                density=X.nnz / (X.shape[0] * X.shape[1]))
    reference = check_against_reference(benchmark, verified, "sparse", dtype, engine)
    accuracy = time_fit(benchmark, data, "sparse", dtype, engine)
    benchmark.extra_info["accuracy_last_timed"] = accuracy
    assert abs(accuracy - reference["accuracy"]) <= TOLERANCE, f"the last timed fit reached {accuracy:.2%}"

    run = fit_memory(engine, dtype, threads)
    growth = run["peak"] - run["before"]
    benchmark.extra_info.update(rss_before=run["before"], rss_peak=run["peak"], rss_growth=growth,
                                csr_bytes=run["csr"], dense_bytes=run["dense"])
    if engine == "fastgd":
        assert run["peak"] < run["dense"], f"the fit's peak RSS {run['peak'] / 2**20:.0f} MiB is not below the dense matrix's"


@pytest.mark.parametrize("engine", ["sklearn", "fastgd", "fastgd network_"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("rows", [1, 1000])
@pytest.mark.parametrize("case", ["digits", "mnist"])
def test_predict(benchmark, data, verified, case, rows, dtype, engine):
    """predict of 1 row and of 1,000 rows (digits: its 450 held-out rows, then training rows)."""
    benchmark.group = f"predict {case} {rows} row{'s' if rows > 1 else ''} {dtype}"
    (X_train, _), (X_test, _) = data(case, dtype)
    X = np.ascontiguousarray(np.concatenate([X_test, X_train])[:rows])
    model = verified(case, dtype, "fastgd" if engine.startswith("fastgd") else "sklearn")["model"]
    reference = verified(case, "float64", "sklearn")["model"].predict(X.astype(np.float64))
    if engine == "fastgd network_":
        out = np.empty((rows, model.network_.n_out), dtype=X.dtype)
        predicted = model.classes_[model.network_.predict(X, out=out).argmax(axis=1)]
        call, kwargs = model.network_.predict, dict(out=out)
    else:
        predicted = model.predict(X)
        call, kwargs = model.predict, {}
    agreement = float(np.mean(predicted == reference))
    benchmark.extra_info.update(case=case, dtype=dtype, engine=engine, rows=rows, agreement_sklearn_float64=agreement)
    if dtype == "float64":
        np.testing.assert_array_equal(predicted, reference, err_msg=f"{engine} against scikit-learn")
    else:
        assert agreement >= 0.99, f"{engine} float32 agrees with scikit-learn float64 on {agreement:.1%} of the rows"
    benchmark.extra_info["load_average"] = os.getloadavg()[0]
    benchmark(call, X, **kwargs)
