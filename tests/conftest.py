import os
import re
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


def mnist_dir():
    return Path(os.environ.get("FASTGD_MNIST_DIR", REPO.parent / "shared" / "data" / "mnist"))


@pytest.fixture(scope="session")
def mnist():
    from fastgd import datasets

    folder = mnist_dir()
    if not folder.is_dir():
        pytest.skip(f"MNIST files not found at {folder} (set FASTGD_MNIST_DIR to their folder)")
    return datasets.load_mnist(folder)


@pytest.fixture(autouse=True)
def engine_threads_restored():
    """Each test starts with the engine following OpenMP's thread count, whatever the last set."""
    from fastgd import _core

    _core.set_num_threads(None)
    yield
    _core.set_num_threads(None)


def random_problem(rng, n, n_in, n_out, loss, output, dtype=np.float64):
    """Inputs and targets that suit the loss: class labels for softmax, [0, 1] targets for sigmoid."""
    X = rng.standard_normal((n, n_in)).astype(dtype)
    if output == "softmax":
        return X, rng.integers(0, n_out, n)
    if output == "sigmoid" or loss == "cross_entropy":
        return X, rng.uniform(0, 1, (n, n_out)).astype(dtype)
    return X, rng.standard_normal((n, n_out)).astype(dtype)


def pytest_terminal_summary(terminalreporter):
    # hypothesis's plugin leaves each test's statistics text on its report (--hypothesis-show-statistics)
    examples = [
        int(match.group(1))
        for reports in terminalreporter.stats.values()
        for report in reports
        for match in re.finditer(r"(\d+) passing", getattr(report, "_hypothesis_stats", None) or "")
    ]
    if examples:
        terminalreporter.write_line(f"hypothesis: {sum(examples)} passing examples in all")
    outcomes = {}
    for outcome in ("passed", "failed", "error"):
        for report in terminalreporter.stats.get(outcome, []):
            if report.when == "call" and "test_battery.py::test_case" in report.nodeid:
                outcomes[outcome] = outcomes.get(outcome, 0) + 1
    if outcomes:
        counts = ", ".join(f"{count} {outcome}" for outcome, count in outcomes.items())
        terminalreporter.write_line(f"bad-input battery: {sum(outcomes.values())} cases run in subprocesses: {counts}")
