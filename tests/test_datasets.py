"""Tests for fastgd.datasets: the IDX reader and the MNIST loader."""

import gzip
import hashlib
import os
import re
import struct
from pathlib import Path

import numpy as np
import pytest

from fastgd import datasets

REPO_ROOT = Path(__file__).resolve().parents[1]


def mnist_dir():
    """Folder holding the real MNIST files, overridable by FASTGD_MNIST_DIR."""
    override = os.environ.get("FASTGD_MNIST_DIR")
    if override:
        return Path(override)
    return REPO_ROOT.parent / "shared" / "data" / "mnist"


def idx_bytes(array, type_code=0x08):
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim)
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


def write_bytes(path, data, compress=False):
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def write_idx(path, array, compress=False):
    return write_bytes(path, idx_bytes(array), compress)


def make_mnist_folder(folder, n_train=5, n_test=3, compress=False, seed=0):
    """Write four small, valid MNIST files and return the arrays written."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train_images": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train_labels": rng.integers(0, 10, n_train, dtype=np.uint8),
        "test_images": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "test_labels": rng.integers(0, 10, n_test, dtype=np.uint8),
    }
    arrays["train_images"][0, 0, 0] = 0
    arrays["train_images"][0, 0, 1] = 255
    suffix = ".gz" if compress else ""
    for key, array in arrays.items():
        write_idx(folder / (datasets.MNIST_FILES[key] + suffix), array, compress)
    return arrays


def mnist_path(folder, key, compress=False):
    return folder / (datasets.MNIST_FILES[key] + (".gz" if compress else ""))


def assert_message_starts_with_path(excinfo, path):
    assert str(excinfo.value).startswith(str(path))


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
@pytest.mark.parametrize(
    "shape", [(7,), (4, 28, 28), (2, 3, 5), (2, 1, 3, 2)], ids=str
)
def test_read_idx_round_trip(tmp_path, compress, shape):
    array = np.arange(np.prod(shape), dtype=np.uint64).astype(np.uint8).reshape(shape)
    path = write_idx(tmp_path / "data.idx", array, compress)

    result = datasets.read_idx(path)

    assert result.dtype == np.uint8
    assert result.shape == shape
    np.testing.assert_array_equal(result, array)


@pytest.mark.parametrize(
    ("name", "compress"),
    [("looks-raw-but-gzipped", True), ("looks-gzipped-but-raw.gz", False)],
)
def test_read_idx_detects_gzip_by_content_not_name(tmp_path, name, compress):
    array = np.arange(12, dtype=np.uint8).reshape(3, 4)
    path = write_idx(tmp_path / name, array, compress)

    np.testing.assert_array_equal(datasets.read_idx(path), array)


def test_read_idx_accepts_str_path(tmp_path):
    array = np.arange(6, dtype=np.uint8)
    path = write_idx(tmp_path / "data.idx", array)

    np.testing.assert_array_equal(datasets.read_idx(str(path)), array)


def test_read_idx_accepts_empty_dimension(tmp_path):
    path = write_idx(tmp_path / "empty.idx", np.zeros((0, 28, 28), dtype=np.uint8))

    assert datasets.read_idx(path).shape == (0, 28, 28)


def test_read_idx_missing_file(tmp_path):
    path = tmp_path / "no-such-file"

    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        datasets.read_idx(path)


def test_read_idx_bad_magic(tmp_path):
    path = write_bytes(tmp_path / "bad.idx", b"\x12\x34\x08\x01" + struct.pack(">I", 0))

    with pytest.raises(
        ValueError, match=r"bad magic number 0x12340801: not an IDX file"
    ) as excinfo:
        datasets.read_idx(path)
    assert_message_starts_with_path(excinfo, path)


@pytest.mark.parametrize("type_code", [0x09, 0x0B, 0x0C, 0x0D, 0x0E])
def test_read_idx_unsupported_type(tmp_path, type_code):
    path = write_bytes(tmp_path / "float.idx", idx_bytes(np.zeros(4), type_code))

    with pytest.raises(ValueError, match=rf"data type 0x{type_code:02X}") as excinfo:
        datasets.read_idx(path)
    assert_message_starts_with_path(excinfo, path)


@pytest.mark.parametrize("ndim", [0, 5])
def test_read_idx_invalid_ndim(tmp_path, ndim):
    data = bytes([0, 0, 0x08, ndim]) + struct.pack(f">{ndim}I", *([1] * ndim)) + b"\0"
    path = write_bytes(tmp_path / "dims.idx", data)

    with pytest.raises(ValueError, match=rf"number of dimensions {ndim}") as excinfo:
        datasets.read_idx(path)
    assert_message_starts_with_path(excinfo, path)


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00\x00\x08", b"\x00\x00\x08\x03" + struct.pack(">2I", 60000, 28)],
    ids=["empty", "partial-preamble", "partial-dims"],
)
def test_read_idx_shorter_than_header(tmp_path, data):
    path = write_bytes(tmp_path / "short.idx", data)

    with pytest.raises(ValueError, match="file too short") as excinfo:
        datasets.read_idx(path)
    assert_message_starts_with_path(excinfo, path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_read_idx_truncated(tmp_path, compress):
    data = idx_bytes(np.zeros((2, 28, 28)))[:-568]
    path = write_bytes(tmp_path / "truncated.idx", data, compress)

    with pytest.raises(
        ValueError,
        match=r"truncated: header says 2x28x28 = 1568 bytes of data, found 1000",
    ) as excinfo:
        datasets.read_idx(path)
    assert_message_starts_with_path(excinfo, path)


def test_read_idx_trailing_bytes(tmp_path):
    data = idx_bytes(np.zeros(10)) + b"\x00\x01\x02"
    path = write_bytes(tmp_path / "trailing.idx", data)

    with pytest.raises(
        ValueError, match=r"trailing bytes: header says 10 = 10 bytes of data, found 13"
    ) as excinfo:
        datasets.read_idx(path)
    assert_message_starts_with_path(excinfo, path)


def _cut_stream(stream):
    return stream[: len(stream) // 2]


def _break_crc(stream):
    return stream[:-8] + bytes(byte ^ 0xFF for byte in stream[-8:-4]) + stream[-4:]


def _break_method(stream):
    return stream[:2] + b"\x07" + stream[3:]


def _break_deflate_block(stream):
    return stream[:10] + b"\xff\xff\xff" + stream[13:]


@pytest.mark.parametrize(
    "corrupt",
    [_cut_stream, _break_crc, _break_method, _break_deflate_block],
    ids=["cut-stream", "bad-crc", "bad-method", "bad-deflate-block"],
)
def test_read_idx_corrupt_gzip(tmp_path, corrupt):
    stream = gzip.compress(idx_bytes(np.arange(200, dtype=np.uint8)))
    path = write_bytes(tmp_path / "corrupt.idx.gz", corrupt(stream))

    with pytest.raises(ValueError, match="corrupt gzip") as excinfo:
        datasets.read_idx(path)
    assert_message_starts_with_path(excinfo, path)


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gzip"])
def test_load_mnist_output_layout(tmp_path, compress):
    arrays = make_mnist_folder(tmp_path, n_train=5, n_test=3, compress=compress)

    (X_train, y_train), (X_test, y_test) = datasets.load_mnist(tmp_path)

    for X, y, split in [(X_train, y_train, "train"), (X_test, y_test, "test")]:
        n = len(arrays[f"{split}_labels"])
        assert X.dtype == np.float32
        assert X.shape == (n, 784)
        assert X.flags.c_contiguous
        assert X.min() >= 0.0
        assert X.max() <= 1.0
        expected = arrays[f"{split}_images"].reshape(n, 784) / np.float32(255)
        np.testing.assert_allclose(X, expected, rtol=0, atol=1e-7)
        assert y.dtype == np.int64
        assert y.shape == (n,)
        np.testing.assert_array_equal(y, arrays[f"{split}_labels"])
    assert X_train[0, 0] == 0.0
    assert X_train[0, 1] == 1.0


def test_load_mnist_accepts_str_path(tmp_path):
    make_mnist_folder(tmp_path)

    (X_train, _), _ = datasets.load_mnist(str(tmp_path))

    assert X_train.shape == (5, 784)


def test_load_mnist_accepts_dotted_and_mixed_names(tmp_path):
    arrays = make_mnist_folder(tmp_path, compress=False)
    for key in ["train_images", "test_labels"]:
        canonical = mnist_path(tmp_path, key)
        stem, _, suffix = canonical.name.rpartition("-")
        canonical.rename(tmp_path / f"{stem}.{suffix}")
    train_labels = mnist_path(tmp_path, "train_labels")
    write_idx(tmp_path / f"{train_labels.name}.gz", arrays["train_labels"], True)
    train_labels.unlink()

    (X_train, y_train), (_, y_test) = datasets.load_mnist(tmp_path)

    assert X_train.shape == (5, 784)
    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    np.testing.assert_array_equal(y_test, arrays["test_labels"])


def test_load_mnist_uses_fastgd_data_env_var(tmp_path, monkeypatch):
    make_mnist_folder(tmp_path / "mnist", n_train=4, n_test=2)
    monkeypatch.setenv("FASTGD_DATA", str(tmp_path))

    (X_train, _), (X_test, _) = datasets.load_mnist()

    assert X_train.shape == (4, 784)
    assert X_test.shape == (2, 784)


def test_load_mnist_explicit_path_overrides_env_var(tmp_path, monkeypatch):
    make_mnist_folder(tmp_path / "explicit", n_train=6)
    monkeypatch.setenv("FASTGD_DATA", str(tmp_path / "elsewhere"))

    (X_train, _), _ = datasets.load_mnist(tmp_path / "explicit")

    assert X_train.shape == (6, 784)


def test_load_mnist_defaults_to_home_cache(tmp_path, monkeypatch):
    monkeypatch.delenv("FASTGD_DATA", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    expected_folder = tmp_path / ".cache" / "fastgd" / "mnist"

    with pytest.raises(FileNotFoundError, match=re.escape(str(expected_folder))):
        datasets.load_mnist()

    make_mnist_folder(expected_folder, n_train=2)
    (X_train, _), _ = datasets.load_mnist()
    assert X_train.shape == (2, 784)


def test_load_mnist_missing_folder(tmp_path, monkeypatch):
    folder = tmp_path / "nowhere"
    monkeypatch.setenv("FASTGD_DATA", str(folder))

    with pytest.raises(FileNotFoundError) as excinfo:
        datasets.load_mnist()

    message = str(excinfo.value)
    assert str(folder / "mnist") in message
    assert "FASTGD_DATA" in message
    for name in datasets.MNIST_FILES.values():
        assert name in message


@pytest.mark.parametrize("key", list(datasets.MNIST_FILES))
def test_load_mnist_missing_file(tmp_path, key):
    make_mnist_folder(tmp_path)
    mnist_path(tmp_path, key).unlink()

    with pytest.raises(FileNotFoundError) as excinfo:
        datasets.load_mnist(tmp_path)

    message = str(excinfo.value)
    assert datasets.MNIST_FILES[key] in message
    assert str(tmp_path) in message


def test_load_mnist_wrong_image_size(tmp_path):
    make_mnist_folder(tmp_path)
    images_path = mnist_path(tmp_path, "train_images")
    write_idx(images_path, np.zeros((5, 27, 28), dtype=np.uint8))

    with pytest.raises(ValueError, match="expected 28x28 images, got 27x28") as excinfo:
        datasets.load_mnist(tmp_path)
    assert_message_starts_with_path(excinfo, images_path)


def test_load_mnist_images_not_3d(tmp_path):
    make_mnist_folder(tmp_path)
    images_path = mnist_path(tmp_path, "test_images")
    write_idx(images_path, np.zeros(3 * 784, dtype=np.uint8))

    with pytest.raises(
        ValueError, match=r"expected 3-D image data.*got 1-D"
    ) as excinfo:
        datasets.load_mnist(tmp_path)
    assert_message_starts_with_path(excinfo, images_path)


def test_load_mnist_labels_not_1d(tmp_path):
    make_mnist_folder(tmp_path)
    labels_path = mnist_path(tmp_path, "train_labels")
    write_idx(labels_path, np.zeros((5, 1), dtype=np.uint8))

    with pytest.raises(
        ValueError, match=r"expected 1-D label data.*got 2-D"
    ) as excinfo:
        datasets.load_mnist(tmp_path)
    assert_message_starts_with_path(excinfo, labels_path)


@pytest.mark.parametrize("split", ["train", "test"])
def test_load_mnist_count_mismatch(tmp_path, split):
    arrays = make_mnist_folder(tmp_path, n_train=5, n_test=3)
    labels_key = f"{split}_labels"
    n_images = len(arrays[f"{split}_images"])
    write_idx(mnist_path(tmp_path, labels_key), arrays[labels_key][:-1])

    with pytest.raises(
        ValueError, match=rf"{split}: {n_images} images but {n_images - 1} labels"
    ) as excinfo:
        datasets.load_mnist(tmp_path)
    assert str(mnist_path(tmp_path, labels_key)) in str(excinfo.value)


def test_load_mnist_label_out_of_range(tmp_path):
    arrays = make_mnist_folder(tmp_path)
    labels = arrays["test_labels"].copy()
    labels[1] = 11
    labels[2] = 200
    labels_path = write_idx(mnist_path(tmp_path, "test_labels"), labels)

    with pytest.raises(
        ValueError, match=r"label 11 at index 1 is out of range 0\.\.9"
    ) as excinfo:
        datasets.load_mnist(tmp_path)
    assert_message_starts_with_path(excinfo, labels_path)


def test_load_mnist_reports_corrupt_file_path(tmp_path):
    make_mnist_folder(tmp_path, compress=True)
    images_path = mnist_path(tmp_path, "train_images", compress=True)
    images_path.write_bytes(_cut_stream(images_path.read_bytes()))

    with pytest.raises(ValueError, match="corrupt gzip") as excinfo:
        datasets.load_mnist(tmp_path)
    assert_message_starts_with_path(excinfo, images_path)


def _sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _read_checksums(sums_path):
    checksums = {}
    with open(sums_path, encoding="ascii") as file:
        for line in file:
            if line.strip():
                expected_hash, name = line.split(maxsplit=1)
                checksums[name.strip().lstrip("*")] = expected_hash.lower()
    return checksums


def _missing_mnist_reason(folder):
    if not folder.is_dir():
        return "folder does not exist"
    if not (folder / "SHA256SUMS").is_file():
        return "no SHA256SUMS file"
    present = {entry.name for entry in folder.iterdir()}
    for name in datasets.MNIST_FILES.values():
        if not {name, f"{name}.gz"} & present:
            return f"{name}[.gz] is missing"
    return None


def test_real_mnist():
    folder = mnist_dir()
    reason = _missing_mnist_reason(folder)
    if reason is not None:
        pytest.skip(f"MNIST files not found at {folder}: {reason}")

    checksums = _read_checksums(folder / "SHA256SUMS")
    assert checksums, "SHA256SUMS lists no files"
    for name, expected_hash in checksums.items():
        assert _sha256(folder / name) == expected_hash, f"checksum mismatch: {name}"

    (X_train, y_train), (X_test, y_test) = datasets.load_mnist(folder)

    assert X_train.shape == (60000, 784)
    assert X_test.shape == (10000, 784)
    assert y_train.shape == (60000,)
    assert y_test.shape == (10000,)
    for X, y in [(X_train, y_train), (X_test, y_test)]:
        assert X.dtype == np.float32
        assert X.flags.c_contiguous
        assert X.min() == 0.0
        assert X.max() == 1.0
        assert y.dtype == np.int64
        np.testing.assert_array_equal(np.unique(y), np.arange(10))
    assert y_train[0] == 5
    assert y_test[0] == 7
