"""Readers for the IDX file format and the MNIST handwritten-digit data set."""

import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

__all__ = ["load_mnist", "read_idx"]

MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

MNIST_IMAGE_SHAPE = (28, 28)
MNIST_NUM_CLASSES = 10

_GZIP_MAGIC = b"\x1f\x8b"
_IDX_UBYTE = 0x08
_IDX_PREAMBLE_SIZE = 4
_IDX_MAX_NDIM = 4


def read_idx(path):
    """Read one IDX file (the format MNIST is distributed in).

    The file may be raw or gzip-compressed; compression is detected from
    the gzip magic bytes at the start of the file, not from its name.

    Parameters
    ----------
    path : str or os.PathLike
        The IDX file to read.

    Returns
    -------
    numpy.ndarray
        A read-only ``uint8`` array whose shape is the dimensions stored in
        the file header. It is a view of the file contents, not a copy.

    Raises
    ------
    FileNotFoundError
        If `path` does not exist.
    ValueError
        If the file is not a well-formed unsigned-byte IDX file: the gzip
        stream is corrupt, the header is short or has a bad magic number,
        the data type is not unsigned byte (0x08), the number of dimensions
        is not 1 to 4, or the amount of data does not match the dimensions.
        The message starts with `path`.
    """
    path = os.fspath(path)
    with open(path, "rb") as file:
        contents = file.read()

    if contents[: len(_GZIP_MAGIC)] == _GZIP_MAGIC:
        try:
            contents = gzip.decompress(contents)
        except (gzip.BadGzipFile, EOFError, zlib.error) as error:
            raise ValueError(f"{path}: corrupt gzip data: {error}") from error

    if len(contents) < _IDX_PREAMBLE_SIZE:
        raise ValueError(
            f"{path}: file too short: {len(contents)} bytes, "
            f"an IDX header needs at least {_IDX_PREAMBLE_SIZE}"
        )
    (magic,) = struct.unpack(">I", contents[:_IDX_PREAMBLE_SIZE])
    if contents[:2] != b"\x00\x00":
        raise ValueError(f"{path}: bad magic number 0x{magic:08x}: not an IDX file")
    type_code, ndim = contents[2], contents[3]
    if type_code != _IDX_UBYTE:
        raise ValueError(
            f"{path}: unsupported IDX data type 0x{type_code:02X} "
            f"(only 0x{_IDX_UBYTE:02X}, unsigned byte, is supported)"
        )
    if not 1 <= ndim <= _IDX_MAX_NDIM:
        raise ValueError(
            f"{path}: invalid number of dimensions {ndim} "
            f"(expected 1 to {_IDX_MAX_NDIM})"
        )

    header_size = _IDX_PREAMBLE_SIZE + 4 * ndim
    if len(contents) < header_size:
        raise ValueError(
            f"{path}: file too short: {len(contents)} bytes, but a {ndim}-D IDX "
            f"header needs {header_size}"
        )
    dims = struct.unpack(f">{ndim}I", contents[_IDX_PREAMBLE_SIZE:header_size])

    expected_size = 1
    for dim in dims:
        expected_size *= dim
    found_size = len(contents) - header_size
    if found_size != expected_size:
        problem = "truncated" if found_size < expected_size else "trailing bytes"
        shape_text = "x".join(str(dim) for dim in dims)
        raise ValueError(
            f"{path}: {problem}: header says {shape_text} = {expected_size} "
            f"bytes of data, found {found_size}"
        )

    return np.frombuffer(contents, dtype=np.uint8, offset=header_size).reshape(dims)


def load_mnist(path=None):
    """Load the MNIST training and test sets from a folder of IDX files.

    Parameters
    ----------
    path : str or os.PathLike, optional
        Folder holding the four MNIST files. Defaults to
        ``$FASTGD_DATA/mnist`` when the environment variable ``FASTGD_DATA``
        is set, and to ``~/.cache/fastgd/mnist`` otherwise. Each file
        (see `MNIST_FILES`) may be raw or gzipped, with or without a
        ``.gz`` suffix, and may use a dot instead of the last dash of its
        name (``train-images.idx3-ubyte``).

    Returns
    -------
    (X_train, y_train), (X_test, y_test) : tuple of tuples of numpy.ndarray
        ``X_*`` are C-contiguous ``float32`` arrays of shape ``(n, 784)``
        with pixel values scaled to [0, 1]; ``y_*`` are ``int64`` arrays of
        shape ``(n,)`` with digit labels 0 to 9.

    Raises
    ------
    FileNotFoundError
        If the folder or one of the four files does not exist.
    ValueError
        If a file is not a valid IDX file (see `read_idx`), the images are
        not 3-D 28x28 arrays, the labels are not 1-D, a split has different
        numbers of images and labels, or a label is outside 0 to 9. The
        message names the offending file.
    """
    folder, source = _resolve_mnist_folder(path)
    if not folder.is_dir():
        expected_names = ", ".join(MNIST_FILES.values())
        raise FileNotFoundError(
            f"MNIST folder not found: {folder} (looked there because {source}); "
            f"it should contain the four files {expected_names} "
            f"(each optionally ending in .gz)"
        )
    train = _load_split(
        folder, "train", MNIST_FILES["train_images"], MNIST_FILES["train_labels"]
    )
    test = _load_split(
        folder, "test", MNIST_FILES["test_images"], MNIST_FILES["test_labels"]
    )
    return train, test


def _resolve_mnist_folder(path):
    if path is not None:
        return Path(path).expanduser(), "it was passed as the path argument"
    data_root = os.environ.get("FASTGD_DATA")
    if data_root:
        return (
            Path(data_root).expanduser() / "mnist",
            f"FASTGD_DATA is set to {data_root!r}",
        )
    return (
        Path.home() / ".cache" / "fastgd" / "mnist",
        "no path was given and FASTGD_DATA is not set",
    )


def _find_mnist_file(folder, canonical_name):
    stem, _, suffix = canonical_name.rpartition("-")
    dotted_name = f"{stem}.{suffix}"
    candidates = [
        canonical_name,
        f"{canonical_name}.gz",
        dotted_name,
        f"{dotted_name}.gz",
    ]
    for candidate in candidates:
        candidate_path = folder / candidate
        if candidate_path.is_file():
            return candidate_path
    raise FileNotFoundError(
        f"MNIST file {canonical_name} not found in {folder} "
        f"(tried {', '.join(candidates)})"
    )


def _load_split(folder, split_name, images_name, labels_name):
    images_path = _find_mnist_file(folder, images_name)
    labels_path = _find_mnist_file(folder, labels_name)
    images = read_idx(images_path)
    labels = read_idx(labels_path)

    if images.ndim != 3:
        raise ValueError(
            f"{images_path}: expected 3-D image data (IDX magic 0x00000803), "
            f"got {images.ndim}-D data (magic 0x0000080{images.ndim})"
        )
    if images.shape[1:] != MNIST_IMAGE_SHAPE:
        expected_text = "x".join(str(size) for size in MNIST_IMAGE_SHAPE)
        raise ValueError(
            f"{images_path}: expected {expected_text} images, "
            f"got {images.shape[1]}x{images.shape[2]}"
        )
    if labels.ndim != 1:
        raise ValueError(
            f"{labels_path}: expected 1-D label data (IDX magic 0x00000801), "
            f"got {labels.ndim}-D data (magic 0x0000080{labels.ndim})"
        )
    if len(images) != len(labels):
        raise ValueError(
            f"{images_path}: {split_name}: {len(images)} images but "
            f"{len(labels)} labels in {labels_path}"
        )
    out_of_range = np.flatnonzero(labels >= MNIST_NUM_CLASSES)
    if out_of_range.size:
        index = int(out_of_range[0])
        raise ValueError(
            f"{labels_path}: label {labels[index]} at index {index} is out of "
            f"range 0..{MNIST_NUM_CLASSES - 1}"
        )

    num_pixels = MNIST_IMAGE_SHAPE[0] * MNIST_IMAGE_SHAPE[1]
    features = images.reshape(len(images), num_pixels).astype(np.float32)
    features /= np.float32(255)
    return features, labels.astype(np.int64)
