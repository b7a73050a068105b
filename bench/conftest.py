import os
from pathlib import Path

import numpy as np
import pytest

from fastgd import datasets

MNIST_DIR = Path(os.environ.get("FASTGD_MNIST_DIR", Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"))


@pytest.fixture(scope="session")
def mnist():
    if not MNIST_DIR.is_dir():
        pytest.skip(f"MNIST files not found at {MNIST_DIR} (set FASTGD_MNIST_DIR)")
    (X, y), (X_test, y_test) = datasets.load_mnist(MNIST_DIR)
    return (np.ascontiguousarray(X), y), (X_test, y_test)
