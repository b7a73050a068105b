"""A sparse X far larger than memory once dense trains in about the memory its nonzeros take."""

import subprocess
import sys
import textwrap

import pytest

import fastgd

pytest.importorskip("scipy")

# 200,000 × 100,000 at 0.1 %: 20 million nonzeros, 160 MB of float32 values and indices; the
# same matrix dense would take 80 GB, three times this machine's memory.
SCRIPT = textwrap.dedent(
    """
    import resource, sys
    import numpy as np
    from scipy import sparse
    import fastgd

    rows, cols, per_row = 200_000, 100_000, 100
    rng = np.random.default_rng(0)
    indices = rng.integers(0, cols, rows * per_row, dtype=np.int32)
    data = rng.random(rows * per_row, dtype=np.float32)
    indptr = np.arange(0, rows * per_row + 1, per_row, dtype=np.int64)
    X = sparse.csr_matrix((data, indices, indptr), shape=(rows, cols))
    y = (np.asarray(X[:, :50].sum(axis=1)).ravel() > 0).astype(np.int64)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    net = fastgd.Network([cols, 16, 2], dtype="float32", seed=0)
    history = net.fit(X, y, epochs=1, batch_size=500, optimizer=fastgd.SGD(lr=0.05), seed=0, verbose=0)
    accuracy = net.evaluate(X[:20_000], y[:20_000])["accuracy"]
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(before // 1024, after // 1024, history.history["loss"][0], accuracy)
    """
)


@pytest.mark.skipif(fastgd.build_info()["sanitizers"], reason="AddressSanitizer's shadow memory and quarantine inflate RSS")
def test_a_200000_by_100000_csr_trains_in_the_memory_its_nonzeros_take():
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr
    before_mib, after_mib, loss, accuracy = result.stdout.split()
    before_mib, after_mib = int(before_mib), int(after_mib)
    # X itself (≈ 240 MB) is in `before`. Training adds the network (100,000 × 16 floats, 6 MB
    # each for W, its gradient and the packing buffers) and batch buffers sized by the most
    # nonzeros a batch holds (50,000 here); measured: 133 MiB. A dense copy of X would be 80 GB.
    assert after_mib - before_mib < 256, f"peak RSS grew from {before_mib} MiB to {after_mib} MiB"
    assert float(loss) > 0 and float(accuracy) > 0.5
