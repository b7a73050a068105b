"""Model files: save and load a Network, to a path or to bytes in memory, never executing
anything read from the file.

The layout is safetensors' (https://huggingface.co/docs/safetensors), so any safetensors reader
can open a fastgd model without fastgd:

- 8 bytes: N, the header's length, unsigned little-endian;
- N bytes: a JSON header (UTF-8, padded with spaces to a multiple of 8);
- the data: each tensor's bytes, little-endian, C order, in the order of the layers.

The header maps ``layers.{i}.W`` (shape ``[n_in, n_out]``) and ``layers.{i}.b`` (``[n_out]``) to
``{"dtype": "F32" | "F64", "shape": [...], "data_offsets": [begin, end]}``, offsets counted from
the start of the data. Its ``__metadata__`` (strings only) holds ``format`` =
``"fastgd-model"``, ``format_version``, ``sha256`` (of the whole data section) and ``fastgd``,
a JSON document with the architecture (``layers``: ``n_in``, ``n_out``, ``activation``, and
``dropout`` when not 0;
``loss``; ``dtype``) and ``metadata`` (fastgd version, save date, training metrics).
"""

from __future__ import annotations

import datetime
import hashlib
import io
import json
import math
import os
import struct
import sys
import tempfile

import numpy as np

from ._validation import ACTIVATIONS, DTYPES, LOSSES

__all__ = ["ModelFormatError", "save", "load", "to_bytes", "from_bytes", "save_checkpoint", "load_checkpoint", "write_atomically", "FORMAT", "FORMAT_VERSION"]

FORMAT = "fastgd-model"
FORMAT_VERSION = 1
_TENSOR_DTYPES = {"F32": np.dtype("<f4"), "F64": np.dtype("<f8")}
_TENSOR_CODES = {"float32": "F32", "float64": "F64"}
_MAX_HEADER_BYTES = 16 * 2**20
_MAX_LAYER_SIZE = 2**31


class ModelFormatError(ValueError):
    """A model file is damaged, truncated, not a fastgd model, or from a newer fastgd."""


def save(network, path, metadata=None):
    """Write `network` to `path` atomically: a crash mid-write leaves any old file intact.

    Parameters
    ----------
    network : fastgd.Network
    path : str or os.PathLike
    metadata : dict, optional
        Extra JSON-serializable entries stored under ``metadata``, beside the fastgd version,
        the save date and ``network.metadata`` (the training record ``fit`` keeps).
    """
    _write_tensor_file(path, FORMAT, _model_document(network, metadata), _model_tensors(network))


def to_bytes(network, metadata=None):
    """The model file `save` would write for `network`, as bytes in memory.

    Parameters
    ----------
    network : fastgd.Network
    metadata : dict, optional
        As for `save`.

    Returns
    -------
    bytes
        A complete model file: `from_bytes` reads it back, and so does `load` once written
        to disk.

    Examples
    --------
    >>> import fastgd
    >>> net = fastgd.Network([4, 3, 2], seed=0)
    >>> data = fastgd.io.to_bytes(net)
    >>> fastgd.io.from_bytes(data).sizes
    [4, 3, 2]
    """
    buffer = io.BytesIO()
    _write_tensors(buffer, FORMAT, _model_document(network, metadata), _model_tensors(network))
    return buffer.getvalue()


def _model_tensors(network):
    tensors = {}
    for index, (W, b) in enumerate(network.params):
        tensors[f"layers.{index}.W"], tensors[f"layers.{index}.b"] = W, b
    return tensors


def _model_document(network, metadata):
    return {
        **architecture(network),
        "metadata": _finite_json(
            {
                "fastgd_version": _version(),
                "saved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                **getattr(network, "metadata", {}),
                **(metadata or {}),
            }
        ),
    }


def architecture(network):
    """The JSON description of a network's layers, loss and dtype, as model files store it."""
    return {
        "layers": [
            {"n_in": l.n_in, "n_out": l.n_out, "activation": l.activation, **({"dropout": l.dropout} if l.dropout else {})}
            for l in network.layers
        ],
        "loss": network.loss,
        "dtype": network.dtype.name,
    }


def _write_tensor_file(path, kind, document, tensors):
    """Write `tensors` (name -> float32/float64 array, in order) and the JSON `document` atomically."""
    write_atomically(path, lambda f: _write_tensors(f, kind, document, tensors))


def _write_tensors(f, kind, document, tensors):
    """Write the file's bytes to the binary file object `f`: length, header, then the arrays."""
    header, offset = {}, 0
    digest = hashlib.sha256()
    for name, array in tensors.items():
        header[name] = {"dtype": _TENSOR_CODES[array.dtype.name], "shape": list(array.shape), "data_offsets": [offset, offset + array.nbytes]}
        offset += array.nbytes
        digest.update(_little_endian(array).data)
    header["__metadata__"] = {
        "format": kind,
        "format_version": str(FORMAT_VERSION),
        "sha256": digest.hexdigest(),
        "fastgd": json.dumps(document, allow_nan=False),
    }
    encoded = json.dumps(header, allow_nan=False).encode()
    encoded += b" " * (-len(encoded) % 8)
    f.write(struct.pack("<Q", len(encoded)))
    f.write(encoded)
    for array in tensors.values():
        f.write(_little_endian(array).data)


def write_atomically(path, write):
    """Call ``write(file)`` on a temporary file beside `path`, fsync it, and rename it over `path`.

    Readers see the old file or the new one whole, never a part: a crash or an error midway
    leaves `path` as it was (an error also removes the temporary file).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    handle, temporary = tempfile.mkstemp(dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(temporary, path)
    except BaseException:
        if os.path.exists(temporary):
            os.unlink(temporary)
        raise
    _fsync_folder(folder)


def load(path):
    """Read a model written by `save`.

    Everything the header declares is checked against the file before the weights are read:
    a damaged, truncated or foreign file raises `ModelFormatError` without allocating what it
    claims to hold. The weights are read straight into the new network's own memory and
    verified against the stored SHA-256.

    Returns
    -------
    fastgd.Network
        With ``metadata`` restored from the file.
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        return _read_model(f, path, os.fstat(f.fileno()).st_size)


def from_bytes(data):
    """Read a model from the bytes of a model file (what `to_bytes` gives, or a file's contents).

    The checks of `load` apply: damaged, truncated or foreign bytes raise `ModelFormatError`
    (whose message names the source as ``<bytes>``), and nothing in them is ever executed.

    Parameters
    ----------
    data : bytes, bytearray or memoryview

    Returns
    -------
    fastgd.Network
        With ``metadata`` restored from the bytes.

    Examples
    --------
    >>> import fastgd
    >>> net = fastgd.Network([4, 3, 2], seed=0)
    >>> copy = fastgd.io.from_bytes(fastgd.io.to_bytes(net))
    >>> bool((copy.params[0][0] == net.params[0][0]).all())
    True
    """
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise TypeError(f"data must be bytes, bytearray or memoryview, got {type(data).__name__}")
    with io.BytesIO(data) as f:
        return _read_model(f, "<bytes>", memoryview(data).nbytes)


def _read_model(f, path, size):
    """The Network stored in the binary file object `f` of `size` bytes; `path` names it in errors."""
    from .network import Dense, Network

    description, tensors, expected_digest, data_start = _read_header(f, path, size)
    _check_description(path, description)
    layers = description["layers"]
    dtype = DTYPES[description["dtype"]]
    _check_tensors(path, tensors, layers, dtype, size - data_start)
    network = Network._uninitialized(
        [Dense(l["n_in"], l["n_out"], l["activation"], l.get("dropout", 0.0)) for l in layers],
        description["loss"],
        dtype,
    )
    digest = hashlib.sha256()
    for index, (W, b) in enumerate(network.params):
        for name, array in ((f"layers.{index}.W", W), (f"layers.{index}.b", b)):
            begin, _ = tensors[name]["data_offsets"]
            f.seek(data_start + begin)
            raw = array.reshape(-1).view(np.uint8)
            if f.readinto(raw) != raw.nbytes:
                raise ModelFormatError(f"{path}: truncated while reading {name}")
            digest.update(raw.data)
            if sys.byteorder == "big":
                array.byteswap(inplace=True)
    if digest.hexdigest() != expected_digest:
        raise ModelFormatError(f"{path}: checksum mismatch: the weights are damaged (sha256 differs from the header's)")
    for W, b in network.params:
        if not (np.isfinite(W).all() and np.isfinite(b).all()):
            raise ModelFormatError(f"{path}: the weights contain NaN or Inf")
    metadata = description.get("metadata")
    network.metadata = metadata if isinstance(metadata, dict) else {}
    return network


def _read_header(f, path, file_size, kind=FORMAT):
    prefix = f.read(8)
    if len(prefix) < 8:
        raise ModelFormatError(f"{path}: not a {kind} file (only {len(prefix)} bytes)")
    (header_size,) = struct.unpack("<Q", prefix)
    if header_size > min(_MAX_HEADER_BYTES, file_size - 8):
        raise ModelFormatError(
            f"{path}: not a {kind} file, or truncated: its header length {header_size} "
            f"exceeds the {file_size - 8} bytes that follow"
        )
    try:
        header = json.loads(f.read(header_size).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: not a {kind} file: its header is not JSON ({exc})") from None
    meta = header.get("__metadata__") if isinstance(header, dict) else None
    if not isinstance(meta, dict) or meta.get("format") != kind:
        raise ModelFormatError(f"{path}: not a {kind} file (no '{kind}' format mark in its header)")
    try:
        version = int(meta.get("format_version", ""))
    except ValueError:
        raise ModelFormatError(f"{path}: unreadable format version {meta.get('format_version')!r}") from None
    if version > FORMAT_VERSION:
        raise ModelFormatError(
            f"{path}: written in format version {version} by a newer fastgd; this fastgd ({_version()}) "
            f"reads up to version {FORMAT_VERSION}: upgrade fastgd"
        )
    digest = meta.get("sha256")
    if not isinstance(digest, str) or len(digest) != 64:
        raise ModelFormatError(f"{path}: the header has no valid sha256 checksum")
    try:
        description = json.loads(meta.get("fastgd", ""))
    except (TypeError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"{path}: the architecture in the header is not JSON ({exc})") from None
    tensors = {name: value for name, value in header.items() if name != "__metadata__"}
    return description, tensors, digest, 8 + header_size


CHECKPOINT_FORMAT = "fastgd-checkpoint"


def save_checkpoint(path, document, tensors):
    """Write a training checkpoint (a JSON `document` and named arrays), atomically."""
    _write_tensor_file(path, CHECKPOINT_FORMAT, _finite_json(document), tensors)


def load_checkpoint(path):
    """Read a checkpoint: (document, {name: array}), every size checked against the file first."""
    path = os.fspath(path)
    with open(path, "rb") as f:
        file_size = os.fstat(f.fileno()).st_size
        document, tensors, expected_digest, data_start = _read_header(f, path, file_size, CHECKPOINT_FORMAT)
        if not isinstance(document, dict):
            raise ModelFormatError(f"{path}: the checkpoint's description is not a JSON object")
        _check_description(path, document.get("architecture"))
        position, layout = 0, []
        for name, entry in tensors.items():
            if not isinstance(entry, dict) or entry.get("dtype") not in _TENSOR_DTYPES:
                raise ModelFormatError(f"{path}: {name} has no known dtype")
            shape = entry.get("shape")
            if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0 for d in shape):
                raise ModelFormatError(f"{path}: {name} has an invalid shape {shape!r}")
            size = math.prod(shape) * _TENSOR_DTYPES[entry["dtype"]].itemsize
            if entry.get("data_offsets") != [position, position + size]:
                raise ModelFormatError(f"{path}: {name} has data offsets {entry.get('data_offsets')}, expected {[position, position + size]}")
            layout.append((name, _TENSOR_DTYPES[entry["dtype"]], shape))
            position += size
        if position != file_size - data_start:
            state = "truncated" if position > file_size - data_start else "has trailing bytes"
            raise ModelFormatError(f"{path}: {state}: the header declares {position} bytes of arrays, the file holds {file_size - data_start}")
        f.seek(data_start)
        digest, arrays = hashlib.sha256(), {}
        for name, dtype, shape in layout:
            array = np.empty(shape, dtype=dtype)
            raw = array.reshape(-1).view(np.uint8)
            if f.readinto(raw) != raw.nbytes:
                raise ModelFormatError(f"{path}: truncated while reading {name}")
            digest.update(raw.data)
            arrays[name] = array.astype(dtype.newbyteorder("="), copy=False)
    if digest.hexdigest() != expected_digest:
        raise ModelFormatError(f"{path}: checksum mismatch: the checkpoint is damaged")
    return document, arrays


def _check_description(path, description):
    def fail(problem):
        raise ModelFormatError(f"{path}: {problem}")

    if not isinstance(description, dict):
        fail("the architecture in the header is not a JSON object")
    if description.get("dtype") not in DTYPES:
        fail(f"unknown dtype {description.get('dtype')!r}; expected float32 or float64")
    if description.get("loss") not in LOSSES:
        fail(f"unknown loss {description.get('loss')!r}")
    layers = description.get("layers")
    if not isinstance(layers, list) or not layers:
        fail("the header lists no layers")
    for index, layer in enumerate(layers):
        if not isinstance(layer, dict):
            fail(f"layer {index} is not a JSON object")
        for key in ("n_in", "n_out"):
            size = layer.get(key)
            if not isinstance(size, int) or isinstance(size, bool) or not 0 < size <= _MAX_LAYER_SIZE:
                fail(f"layer {index} has {key} = {size!r}; expected a positive integer up to {_MAX_LAYER_SIZE}")
        if layer.get("activation") not in ACTIVATIONS:
            fail(f"layer {index} has unknown activation {layer.get('activation')!r}")
        dropout = layer.get("dropout", 0.0)
        hidden = index + 1 < len(layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not (0 <= dropout < 1 if hidden else dropout == 0):
            fail(f"layer {index} has dropout {dropout!r}; expected a rate in [0, 1), and 0 on the output layer")
        if index and layer["n_in"] != layers[index - 1]["n_out"]:
            fail(f"layers do not chain: layer {index - 1} gives {layers[index - 1]['n_out']} outputs, layer {index} takes {layer['n_in']}")


def _check_tensors(path, tensors, layers, dtype, data_size):
    expected = {}
    for index, layer in enumerate(layers):
        expected[f"layers.{index}.W"] = [layer["n_in"], layer["n_out"]]
        expected[f"layers.{index}.b"] = [layer["n_out"]]
    if set(tensors) != set(expected):
        missing, extra = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
        raise ModelFormatError(f"{path}: tensors do not match the layers (missing {missing}, unexpected {extra})")
    code = _TENSOR_CODES[dtype.name]
    position = 0
    for name, shape in expected.items():
        entry = tensors[name]
        if not isinstance(entry, dict) or entry.get("dtype") != code:
            raise ModelFormatError(f"{path}: {name} has dtype {entry.get('dtype') if isinstance(entry, dict) else entry!r}, expected {code}")
        if entry.get("shape") != shape:
            raise ModelFormatError(f"{path}: {name} has shape {entry.get('shape')}, but the layers say {shape}")
        offsets = entry.get("data_offsets")
        size = math.prod(shape) * dtype.itemsize
        if offsets != [position, position + size]:
            raise ModelFormatError(f"{path}: {name} has data offsets {offsets}, expected {[position, position + size]}")
        position += size
    if position != data_size:
        state = "truncated" if position > data_size else "has trailing bytes"
        raise ModelFormatError(f"{path}: {state}: the header declares {position} bytes of weights, the file holds {data_size}")


def _little_endian(array):
    return np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<"))


def _finite_json(value):
    """`value` with non-finite floats replaced by None, so that it is strict JSON."""
    if isinstance(value, dict):
        return {str(k): _finite_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_json(v) for v in value]
    if isinstance(value, (float, np.floating)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def _version():
    from . import __version__

    return __version__


def _fsync_folder(folder):
    # The rename lasts only once the folder's entry is on disk.
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)
