"""Tests for fastgd.datasets: the IDX reader, the MNIST loader and downloader, the built-in
data set, the NPZ and CSV loaders, and the preparation tools."""

import functools
import gzip
import hashlib
import http.server
import os
import re
import shutil
import socket
import struct
import threading
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
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
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


# --- Everything below: the downloader, the built-in set, NPZ and CSV, the preparation tools.

MNIST_GZ_NAMES = [f"{name}.gz" for name in datasets.MNIST_FILES.values()]


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """No test may reach the real mirrors: a download a test did not point elsewhere fails."""
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [])
    monkeypatch.setattr(datasets, "DOWNLOAD_TIMEOUT", 5.0)


@pytest.fixture
def home(tmp_path, monkeypatch):
    """A fresh, empty HOME, with FASTGD_DATA and XDG_CACHE_HOME unset."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("FASTGD_DATA", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    return home


class _RecordingHandler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.requested_paths.append(self.path)
        super().do_GET()

    def log_message(self, format, *args):
        pass


@pytest.fixture
def serve_folder(monkeypatch):
    """Start an HTTP server on 127.0.0.1 for a folder: ``server, base_url = serve_folder(f)``."""
    for variable in ["http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"]:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1")
    running = []

    def serve(folder):
        handler = functools.partial(_RecordingHandler, directory=str(folder))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        server.requested_paths = []
        thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
        thread.start()
        running.append((server, thread))
        return server, f"http://127.0.0.1:{server.server_address[1]}/"

    yield serve
    for server, thread in running:
        server.shutdown()
        server.server_close()
        thread.join()


def refused_url():
    """A URL on a local port nothing listens on: connecting is refused, as when offline."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def make_fake_mirror(folder, monkeypatch):
    """Write four small gzipped MNIST files to `folder` and make their hashes the expected ones."""
    arrays = make_mnist_folder(folder, compress=True)
    monkeypatch.setattr(
        datasets, "MNIST_SHA256", {name: _sha256(folder / name) for name in MNIST_GZ_NAMES}
    )
    return arrays


def write_garbage_mirror(folder):
    folder.mkdir()
    for name in MNIST_GZ_NAMES:
        (folder / name).write_bytes(gzip.compress(b"not the MNIST file"))


def real_mnist_gz_folder():
    folder = mnist_dir()
    missing = [name for name in MNIST_GZ_NAMES if not (folder / name).is_file()]
    if missing:
        pytest.skip(f"real MNIST .gz files not found at {folder}: {', '.join(missing)} missing")
    return folder


def folder_listing(folder):
    return sorted(entry.name for entry in folder.iterdir())


def test_public_names_exist():
    for name in datasets.__all__:
        assert hasattr(datasets, name), name
    assert {
        "DatasetError", "load_builtin", "load_csv", "load_mnist", "load_npz", "one_hot",
        "read_idx", "standardize", "train_test_split", "MNIST_MIRRORS",
    } <= set(datasets.__all__)


def test_dataset_error_is_a_value_error_raised_by_the_idx_reader(tmp_path):
    assert issubclass(datasets.DatasetError, ValueError)
    path = write_bytes(tmp_path / "bad.idx", b"\x12\x34\x08\x01" + struct.pack(">I", 0))

    with pytest.raises(datasets.DatasetError, match="not an IDX file"):
        datasets.read_idx(path)


def test_mnist_sha256_constants_match_sha256sums():
    folder = mnist_dir()
    if not (folder / "SHA256SUMS").is_file():
        pytest.skip(f"no SHA256SUMS at {folder}")

    assert _read_checksums(folder / "SHA256SUMS") == datasets.MNIST_SHA256


# --- load_mnist: where it looks


def test_load_mnist_honours_xdg_cache_home(tmp_path, home, monkeypatch):
    make_mnist_folder(home / ".cache" / "fastgd" / "mnist", n_train=2)
    make_mnist_folder(tmp_path / "xdg" / "fastgd" / "mnist", n_train=3)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    (X_train, _), _ = datasets.load_mnist()

    assert X_train.shape == (3, 784)


def test_load_mnist_ignores_relative_xdg_cache_home(home, monkeypatch):
    make_mnist_folder(home / ".cache" / "fastgd" / "mnist", n_train=2)
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/cache")

    (X_train, _), _ = datasets.load_mnist()

    assert X_train.shape == (2, 784)


def test_load_mnist_search_order_path_then_env_then_cache(tmp_path, home, monkeypatch):
    make_mnist_folder(tmp_path / "given", n_train=4)
    make_mnist_folder(tmp_path / "data" / "mnist", n_train=5)
    make_mnist_folder(tmp_path / "xdg" / "fastgd" / "mnist", n_train=6)
    monkeypatch.setenv("FASTGD_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))

    assert datasets.load_mnist(tmp_path / "given")[0][0].shape == (4, 784)
    assert datasets.load_mnist()[0][0].shape == (5, 784)
    monkeypatch.delenv("FASTGD_DATA")
    assert datasets.load_mnist()[0][0].shape == (6, 784)


def test_load_mnist_missing_cache_says_where_and_how_to_download(tmp_path, home, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    folder = tmp_path / "xdg" / "fastgd" / "mnist"

    with pytest.raises(
        FileNotFoundError,
        match=rf"MNIST folder not found: {re.escape(str(folder))} \(looked there because no "
        rf"path was given, FASTGD_DATA is not set and XDG_CACHE_HOME is .*\); .*"
        rf"load_mnist\(download=True\) downloads them there$",
    ):
        datasets.load_mnist()


def test_load_mnist_missing_folder_suggests_download(tmp_path):
    folder = tmp_path / "absent"

    with pytest.raises(
        FileNotFoundError,
        match=rf"MNIST folder not found: {re.escape(str(folder))} \(looked there because it "
        rf"was passed as the path argument\); it should contain the four files "
        rf"train-images-idx3-ubyte, .* \(each optionally ending in \.gz\); "
        rf"load_mnist\(download=True\) downloads them there$",
    ):
        datasets.load_mnist(folder)


def test_load_mnist_missing_file_suggests_download(tmp_path):
    make_mnist_folder(tmp_path)
    mnist_path(tmp_path, "train_labels").unlink()

    with pytest.raises(
        FileNotFoundError,
        match=rf"MNIST file train-labels-idx1-ubyte not found in {re.escape(str(tmp_path))} "
        rf"\(tried .*\); load_mnist\(download=True\) downloads the missing files there$",
    ):
        datasets.load_mnist(tmp_path)


# --- load_mnist(download=True), against a server on 127.0.0.1


def test_download_real_files_verified_by_hash(tmp_path, home, monkeypatch, serve_folder):
    source = real_mnist_gz_folder()
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name in MNIST_GZ_NAMES:
        shutil.copyfile(source / name, mirror / name)
    server, url = serve_folder(mirror)
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [url])
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    cache = tmp_path / "cache" / "fastgd" / "mnist"

    (X_train, y_train), (X_test, y_test) = datasets.load_mnist(download=True)

    assert sorted(server.requested_paths) == sorted(f"/{name}" for name in MNIST_GZ_NAMES)
    assert folder_listing(cache) == sorted(MNIST_GZ_NAMES)
    for name in MNIST_GZ_NAMES:
        assert _sha256(cache / name) == datasets.MNIST_SHA256[name]
    assert X_train.shape == (60000, 784)
    assert X_test.shape == (10000, 784)
    assert X_train.dtype == np.float32
    assert y_train.dtype == np.int64
    assert y_train[0] == 5
    assert y_test[0] == 7


def test_download_fetches_only_the_missing_files(tmp_path, monkeypatch, serve_folder):
    arrays = make_fake_mirror(tmp_path / "mirror", monkeypatch)
    server, url = serve_folder(tmp_path / "mirror")
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [url])
    target = tmp_path / "target"
    make_mnist_folder(target)
    mnist_path(target, "test_labels").unlink()

    _, (_, y_test) = datasets.load_mnist(target, download=True)

    assert server.requested_paths == ["/t10k-labels-idx1-ubyte.gz"]
    assert (target / "t10k-labels-idx1-ubyte.gz").is_file()
    np.testing.assert_array_equal(y_test, arrays["test_labels"])


def test_download_needs_no_network_when_the_files_are_there(tmp_path, monkeypatch):
    make_mnist_folder(tmp_path, n_train=7)
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [refused_url()])

    (X_train, _), _ = datasets.load_mnist(tmp_path, download=True)

    assert X_train.shape == (7, 784)


@pytest.mark.parametrize("where", ["path", "FASTGD_DATA", "XDG_CACHE_HOME", "HOME"])
def test_download_goes_to_the_folder_searched(tmp_path, home, monkeypatch, serve_folder, where):
    arrays = make_fake_mirror(tmp_path / "mirror", monkeypatch)
    _, url = serve_folder(tmp_path / "mirror")
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [url])
    path = None
    if where == "path":
        path = expected = tmp_path / "given" / "nested"
    elif where == "FASTGD_DATA":
        monkeypatch.setenv("FASTGD_DATA", str(tmp_path / "data"))
        expected = tmp_path / "data" / "mnist"
    elif where == "XDG_CACHE_HOME":
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
        expected = tmp_path / "xdg" / "fastgd" / "mnist"
    else:
        expected = home / ".cache" / "fastgd" / "mnist"

    (_, y_train), _ = datasets.load_mnist(path, download=True)

    assert folder_listing(expected) == sorted(MNIST_GZ_NAMES)
    np.testing.assert_array_equal(y_train, arrays["train_labels"])


def test_download_checksum_mismatch_deletes_the_file(tmp_path, serve_folder, monkeypatch):
    write_garbage_mirror(tmp_path / "mirror")
    _, url = serve_folder(tmp_path / "mirror")
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [url])
    target = tmp_path / "target"
    expected_hash = datasets.MNIST_SHA256["train-images-idx3-ubyte.gz"]

    with pytest.raises(
        datasets.DatasetError,
        match=rf"^could not download MNIST file train-images-idx3-ubyte\.gz: "
        rf"{re.escape(url)}train-images-idx3-ubyte\.gz: SHA-256 mismatch: got [0-9a-f]{{64}}, "
        rf"expected {expected_hash}; the download was deleted\. If this machine is offline, "
        rf"fetch the four files \(.*\) elsewhere and put them in {re.escape(str(target))}$",
    ):
        datasets.load_mnist(target, download=True)
    assert folder_listing(target) == []


def test_download_falls_back_to_the_next_mirror(tmp_path, serve_folder, monkeypatch):
    arrays = make_fake_mirror(tmp_path / "good", monkeypatch)
    write_garbage_mirror(tmp_path / "bad")
    _, bad_url = serve_folder(tmp_path / "bad")
    good_server, good_url = serve_folder(tmp_path / "good")
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [refused_url(), bad_url, good_url])
    target = tmp_path / "target"

    (_, y_train), _ = datasets.load_mnist(target, download=True)

    np.testing.assert_array_equal(y_train, arrays["train_labels"])
    assert len(good_server.requested_paths) == 4
    assert folder_listing(target) == sorted(MNIST_GZ_NAMES)


def test_download_http_404(tmp_path, serve_folder, monkeypatch):
    (tmp_path / "empty").mkdir()
    _, url = serve_folder(tmp_path / "empty")
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [url])
    target = tmp_path / "target"

    with pytest.raises(
        datasets.DatasetError,
        match=rf"^could not download MNIST file train-images-idx3-ubyte\.gz: "
        rf"{re.escape(url)}train-images-idx3-ubyte\.gz: HTTP error 404 ",
    ) as excinfo:
        datasets.load_mnist(target, download=True)
    assert str(target) in str(excinfo.value)
    assert folder_listing(target) == []


def test_download_offline_names_url_reason_and_folder(tmp_path, monkeypatch):
    url = refused_url()
    monkeypatch.setattr(datasets, "MNIST_MIRRORS", [url])
    target = tmp_path / "target"

    with pytest.raises(
        datasets.DatasetError,
        match=rf"^could not download MNIST file train-images-idx3-ubyte\.gz: "
        rf"{re.escape(url)}train-images-idx3-ubyte\.gz: .*Connection refused\. "
        rf"If this machine is offline, fetch the four files \(.*\) elsewhere and put them "
        rf"in {re.escape(str(target))}$",
    ) as excinfo:
        datasets.load_mnist(target, download=True)
    message = str(excinfo.value)
    assert "\n" not in message
    for name in MNIST_GZ_NAMES:
        assert name in message
    assert folder_listing(target) == []


def test_download_timeout(tmp_path, monkeypatch):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(1)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/"
        monkeypatch.setattr(datasets, "MNIST_MIRRORS", [url])
        monkeypatch.setattr(datasets, "DOWNLOAD_TIMEOUT", 0.2)

        with pytest.raises(
            datasets.DatasetError, match=rf"{re.escape(url)}train-images-idx3-ubyte\.gz: .*timed out"
        ):
            datasets.load_mnist(tmp_path / "target", download=True)


def test_download_without_mirrors(tmp_path):
    with pytest.raises(
        datasets.DatasetError,
        match=r"could not download MNIST file train-images-idx3-ubyte\.gz: "
        r"MNIST_MIRRORS lists no mirror\.",
    ):
        datasets.load_mnist(tmp_path, download=True)


# --- load_builtin


def test_load_builtin_shapes_dtypes_and_split():
    (X_train, y_train), (X_test, y_test) = datasets.load_builtin()

    assert X_train.shape == (8000, 784)
    assert y_train.shape == (8000,)
    assert X_test.shape == (2000, 784)
    assert y_test.shape == (2000,)
    for X, y in [(X_train, y_train), (X_test, y_test)]:
        assert X.dtype == np.float32
        assert X.flags.c_contiguous
        assert X.min() == 0.0
        assert X.max() == 1.0
        assert y.dtype == np.int64
        np.testing.assert_array_equal(np.unique(y), np.arange(10))


def test_load_builtin_is_the_mnist_test_set():
    folder = real_mnist_gz_folder()
    images = datasets.read_idx(folder / "t10k-images-idx3-ubyte.gz")
    labels = datasets.read_idx(folder / "t10k-labels-idx1-ubyte.gz")

    (X_train, y_train), (X_test, y_test) = datasets.load_builtin()

    expected = images.reshape(10000, 784).astype(np.float32) / np.float32(255)
    np.testing.assert_array_equal(X_train, expected[:8000])
    np.testing.assert_array_equal(X_test, expected[8000:])
    np.testing.assert_array_equal(y_train, labels[:8000])
    np.testing.assert_array_equal(y_test, labels[8000:])


def test_builtin_data_ships_inside_the_package_folder():
    data_folder = Path(datasets.__file__).parent / "data"
    names = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]

    for name in names:
        assert _sha256(data_folder / name) == datasets.MNIST_SHA256[name]
    assert not [name for name in folder_listing(data_folder) if name.startswith("train")]


def _copy_builtin(folder, names=("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")):
    source = Path(datasets.__file__).parent / "data"
    folder.mkdir(exist_ok=True)
    for name in names:
        shutil.copyfile(source / name, folder / name)


def test_load_builtin_damaged_file(tmp_path, monkeypatch):
    _copy_builtin(tmp_path)
    images_path = tmp_path / "t10k-images-idx3-ubyte.gz"
    data = bytearray(images_path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    images_path.write_bytes(bytes(data))
    monkeypatch.setattr(datasets, "_BUILTIN_DIR", tmp_path)
    expected_hash = datasets.MNIST_SHA256["t10k-images-idx3-ubyte.gz"]

    with pytest.raises(
        datasets.DatasetError,
        match=rf"t10k-images-idx3-ubyte\.gz: file of the built-in data set is damaged: its "
        rf"SHA-256 is [0-9a-f]{{64}}, expected {expected_hash}; reinstall fastgd$",
    ) as excinfo:
        datasets.load_builtin()
    assert_message_starts_with_path(excinfo, images_path)


def test_load_builtin_missing_file(tmp_path, monkeypatch):
    _copy_builtin(tmp_path, names=["t10k-images-idx3-ubyte.gz"])
    monkeypatch.setattr(datasets, "_BUILTIN_DIR", tmp_path)
    labels_path = tmp_path / "t10k-labels-idx1-ubyte.gz"

    with pytest.raises(
        FileNotFoundError,
        match=r"t10k-labels-idx1-ubyte\.gz: file of the built-in data set is missing: the "
        r"fastgd installation is incomplete; reinstall fastgd$",
    ) as excinfo:
        datasets.load_builtin()
    assert_message_starts_with_path(excinfo, labels_path)


# --- load_npz


@pytest.mark.parametrize("save", [np.savez, np.savez_compressed], ids=["savez", "compressed"])
def test_load_npz_round_trip(tmp_path, save):
    X = np.arange(12, dtype=np.float32).reshape(4, 3)
    y = np.array([0, 1, 1, 0])
    path = tmp_path / "data.npz"
    save(path, X=X, y=y)

    X_loaded, y_loaded = datasets.load_npz(path)

    assert X_loaded.dtype == np.float32
    np.testing.assert_array_equal(X_loaded, X)
    np.testing.assert_array_equal(y_loaded, y)


def test_load_npz_custom_keys_and_no_labels(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, features=np.ones((2, 2)), targets=np.array([1.5, 2.5]))

    X, y = datasets.load_npz(str(path), x_key="features", y_key="targets")
    X_only, nothing = datasets.load_npz(path, x_key="features", y_key=None)

    np.testing.assert_array_equal(y, [1.5, 2.5])
    np.testing.assert_array_equal(X_only, X)
    assert nothing is None


def test_load_npz_missing_file(tmp_path):
    path = tmp_path / "absent.npz"

    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        datasets.load_npz(path)


def test_load_npz_missing_key_lists_the_keys(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, X=np.ones((2, 2)), labels=np.zeros(2))

    with pytest.raises(
        datasets.DatasetError,
        match=r"data\.npz: no array 'y' in the archive; keys present: 'X', 'labels'$",
    ) as excinfo:
        datasets.load_npz(path)
    assert_message_starts_with_path(excinfo, path)


def test_load_npz_object_array_is_refused(tmp_path):
    path = tmp_path / "objects.npz"
    # Writing an object array pickles it; the point is that reading must not unpickle it.
    np.savez(path, X=np.ones((2, 2)), y=np.array([{"a": 1}, None], dtype=object))

    with pytest.raises(
        datasets.DatasetError,
        match=r"objects\.npz: array 'y' is an object array; reading it would need pickle, "
        r"which fastgd never uses$",
    ) as excinfo:
        datasets.load_npz(path)
    assert_message_starts_with_path(excinfo, path)


def test_load_npz_single_npy_array(tmp_path):
    path = tmp_path / "array.npy"
    np.save(path, np.ones(3))

    with pytest.raises(datasets.DatasetError, match=r"array\.npy: a single NumPy array \(\.npy\)"):
        datasets.load_npz(path)


@pytest.mark.parametrize("contents", [b"", b"X,y\n1,2\n"], ids=["empty", "text"])
def test_load_npz_not_an_archive(tmp_path, contents):
    path = write_bytes(tmp_path / "data.npz", contents)

    with pytest.raises(
        datasets.DatasetError, match=r"data\.npz: not an \.npz archive \(no zip signature"
    ) as excinfo:
        datasets.load_npz(path)
    assert_message_starts_with_path(excinfo, path)


def test_load_npz_damaged_archive(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, X=np.ones((2, 2)), y=np.zeros(2))
    path.write_bytes(path.read_bytes()[:40])

    with pytest.raises(datasets.DatasetError, match=r"data\.npz: damaged \.npz archive: "):
        datasets.load_npz(path)


def test_load_npz_row_count_mismatch(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, X=np.ones((3, 2)), y=np.zeros(2))

    with pytest.raises(datasets.DatasetError, match=r"data\.npz: 'X' has 3 rows but 'y' has 2$"):
        datasets.load_npz(path)


def test_load_npz_scalar(tmp_path):
    path = tmp_path / "data.npz"
    np.savez(path, X=np.float64(1.0), y=np.zeros(2))

    with pytest.raises(datasets.DatasetError, match=r"data\.npz: array 'X' is a scalar"):
        datasets.load_npz(path)


# --- load_csv


def write_csv(tmp_path, text, name="data.csv"):
    return write_bytes(tmp_path / name, text.encode("utf-8"))


def test_load_csv_header_inferred_label_last(tmp_path):
    path = write_csv(tmp_path, "a,b,label\n1,2,0\n3,4.5,1\n")

    X, y = datasets.load_csv(path)

    assert X.dtype == np.float64
    assert X.flags.c_contiguous
    np.testing.assert_array_equal(X, [[1, 2], [3, 4.5]])
    assert y.dtype == np.int64
    np.testing.assert_array_equal(y, [0, 1])


@pytest.mark.parametrize("label", ["b", 1, -2, np.int64(1)], ids=repr)
def test_load_csv_label_by_name_or_index(tmp_path, label):
    path = write_csv(tmp_path, "a,b,c\n1,2,3\n4,5,6\n")

    X, y = datasets.load_csv(path, label=label)

    np.testing.assert_array_equal(X, [[1, 3], [4, 6]])
    np.testing.assert_array_equal(y, [2, 5])


def test_load_csv_no_label_column(tmp_path):
    path = write_csv(tmp_path, "1,2,3\n4,5,6\n")

    X, y = datasets.load_csv(str(path), label=None)

    np.testing.assert_array_equal(X, [[1, 2, 3], [4, 5, 6]])
    assert y is None


@pytest.mark.parametrize(
    ("labels", "dtype"),
    [(["0", "2"], np.int64), (["1.0", "-3.0"], np.int64), (["0.5", "1"], np.float64),
     (["1e300", "0"], np.float64), (["nan", "1"], np.float64)],
    ids=["ints", "integral-floats", "fraction", "huge", "nan"],
)
def test_load_csv_label_type(tmp_path, labels, dtype):
    path = write_csv(tmp_path, "".join(f"1,{label}\n" for label in labels))

    _, y = datasets.load_csv(path)

    assert y.dtype == dtype
    np.testing.assert_array_equal(y, np.array(labels, dtype=np.float64).astype(dtype))


def test_load_csv_no_header_when_the_first_row_is_numbers(tmp_path):
    path = write_csv(tmp_path, "1,2,0\n3,4,1\n")

    X, _ = datasets.load_csv(path)

    assert X.shape == (2, 2)


def test_load_csv_header_true_takes_a_numeric_first_row_as_names(tmp_path):
    path = write_csv(tmp_path, "10,20,30\n4,5,6\n7,8,9\n")

    X, y = datasets.load_csv(path, label="20", header=True)

    np.testing.assert_array_equal(X, [[4, 6], [7, 9]])
    np.testing.assert_array_equal(y, [5, 8])


def test_load_csv_quotes_bom_spaces_blank_lines_and_delimiter(tmp_path):
    path = write_csv(tmp_path, '\ufeff"x"; "y"\n\n 1 ;"2"\n   \n3;4\n\n')

    X, y = datasets.load_csv(path, label="y", delimiter=";")

    np.testing.assert_array_equal(X, [[1], [3]])
    np.testing.assert_array_equal(y, [2, 4])


def test_load_csv_header_false_refuses_a_text_first_row(tmp_path):
    path = write_csv(tmp_path, "a,b\n1,2\n")

    with pytest.raises(
        datasets.DatasetError, match=r"data\.csv, line 1: column 1: 'a' is not a number$"
    ) as excinfo:
        datasets.load_csv(path, header=False)
    assert_message_starts_with_path(excinfo, path)


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_load_csv_wrong_column_count(tmp_path, newline):
    path = write_csv(tmp_path, newline.join(["a,b,c", "1,2,3", "", "4,5", ""]))

    with pytest.raises(
        datasets.DatasetError, match=r"data\.csv, line 4: 2 columns, expected 3 as on line 1$"
    ) as excinfo:
        datasets.load_csv(path)
    assert_message_starts_with_path(excinfo, path)


def test_load_csv_wrong_column_count_of_one(tmp_path):
    path = write_csv(tmp_path, "1,2\n3\n")

    with pytest.raises(datasets.DatasetError, match=r"line 2: 1 column, expected 2 as on line 1$"):
        datasets.load_csv(path)


@pytest.mark.parametrize("newline", ["\n", "\r\n"], ids=["LF", "CRLF"])
def test_load_csv_non_numeric_cell_names_line_and_column(tmp_path, newline):
    path = write_csv(tmp_path, newline.join(["a,b,c", "1,2,3", "4,oops,6", ""]))

    with pytest.raises(
        datasets.DatasetError, match=r"data\.csv, line 3: column 2 \('b'\): 'oops' is not a number$"
    ) as excinfo:
        datasets.load_csv(path)
    assert_message_starts_with_path(excinfo, path)


def test_load_csv_non_numeric_cell_without_header(tmp_path):
    path = write_csv(tmp_path, "1,2\n\n3,x\n")

    with pytest.raises(datasets.DatasetError, match=r"data\.csv, line 3: column 2: 'x' is not a number$"):
        datasets.load_csv(path)


def test_load_csv_empty_cell(tmp_path):
    path = write_csv(tmp_path, "1,2\n3, \n")

    with pytest.raises(datasets.DatasetError, match=r"data\.csv, line 2: column 2: empty$"):
        datasets.load_csv(path)


def test_load_csv_line_numbers_count_quoted_newlines(tmp_path):
    path = write_csv(tmp_path, 'a,b\n"1\n",2\n3,x\n')

    with pytest.raises(datasets.DatasetError, match=r"data\.csv, line 4: column 2 \('b'\)"):
        datasets.load_csv(path)


@pytest.mark.parametrize("text", ["", "\n\n  \n"], ids=["empty", "blank-lines"])
def test_load_csv_empty_file(tmp_path, text):
    path = write_csv(tmp_path, text)

    with pytest.raises(datasets.DatasetError, match=r"data\.csv: empty file: no rows to read$") as excinfo:
        datasets.load_csv(path)
    assert_message_starts_with_path(excinfo, path)


def test_load_csv_header_without_data(tmp_path):
    path = write_csv(tmp_path, "\na,b\n")

    with pytest.raises(datasets.DatasetError, match=r"data\.csv: no data rows after the header on line 2$"):
        datasets.load_csv(path)


def test_load_csv_unknown_label_name(tmp_path):
    path = write_csv(tmp_path, "\na,b\n1,2\n")

    with pytest.raises(
        datasets.DatasetError,
        match=r"data\.csv, line 2: no column named 'c' in the header; columns: 'a', 'b'$",
    ) as excinfo:
        datasets.load_csv(path, label="c")
    assert_message_starts_with_path(excinfo, path)


@pytest.mark.parametrize(
    ("header", "why"),
    [("infer", r"its first row is all numbers"), (False, r"header=False")],
)
def test_load_csv_label_name_without_header(tmp_path, header, why):
    path = write_csv(tmp_path, "1,2\n3,4\n")

    with pytest.raises(
        datasets.DatasetError,
        match=rf"data\.csv: label='a' names a column, but the file has no header row \({why}\)$",
    ):
        datasets.load_csv(path, label="a", header=header)


def test_load_csv_duplicate_label_name(tmp_path):
    path = write_csv(tmp_path, "a,a,b\n1,2,3\n")

    with pytest.raises(
        datasets.DatasetError, match=r"data\.csv, line 1: the header names 2 columns 'a'"
    ):
        datasets.load_csv(path, label="a")


@pytest.mark.parametrize("label", [2, -3])
def test_load_csv_label_index_out_of_range(tmp_path, label):
    path = write_csv(tmp_path, "1,2\n3,4\n")

    with pytest.raises(
        datasets.DatasetError, match=rf"data\.csv: label column {label} is out of range for 2 columns$"
    ):
        datasets.load_csv(path, label=label)


def test_load_csv_label_is_the_only_column(tmp_path):
    path = write_csv(tmp_path, "1;0\n2;1\n")

    with pytest.raises(
        datasets.DatasetError,
        match=r"data\.csv: the label column is the only column, which leaves no features "
        r"\(is the delimiter ',' right\?\)$",
    ):
        datasets.load_csv(path)


def test_load_csv_not_utf8(tmp_path):
    path = write_bytes(tmp_path / "data.csv", b"a,b\n1,2\n3,\xff\n")

    with pytest.raises(datasets.DatasetError, match=r"data\.csv, line 3: not UTF-8 text: byte 0xff"):
        datasets.load_csv(path)


def test_load_csv_missing_file(tmp_path):
    path = tmp_path / "absent.csv"

    with pytest.raises(FileNotFoundError, match=re.escape(str(path))):
        datasets.load_csv(path)


@pytest.mark.parametrize(
    ("kwargs", "error", "pattern"),
    [
        ({"header": "yes"}, ValueError, r"header must be 'infer', True or False, got 'yes'"),
        ({"header": 1}, ValueError, r"header must be 'infer', True or False, got 1"),
        ({"label": 1.5}, TypeError, r"label must be a column index, a column name or None, got 1\.5"),
        ({"label": True}, TypeError, r"label must be a column index, a column name or None, got True"),
        ({"delimiter": ",,"}, ValueError, r"delimiter must be a single character, got ',,'"),
        ({"delimiter": ""}, ValueError, r"delimiter must be a single character, got ''"),
    ],
)
def test_load_csv_bad_arguments(tmp_path, kwargs, error, pattern):
    path = write_csv(tmp_path, "1,2\n")

    with pytest.raises(error, match=pattern):
        datasets.load_csv(path, **kwargs)


# --- train_test_split


def test_train_test_split_partitions_and_keeps_pairs():
    X = np.arange(20).reshape(10, 2)
    y = np.arange(10) * 10

    X_train, X_test, y_train, y_test = datasets.train_test_split(X, y, seed=0)

    assert X_train.shape == (8, 2)
    assert X_test.shape == (2, 2)
    assert y_train.shape == (8,)
    assert y_test.shape == (2,)
    np.testing.assert_array_equal(X_train[:, 0] * 5, y_train)
    np.testing.assert_array_equal(X_test[:, 0] * 5, y_test)
    np.testing.assert_array_equal(np.sort(np.concatenate([y_train, y_test])), y)


def test_train_test_split_is_reproducible_and_shuffles():
    X = np.arange(100)

    first = datasets.train_test_split(X, seed=1)
    again = datasets.train_test_split(X, seed=1)
    other = datasets.train_test_split(X, seed=2)

    np.testing.assert_array_equal(first[0], again[0])
    assert not np.array_equal(first[0], other[0])
    assert not np.array_equal(first[0], np.arange(80))


def test_train_test_split_without_shuffle_takes_the_last_samples():
    X = np.arange(10).tolist()

    X_train, X_test, y_train, y_test = datasets.train_test_split(X, X, test_size=3, shuffle=False)

    np.testing.assert_array_equal(X_train, np.arange(7))
    np.testing.assert_array_equal(X_test, [7, 8, 9])
    np.testing.assert_array_equal(y_test, [7, 8, 9])


def test_train_test_split_without_y_returns_two_arrays():
    result = datasets.train_test_split(np.zeros((5, 3)), test_size=1, seed=0)

    assert [part.shape for part in result] == [(4, 3), (1, 3)]


@pytest.mark.parametrize(
    ("test_size", "n_test"), [(0.7, 7), (0.25, 3), (0.2, 2), (1, 1), (9, 9), (np.int64(4), 4)]
)
def test_train_test_split_sizes(test_size, n_test):
    _, X_test = datasets.train_test_split(np.arange(10), test_size=test_size, seed=0)

    assert len(X_test) == n_test


@pytest.mark.parametrize(
    ("test_size", "error", "pattern"),
    [
        (0.0, ValueError, r"test_size=0\.0 must be a fraction strictly between 0 and 1"),
        (1.0, ValueError, r"test_size=1\.0 must be a fraction strictly between 0 and 1"),
        (-0.5, ValueError, r"strictly between 0 and 1"),
        (float("nan"), ValueError, r"test_size=nan must be a fraction"),
        (0, ValueError, r"test_size=0 must leave at least one sample in each part: X has 10 samples"),
        (10, ValueError, r"test_size=10 must leave at least one sample in each part"),
        (True, TypeError, r"test_size must be a fraction or a number of samples, got True"),
        ("0.2", TypeError, r"test_size must be a fraction or a number of samples, got '0\.2'"),
    ],
)
def test_train_test_split_bad_test_size(test_size, error, pattern):
    with pytest.raises(error, match=pattern):
        datasets.train_test_split(np.arange(10), test_size=test_size)


def test_train_test_split_fraction_leaving_an_empty_part():
    with pytest.raises(
        ValueError,
        match=r"test_size=0\.5 of 1 samples leaves 0 for training and 1 for testing; "
        r"both parts need at least one",
    ):
        datasets.train_test_split(np.zeros((1, 2)), test_size=0.5)


def test_train_test_split_length_mismatch():
    with pytest.raises(ValueError, match=r"X has 10 samples but y has 9"):
        datasets.train_test_split(np.zeros((10, 2)), np.zeros(9))


@pytest.mark.parametrize(
    ("X", "y", "pattern"),
    [(3.0, None, r"X must be an array of samples, got a scalar"),
     (np.zeros(4), 1, r"y must be an array of labels, got a scalar")],
)
def test_train_test_split_scalars(X, y, pattern):
    with pytest.raises(ValueError, match=pattern):
        datasets.train_test_split(X, y)


# --- one_hot


def test_one_hot_encodes_rows():
    encoded = datasets.one_hot([2, 0, 1, 2])

    assert encoded.dtype == np.float32
    np.testing.assert_array_equal(encoded, np.eye(3, dtype=np.float32)[[2, 0, 1, 2]])


@pytest.mark.parametrize(
    "labels",
    [np.array([1, 0], dtype=np.uint8), np.array([1.0, 0.0]), [1, 0]],
    ids=["uint8", "integral-floats", "list"],
)
def test_one_hot_accepts_integer_valued_labels(labels):
    encoded = datasets.one_hot(labels, n_classes=4)

    np.testing.assert_array_equal(encoded, [[0, 1, 0, 0], [1, 0, 0, 0]])


def test_one_hot_empty():
    assert datasets.one_hot([], n_classes=3).shape == (0, 3)
    assert datasets.one_hot(np.array([], dtype=np.int64)).shape == (0, 0)


@pytest.mark.parametrize(
    ("labels", "n_classes", "error", "pattern"),
    [
        ([0, 1, -2, -1], None, ValueError, r"^label -2 at index 2 is negative$"),
        ([0, 1.5, 2], None, ValueError, r"^label 1\.5 at index 1 is not an integer$"),
        ([0, np.nan], None, ValueError, r"^label nan at index 1 is not an integer$"),
        ([0, np.inf], None, ValueError, r"^label inf at index 1 is not an integer$"),
        ([0, 3, 1, 7], 3, ValueError, r"^label 3 at index 1 is out of range for n_classes=3 \(0\.\.2\)$"),
        ([0, 5, -1, 0.5], 3, ValueError, r"^label 5\.0 at index 1 is out of range"),
        ([[0, 1]], None, ValueError, r"labels must be 1-D, got shape \(1, 2\)"),
        ([0, 1], 0, ValueError, r"n_classes must be at least 1, got 0"),
        ([True, False], None, TypeError, r"labels must be integers, got an array of dtype bool"),
        (["a", "b"], None, TypeError, r"labels must be integers, got an array of dtype <U1"),
        ([0, 1], 2.0, TypeError, r"n_classes must be an integer, got 2\.0"),
    ],
    ids=["negative", "fraction", "nan", "inf", "too-large", "first-offender", "2-D",
         "zero-classes", "bool", "strings", "float-n-classes"],
)
def test_one_hot_errors(labels, n_classes, error, pattern):
    with pytest.raises(error, match=pattern):
        datasets.one_hot(labels, n_classes)


# --- standardize


def test_standardize_fits_on_train_and_applies_to_others():
    rng = np.random.default_rng(0)
    X_train = rng.normal([10, -3, 0, 5], [1, 2, 3, 4], (50, 4))
    X_val = rng.normal(size=(7, 4))
    X_test = rng.normal(size=(5, 4))
    original = X_train.copy()

    result = datasets.standardize(X_train, X_val, X_test)

    assert isinstance(result, tuple)
    Z_train, Z_val, Z_test = result
    np.testing.assert_allclose(Z_train.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(Z_train.std(axis=0), 1, rtol=1e-12)
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    np.testing.assert_allclose(Z_val, (X_val - mean) / std, rtol=1e-12)
    np.testing.assert_allclose(Z_test, (X_test - mean) / std, rtol=1e-12)
    np.testing.assert_array_equal(X_train, original)


def test_standardize_only_centres_constant_columns():
    X_train = np.array([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0 + 1e-10]])
    X_test = np.array([[2.0, 7.0]])

    Z_train, Z_test = datasets.standardize(X_train, X_test)

    assert np.all(np.isfinite(Z_train))
    np.testing.assert_allclose(Z_train[:, 1], X_train[:, 1] - X_train[:, 1].mean())
    np.testing.assert_allclose(Z_test[0, 1], 7.0 - X_train[:, 1].mean())


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [(np.float32, np.float32), (np.float64, np.float64), (np.int64, np.float64), (np.uint8, np.float64)],
)
def test_standardize_dtypes(dtype, expected):
    (Z,) = datasets.standardize(np.array([[0, 2], [4, 6]], dtype=dtype))

    assert Z.dtype == expected
    np.testing.assert_allclose(Z, [[-1, -1], [1, 1]])


@pytest.mark.parametrize(
    ("arrays", "error", "pattern"),
    [
        ([np.zeros(3)], ValueError, r"X_train must be 2-D \(samples, features\), got shape \(3,\)"),
        ([np.zeros((0, 2))], ValueError, r"X_train has no rows"),
        ([np.array([[1.0, 2], [3, 4], [5, np.nan]])], ValueError,
         r"X_train contains NaN or Inf \(first at row 2, column 1\)"),
        ([np.array([[1.0, np.inf]])], ValueError, r"X_train contains NaN or Inf \(first at row 0, column 1\)"),
        ([np.ones((3, 4)), np.ones((2, 4)), np.ones((2, 3))], ValueError,
         r"others\[1\] has 3 columns, X_train has 4"),
        ([np.ones((3, 4)), np.ones(4)], ValueError, r"others\[0\] must be 2-D"),
        ([np.array([["a"]])], TypeError, r"X_train must be numeric, got an array of dtype <U1"),
    ],
    ids=["1-D", "no-rows", "nan", "inf", "columns", "others-1-D", "strings"],
)
def test_standardize_errors(arrays, error, pattern):
    with pytest.raises(error, match=pattern):
        datasets.standardize(*arrays)


def test_standardize_negative_eps():
    with pytest.raises(ValueError, match=r"eps must be a non-negative number, got -1"):
        datasets.standardize(np.ones((2, 2)), eps=-1)
