"""Model files: round trips, readability without fastgd, every kind of damaged file, atomic writes."""

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastgd
from fastgd import ModelFormatError

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu"]
OUTPUT_LOSS = [(o, "mse") for o in HIDDEN + ["softmax"]] + [("softmax", "cross_entropy"), ("sigmoid", "cross_entropy")]


def trained_network(dtype="float32", sizes=(6, 5, 4, 3), **kwargs):
    kwargs = {"activation": "tanh", "output_activation": "softmax", "loss": "cross_entropy", **kwargs}
    net = fastgd.Network(list(sizes), dtype=dtype, seed=0, **kwargs)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((40, sizes[0]))
    y = rng.integers(0, sizes[-1], 40) if kwargs["output_activation"] == "softmax" else rng.uniform(0, 1, (40, sizes[-1]))
    net.fit(X, y, epochs=2, batch_size=8, optimizer=fastgd.SGD(lr=0.05), validation_data=(X, y), verbose=0)
    return net


def read_parts(path):
    raw = path.read_bytes()
    (size,) = struct.unpack("<Q", raw[:8])
    return json.loads(raw[8:8 + size]), raw[8 + size:]


def write_parts(path, header, data):
    encoded = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + data)


def rewrite_description(header, change):
    description = json.loads(header["__metadata__"]["fastgd"])
    change(description)
    header["__metadata__"]["fastgd"] = json.dumps(description)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("output", "loss"), OUTPUT_LOSS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_round_trip_every_activation_loss_and_dtype(tmp_path, hidden, output, loss, dtype):
    net = fastgd.Network([5, 4, 3], activation=hidden, output_activation=output, loss=loss, dtype=dtype, seed=1)
    for _, b in net.params:
        b[...] = np.linspace(-1, 1, b.size)
    path = tmp_path / "model.fgd"
    net.save(path)
    loaded = fastgd.load(path)
    assert loaded.layers == net.layers and loaded.loss == net.loss and loaded.dtype == net.dtype
    for (W, b), (W2, b2) in zip(net.params, loaded.params):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    X = np.random.default_rng(0).standard_normal((7, 5))
    np.testing.assert_array_equal(loaded.predict(X), net.predict(X))


def test_metadata_records_version_date_and_training(tmp_path):
    net = trained_network()
    net.save(tmp_path / "m.fgd", metadata={"dataset": "synthetic"})
    metadata = fastgd.load(tmp_path / "m.fgd").metadata
    assert metadata["fastgd_version"] == fastgd.__version__
    assert metadata["saved_at"].endswith("+00:00")
    assert metadata["dataset"] == "synthetic"
    training = metadata["training"]
    assert training["epochs"] == 2 and training["batch_size"] == 8
    assert set(training["last_epoch"]) == {"loss", "val_loss", "val_accuracy"}
    assert training["optimizer"].startswith("SGD(lr=0.05")


def test_file_is_readable_without_fastgd(tmp_path):
    safetensors = pytest.importorskip("safetensors.numpy")
    net = trained_network(dtype="float64")
    net.save(tmp_path / "m.fgd")
    tensors = safetensors.load_file(str(tmp_path / "m.fgd"))
    assert sorted(tensors) == ["layers.0.W", "layers.0.b", "layers.1.W", "layers.1.b", "layers.2.W", "layers.2.b"]
    for index, (W, b) in enumerate(net.params):
        np.testing.assert_array_equal(tensors[f"layers.{index}.W"], W)
        np.testing.assert_array_equal(tensors[f"layers.{index}.b"], b)
    header, _ = read_parts(tmp_path / "m.fgd")
    description = json.loads(header["__metadata__"]["fastgd"])
    assert [layer["activation"] for layer in description["layers"]] == ["tanh", "tanh", "softmax"]


def test_save_replaces_an_existing_file_and_leaves_no_temporaries(tmp_path):
    path = tmp_path / "m.fgd"
    trained_network(sizes=(3, 2)).save(path)
    bigger = trained_network(sizes=(6, 5, 4, 3))
    bigger.save(path)
    assert os.listdir(tmp_path) == ["m.fgd"]
    assert fastgd.load(path).sizes == [6, 5, 4, 3]


def test_failed_write_removes_the_temporary_and_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "m.fgd"
    old = trained_network(sizes=(3, 2))
    old.save(path)

    def disk_full(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fastgd.io.os, "fsync", disk_full)
    with pytest.raises(OSError, match="No space left"):
        trained_network().save(path)
    assert os.listdir(tmp_path) == ["m.fgd"]
    np.testing.assert_array_equal(fastgd.load(path).params[0][0], old.params[0][0])


@pytest.mark.parametrize("crash_at", ["write", "fsync", "replace"])
def test_a_save_killed_midway_leaves_the_old_model_intact(tmp_path, crash_at):
    path = tmp_path / "m.fgd"
    old = trained_network(sizes=(3, 2))
    old.save(path)
    # The child starts saving a 16 MB model over the old one and is killed with SIGKILL at one
    # point of the write: after the first megabytes, before the fsync, or before the rename.
    child = textwrap.dedent(
        f"""
        import os, signal, sys
        import fastgd, fastgd.io

        def die(*args, **kwargs):
            os.kill(os.getpid(), signal.SIGKILL)

        net = fastgd.Network([2000, 1000, 10], dtype="float64", seed=0)
        crash_at = {crash_at!r}
        if crash_at == "write":
            real_little_endian, calls = fastgd.io._little_endian, []
            def counting(array):
                calls.append(1)
                if len(calls) > 5:  # the checksum reads 4 arrays, then the write begins
                    die()
                return real_little_endian(array)
            fastgd.io._little_endian = counting
        else:
            setattr(fastgd.io.os, crash_at, die)
        net.save({str(path)!r})
        """
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=120)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    loaded = fastgd.load(path)
    assert loaded.sizes == [3, 2]
    np.testing.assert_array_equal(loaded.params[0][0], old.params[0][0])


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "m.fgd"
    trained_network(dtype="float32", sizes=(6, 5, 3)).save(path)
    return path


def damage_header(path, change):
    header, data = read_parts(path)
    change(header)
    write_parts(path, header, data)


MALFORMED = {
    "empty file": (lambda p: p.write_bytes(b""), r"not a fastgd-model file \(only 0 bytes\)"),
    "random bytes": (lambda p: p.write_bytes(os.urandom(4096)), r"not a fastgd-model file"),
    "header length beyond the file": (
        lambda p: p.write_bytes(struct.pack("<Q", 10**12) + b"{}"),
        r"header length 1000000000000 exceeds the 2 bytes that follow",
    ),
    "header not JSON": (lambda p: p.write_bytes(struct.pack("<Q", 4) + b"\xff{{{"), r"header is not JSON"),
    "safetensors file that is not a fastgd model": (
        lambda p: damage_header(p, lambda h: h["__metadata__"].update(format="other")),
        r"no 'fastgd-model' format mark",
    ),
    "newer format version": (
        lambda p: damage_header(p, lambda h: h["__metadata__"].update(format_version="7")),
        r"format version 7 by a newer fastgd; .* reads up to version 1: upgrade fastgd",
    ),
    "no checksum": (lambda p: damage_header(p, lambda h: h["__metadata__"].pop("sha256")), r"no valid sha256"),
    "unknown dtype in the architecture": (
        lambda p: damage_header(p, lambda h: rewrite_description(h, lambda d: d.update(dtype="float16"))),
        r"unknown dtype 'float16'",
    ),
    "unknown tensor dtype": (
        lambda p: damage_header(p, lambda h: h["layers.0.W"].update(dtype="F16")),
        r"layers.0.W has dtype 'F16', expected F32",
    ),
    "unknown activation": (
        lambda p: damage_header(p, lambda h: rewrite_description(h, lambda d: d["layers"][0].update(activation="gelu"))),
        r"layer 0 has unknown activation 'gelu'",
    ),
    "layers that do not chain": (
        lambda p: damage_header(p, lambda h: rewrite_description(h, lambda d: d["layers"][1].update(n_in=7))),
        r"layers do not chain: layer 0 gives 5 outputs, layer 1 takes 7",
    ),
    "shape that disagrees with the layers": (
        lambda p: damage_header(p, lambda h: h["layers.1.W"].update(shape=[5, 4])),
        r"layers.1.W has shape \[5, 4\], but the layers say \[5, 3\]",
    ),
    "offsets that overlap": (
        lambda p: damage_header(p, lambda h: h["layers.0.b"].update(data_offsets=[0, 20])),
        r"layers.0.b has data offsets \[0, 20\], expected \[120, 140\]",
    ),
    "missing tensor": (lambda p: damage_header(p, lambda h: h.pop("layers.1.b")), r"missing \['layers.1.b'\]"),
    "gigantic declared sizes": (
        lambda p: damage_header(
            p,
            lambda h: (
                rewrite_description(h, lambda d: d["layers"][0].update(n_in=2**31)),
                h["layers.0.W"].update(shape=[2**31, 5], data_offsets=[0, 2**31 * 20]),
            ),
        ),
        r"layers.0.b has data offsets",
    ),
    "gigantic layer beyond the limit": (
        lambda p: damage_header(p, lambda h: rewrite_description(h, lambda d: d["layers"][0].update(n_in=2**40))),
        r"layer 0 has n_in = 1099511627776; expected a positive integer up to 2147483648",
    ),
    "zero-sized layer": (
        lambda p: damage_header(p, lambda h: rewrite_description(h, lambda d: d["layers"][0].update(n_out=0))),
        r"layer 0 has n_out = 0",
    ),
    "truncated data": (lambda p: p.write_bytes(p.read_bytes()[:-7]), r"truncated: the header declares 212 bytes of weights, the file holds 205"),
    "trailing bytes": (lambda p: p.write_bytes(p.read_bytes() + b"\0" * 8), r"has trailing bytes"),
    "a flipped bit in the weights": (
        lambda p: p.write_bytes(p.read_bytes()[:-40] + bytes([p.read_bytes()[-40] ^ 1]) + p.read_bytes()[-39:]),
        r"checksum mismatch: the weights are damaged",
    ),
}


@pytest.mark.parametrize("damage", MALFORMED, ids=list(MALFORMED))
def test_malformed_files_raise_model_format_error(saved, damage):
    make, message = MALFORMED[damage]
    make(saved)
    with pytest.raises(ModelFormatError, match=message):
        fastgd.load(saved)


def test_weights_that_are_nan_are_rejected_even_with_a_matching_checksum(tmp_path):
    net = trained_network(sizes=(3, 2))
    net.params[0][0][0, 0] = np.nan
    net.save(tmp_path / "m.fgd")
    with pytest.raises(ModelFormatError, match="contain NaN or Inf"):
        fastgd.load(tmp_path / "m.fgd")


def test_loading_never_unpickles(saved, monkeypatch):
    import pickle

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while loading a model")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    assert fastgd.load(saved).sizes == [6, 5, 3]


def test_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        fastgd.load(tmp_path / "absent.fgd")


def test_bytes_round_trip_in_the_file_format(tmp_path):
    net = trained_network(dtype="float64")
    data = fastgd.io.to_bytes(net, metadata={"dataset": "synthetic"})
    for source in (data, bytearray(data), memoryview(data)):
        loaded = fastgd.io.from_bytes(source)
        assert loaded.layers == net.layers and loaded.loss == net.loss and loaded.dtype == net.dtype
        for (W, b), (W2, b2) in zip(net.params, loaded.params):
            np.testing.assert_array_equal(W, W2)
            np.testing.assert_array_equal(b, b2)
    assert loaded.metadata["dataset"] == "synthetic" and loaded.metadata["training"]["epochs"] == 2
    (tmp_path / "from_bytes.fgd").write_bytes(data)
    np.testing.assert_array_equal(fastgd.load(tmp_path / "from_bytes.fgd").params[0][0], net.params[0][0])
    net.save(tmp_path / "saved.fgd")
    np.testing.assert_array_equal(fastgd.io.from_bytes((tmp_path / "saved.fgd").read_bytes()).params[0][0], net.params[0][0])


def test_bytes_are_readable_without_fastgd():
    safetensors = pytest.importorskip("safetensors.numpy")
    net = trained_network(dtype="float32")
    tensors = safetensors.load(fastgd.io.to_bytes(net))
    np.testing.assert_array_equal(tensors["layers.2.W"], net.params[2][0])


@pytest.mark.parametrize("damage", MALFORMED, ids=list(MALFORMED))
def test_malformed_bytes_raise_model_format_error(saved, damage):
    make, message = MALFORMED[damage]
    make(saved)
    with pytest.raises(ModelFormatError, match="^<bytes>: .*" + message):
        fastgd.io.from_bytes(saved.read_bytes())


def test_from_bytes_takes_only_bytes_and_never_unpickles(saved, monkeypatch):
    import pickle

    def forbidden(*args, **kwargs):
        raise AssertionError("pickle used while reading a model")

    monkeypatch.setattr(pickle, "loads", forbidden)
    monkeypatch.setattr(pickle, "load", forbidden)
    assert fastgd.io.from_bytes(saved.read_bytes()).sizes == [6, 5, 3]
    for wrong in (str(saved), saved, saved.read_bytes().decode("latin-1")):
        with pytest.raises(TypeError, match="data must be bytes, bytearray or memoryview"):
            fastgd.io.from_bytes(wrong)


def test_docstring_examples_run():
    import doctest

    result = doctest.testmod(fastgd.io)
    assert result.attempted >= 5 and result.failed == 0
