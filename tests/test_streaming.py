"""fit and evaluate on memory-mapped arrays, streamed in parts; the progress bar and verbosity."""

import fcntl
import os
import pty
import select
import struct
import subprocess
import sys
import termios
import textwrap

import numpy as np
import pytest

import fastgd
import fastgd.network


def problem(n=1000, n_in=12, n_out=4, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in)).astype(np.float32)
    y = (X[:, :n_out].argmax(axis=1) + (rng.random(n) < 0.1)) % n_out
    return X, y


def mapped(tmp_path, X, name="X.npy"):
    np.save(tmp_path / name, X)
    return np.load(tmp_path / name, mmap_mode="r")


@pytest.fixture
def small_parts(monkeypatch):
    # parts of about 96 rows of 12 features (whole batches when training)
    monkeypatch.setattr(fastgd._training, "STREAM_CHUNK_BYTES", 12 * 12 * 4 * 8)


def fitted(X, y, shuffle, dropout=0.0, dtype="float32", **kwargs):
    net = fastgd.Network([12, 16, 4], activation="tanh", dropout=dropout, dtype=dtype, seed=3)
    history = net.fit(
        X, y, epochs=3, batch_size=10, optimizer=fastgd.Adam(lr=1e-2), shuffle=shuffle, seed=5, verbose=0, **kwargs
    )
    return net, history


@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_streamed_unshuffled_fit_equals_the_in_memory_fit(tmp_path, small_parts, dropout, dtype):
    X, y = problem()
    in_memory, history = fitted(X, y, shuffle=False, dropout=dropout, dtype=dtype)
    streamed, streamed_history = fitted(mapped(tmp_path, X), y, shuffle=False, dropout=dropout, dtype=dtype)
    # the epoch's loss is summed part by part: equal up to the order of the additions
    np.testing.assert_allclose(streamed_history.history["loss"], history.history["loss"], rtol=1e-13)
    for (W, b), (W2, b2) in zip(in_memory.params, streamed.params):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)


def test_streamed_shuffled_fit_visits_every_sample_and_is_reproducible(tmp_path, small_parts):
    X, y = problem()
    X_mapped = mapped(tmp_path, X)
    first, history = fitted(X_mapped, y, shuffle=True, validation_split=0.2)
    again, _ = fitted(X_mapped, y, shuffle=True, validation_split=0.2)
    np.testing.assert_array_equal(first.params[0][0], again.params[0][0])
    assert history.history["val_accuracy"][-1] > 0.6
    # each epoch's loss is the mean over all 800 training samples: with lr tiny, the weights
    # stand still and every epoch must report the same mean whatever the order
    net = fastgd.Network([12, 16, 4], seed=0)
    losses = net.fit(X_mapped[:800], y[:800], epochs=3, batch_size=10, optimizer=fastgd.SGD(lr=1e-300), seed=1, verbose=0).history["loss"]
    expected = net.evaluate(X[:800], y[:800])["loss"]
    np.testing.assert_allclose(losses, expected, rtol=1e-5)


def test_evaluate_on_a_memory_map_equals_evaluate_in_memory(tmp_path, small_parts):
    X, y = problem()
    net, _ = fitted(X, y, shuffle=True)
    streamed = net.evaluate(mapped(tmp_path, X), y)
    in_memory = net.evaluate(X, y)
    assert streamed["accuracy"] == in_memory["accuracy"]
    assert streamed["loss"] == pytest.approx(in_memory["loss"], rel=1e-6)
    _, history = fitted(X[:800], y[:800], shuffle=True, validation_data=(mapped(tmp_path, X[800:], "val.npy"), y[800:]))
    _, reference_history = fitted(X[:800], y[:800], shuffle=True, validation_data=(X[800:], y[800:]))
    assert history.history["val_accuracy"] == reference_history.history["val_accuracy"]


def test_nan_in_a_streamed_part_names_the_row_and_leaves_the_epoch_start_weights(tmp_path, small_parts):
    X, y = problem()
    X[937, 5] = np.nan
    net = fastgd.Network([12, 16, 4], seed=0)
    net.fit(X[:900], y[:900], epochs=1, batch_size=10, verbose=0)
    before = [array.copy() for pair in net.params for array in pair]
    with pytest.raises(ValueError, match=r"X contains NaN or Inf \(first at row 937, column 5\)"):
        net.fit(mapped(tmp_path, X), y, epochs=1, batch_size=10, shuffle=False, verbose=0)
    for old, new in zip(before, (array for pair in net.params for array in pair)):
        np.testing.assert_array_equal(old, new)


def test_training_on_a_file_larger_than_the_memory_it_uses(tmp_path):
    # 512 MiB of float32 features; training streams it and must stay far below that in memory.
    rows, features = 131072, 1024
    path = tmp_path / "big.npy"
    X = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, features))
    rng = np.random.default_rng(0)
    for start in range(0, rows, 8192):
        X[start:start + 8192] = rng.standard_normal((8192, features), dtype=np.float32)
    X.flush()
    del X
    # Resident memory is sampled by a thread while the epoch runs without the GIL (ru_maxrss
    # would not do: a child inherits its parent's high-water mark across exec).
    child = textwrap.dedent(
        f"""
        import threading, numpy as np, fastgd

        def resident_mib():
            with open("/proc/self/status") as status:
                return next(int(line.split()[1]) // 1024 for line in status if line.startswith("VmRSS:"))

        X = np.load({str(path)!r}, mmap_mode="r")
        y = np.arange(len(X)) % 10
        net = fastgd.Network([{features}, 16, 10], seed=0)
        net.fit(X[:1000], y[:1000], epochs=1, verbose=0)  # warm up: code, buffers, allocator
        baseline, peak, done = resident_mib(), [0], threading.Event()

        def sample():
            while not done.wait(0.005):
                peak[0] = max(peak[0], resident_mib())

        sampler = threading.Thread(target=sample)
        sampler.start()
        history = net.fit(X, y, epochs=1, batch_size=256, verbose=0, validation_split=0.1)
        done.set()
        sampler.join()
        print(baseline, peak[0], history.history["loss"][0], history.history["val_loss"][0])
        """
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    baseline_mb, peak_mb, loss, val_loss = done.stdout.split()
    file_mb = rows * features * 4 // 2**20
    growth = int(peak_mb) - int(baseline_mb)
    print(f"file {file_mb} MiB, peak resident memory grew by {growth} MiB during the epoch")
    assert growth < file_mb / 4
    assert np.isfinite(float(loss)) and np.isfinite(float(val_loss))


FIT_SCRIPT = """
import numpy as np, fastgd
rng = np.random.default_rng(0)
X = rng.standard_normal((20000, 200)).astype(np.float32)
y = rng.integers(0, 10, 20000)
net = fastgd.Network([200, 1024, 10], seed=0)
net.fit(X, y, epochs=2, batch_size=4, verbose={verbose})
"""


def test_progress_bar_shows_on_a_terminal():
    main, secondary = pty.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 100, 0, 0))  # 40 rows, 100 columns
    process = subprocess.Popen(
        [sys.executable, "-c", FIT_SCRIPT.format(verbose=1)], stdout=subprocess.PIPE, stderr=secondary
    )
    os.close(secondary)
    terminal = b""
    while True:
        ready, _, _ = select.select([main], [], [], 120)
        if not ready:
            break
        try:
            data = os.read(main, 4096)
        except OSError:
            break
        if not data:
            break
        terminal += data
    stdout, _ = process.communicate(timeout=120)
    os.close(main)
    assert process.returncode == 0
    text = terminal.decode(errors="replace")
    assert "epoch 1/2" in text and "batch" in text and "samples/s" in text and "loss" in text
    lines = stdout.decode().splitlines()
    assert [line.split(" - ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]


@pytest.mark.parametrize(("verbose", "epoch_lines"), [(0, 0), (1, 2), (2, 2)])
def test_verbosity_without_a_terminal(verbose, epoch_lines):
    script = FIT_SCRIPT.replace("20000", "2000").format(verbose=verbose)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # no progress bar when stderr is not a terminal
    assert len(done.stdout.splitlines()) == epoch_lines
