"""Exchange networks with other libraries: export to ONNX, import from PyTorch and scikit-learn.

Each function imports its library when called, so fastgd itself needs none of them:

- ``to_onnx`` needs ``onnx`` (``pip install "fastgd[onnx]"``);
- ``from_torch`` needs PyTorch (``pip install torch``);
- ``from_sklearn`` needs scikit-learn (``pip install "fastgd[sklearn]"``).

All of them keep fastgd's layout: samples are rows and a layer computes ``act(X @ W + b)`` with
W of shape (n_in, n_out).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from . import _core
from . import network as _network
from ._validation import check_dtype, check_int
from .io import write_atomically

__all__ = ["from_sklearn", "from_torch", "to_onnx"]

# Softmax of opset 13 and later normalizes along `axis` alone, which is fastgd's row-wise softmax.
MIN_ONNX_OPSET = 13
# A protobuf message, hence an ONNX file without external data, cannot exceed 2 GiB.
_MAX_ONNX_BYTES = 2**31 - 2**20

_ONNX_ACTIVATIONS = {
    "identity": None,
    "sigmoid": ("Sigmoid", {}),
    "tanh": ("Tanh", {}),
    "relu": ("Relu", {}),
    # ONNX attributes are float32: a float64 graph multiplies by float32(0.01), not by 0.01 as
    # fastgd does, a relative difference of 2.2e-8 on negative inputs.
    "leaky_relu": ("LeakyRelu", {"alpha": 0.01}),
    "softmax": ("Softmax", {"axis": 1}),
}

_SKLEARN_ACTIVATIONS = {
    "identity": "identity",
    "logistic": "sigmoid",
    "tanh": "tanh",
    "relu": "relu",
    "softmax": "softmax",
}


def to_onnx(network, path, opset=17):
    """Write `network` to `path` as a standard ONNX model, atomically.

    The graph takes ``input`` of shape (batch, n_in) and gives ``output`` of shape
    (batch, n_out), both float or double as the network's dtype. Each layer is a ``Gemm``
    (B = W, C = b, no transposition) followed by its activation: ``Sigmoid``, ``Tanh``,
    ``Relu``, ``LeakyRelu`` (alpha 0.01), ``Softmax`` (axis 1), or nothing for identity.
    The model's metadata holds ``fastgd_version`` and ``loss``; its producer is ``fastgd``.

    Parameters
    ----------
    network : fastgd.Network
    path : str or os.PathLike
        The file to write. A crash mid-write leaves any old file there intact.
    opset : int, default 17
        ONNX operator set, at least 13 and at most the newest the installed onnx knows.

    Returns
    -------
    onnx.ModelProto
        The model written, already checked by ``onnx.checker.check_model``.

    Notes
    -----
    ONNX stores LeakyRelu's alpha as a float32, so a float64 model's leaky_relu layers use
    float32(0.01) = 0.0099999998 as their slope.
    """
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError:
        raise ImportError('to_onnx needs the onnx package: pip install "fastgd[onnx]"') from None
    _check_network(network)
    newest = onnx.defs.onnx_opset_version()
    opset = check_int(opset, "opset", MIN_ONNX_OPSET)
    if opset > newest:
        raise ValueError(
            f"opset must be at most {newest}, the newest the installed onnx {onnx.__version__} knows, got {opset}"
        )
    n_bytes = sum(W.nbytes + b.nbytes for W, b in network.params)
    if n_bytes > _MAX_ONNX_BYTES:
        raise ValueError(
            f"the network's {n_bytes / 2**30:.1f} GiB of parameters exceed the 2 GiB limit of an ONNX file"
        )

    element = {"float32": TensorProto.FLOAT, "float64": TensorProto.DOUBLE}[network.dtype.name]
    nodes, initializers = [], []
    current = "input"
    last = len(network.layers) - 1
    for index, (layer, (W, b)) in enumerate(zip(network.layers, network.params)):
        activation = _ONNX_ACTIVATIONS[layer.activation]
        z = "output" if index == last and activation is None else f"layers.{index}.z"
        W_name, b_name = f"layers.{index}.W", f"layers.{index}.b"
        initializers += [numpy_helper.from_array(W, W_name), numpy_helper.from_array(b, b_name)]
        # Gemm computes alpha·A·B + beta·C with C broadcast over the rows: X @ W + b.
        nodes.append(helper.make_node("Gemm", [current, W_name, b_name], [z], name=f"layers.{index}.gemm"))
        current = z
        if activation is not None:
            op_type, attributes = activation
            a = "output" if index == last else f"layers.{index}.a"
            nodes.append(helper.make_node(op_type, [z], [a], name=f"layers.{index}.{layer.activation}", **attributes))
            current = a

    sizes = " -> ".join(str(size) for size in network.sizes)
    graph = helper.make_graph(
        nodes,
        "fastgd",
        [helper.make_tensor_value_info("input", element, ["batch", network.n_in])],
        [helper.make_tensor_value_info("output", element, ["batch", network.n_out])],
        initializer=initializers,
        doc_string=f"fastgd dense network {sizes}",
    )
    opset_imports = [helper.make_opsetid("", opset)]
    # The oldest IR version that can hold this opset lets older runtimes load the file.
    model = helper.make_model(
        graph,
        opset_imports=opset_imports,
        ir_version=helper.find_min_ir_version_for(opset_imports),
        producer_name="fastgd",
        producer_version=_core.__version__,
    )
    helper.set_model_props(model, {"fastgd_version": _core.__version__, "loss": network.loss})
    onnx.checker.check_model(model, full_check=True)
    serialized = model.SerializeToString()
    write_atomically(path, lambda f: f.write(serialized))
    return model


def from_torch(source, activation=None, output_activation=None, loss=None, dtype=None):
    """A `fastgd.Network` with the weights of a PyTorch stack of Linear layers.

    Parameters
    ----------
    source : torch.nn.Module or Mapping
        An ``nn.Sequential`` (or a lone ``nn.Linear``) of ``nn.Linear`` layers, each followed by
        at most one of ``nn.Identity``, ``nn.Sigmoid``, ``nn.Tanh``, ``nn.ReLU``,
        ``nn.LeakyReLU(0.01)``, or, last, ``nn.Softmax(dim=1)`` (or ``dim=-1``), then by at
        most one ``nn.Dropout(p)`` on a hidden layer (it becomes ``Dense(..., dropout=p)``); an
        ``nn.Flatten()`` may come first. Or a state_dict: ``"<prefix>.weight"`` (out, in) and
        optional ``"<prefix>.bias"`` (out,) of consecutive Linear layers, in order.
    activation : str, optional
        Hidden layers' activation; only for a state_dict, and required there when it has
        more than one layer.
    output_activation : str, optional
        Output layer's activation; only for a state_dict, and required there.
    loss : {"cross_entropy", "mse"}, optional
        Defaults to cross_entropy after a softmax or sigmoid output, mse otherwise.
    dtype : {"float32", "float64"}, optional
        Defaults to float64 when any weight is float64, float32 otherwise.

    Returns
    -------
    fastgd.Network
        Its ``predict(X)`` equals ``source(torch.from_numpy(X))`` up to rounding.
    """
    try:
        import torch
    except ImportError:
        raise ImportError(
            'from_torch needs PyTorch: pip install torch (see https://pytorch.org)'
        ) from None
    if isinstance(source, torch.nn.Module):
        if activation is not None or output_activation is not None:
            raise ValueError(
                "activation and output_activation are read from the module's layers; "
                "give them only with a state_dict"
            )
        weights, activations, dropouts = _read_torch_module(torch, source)
    elif isinstance(source, Mapping):
        weights = _read_state_dict(torch, source)
        if output_activation is None or (activation is None and len(weights) > 1):
            raise ValueError(
                "a state_dict holds no activations: give activation= (hidden layers) and "
                "output_activation=, e.g. from_torch(state_dict, activation='relu', output_activation='softmax')"
            )
        activations = [activation] * (len(weights) - 1) + [output_activation]
        dropouts = [0.0] * len(weights)
    else:
        raise TypeError(f"source must be a torch.nn.Module or a state_dict (a Mapping), got {type(source).__name__}")

    if dtype is None:
        dtype = "float64" if any(weight.dtype == torch.float64 for weight, _ in weights) else "float32"
    params = []
    for index, (weight, bias) in enumerate(weights):
        W = _to_numpy(torch, weight, f"Linear layer {index}'s weight").T  # torch keeps (out, in)
        b = np.zeros(W.shape[1]) if bias is None else _to_numpy(torch, bias, f"Linear layer {index}'s bias")
        params.append((W, b))
    return _build_network(params, activations, loss, dtype, dropouts)


def from_sklearn(model, dtype="float64"):
    """A `fastgd.Network` with the weights of a fitted scikit-learn MLP.

    Parameters
    ----------
    model : sklearn.neural_network.MLPClassifier or MLPRegressor
        Fitted, with activation identity, logistic, tanh or relu.
    dtype : {"float32", "float64"}, default "float64"

    Returns
    -------
    fastgd.Network
        With cross_entropy loss for a classifier, mse for a regressor. Its ``predict(X)`` is
        ``model.predict_proba(X)`` for a multi-class or multilabel classifier, the column
        ``predict_proba(X)[:, 1]`` (shape (n, 1)) for a binary one, and ``model.predict(X)`` as
        a 2-D array for a regressor.
    """
    try:
        from sklearn.neural_network import MLPClassifier, MLPRegressor
    except ImportError:
        raise ImportError('from_sklearn needs scikit-learn: pip install "fastgd[sklearn]"') from None
    if not isinstance(model, (MLPClassifier, MLPRegressor)):
        raise TypeError(f"model must be an sklearn MLPClassifier or MLPRegressor, got {type(model).__name__}")
    if not hasattr(model, "coefs_"):
        raise ValueError(f"this {type(model).__name__} is not fitted yet; call fit before from_sklearn")
    hidden = _sklearn_activation(model.activation, "activation", ("identity", "logistic", "tanh", "relu"))
    output = _sklearn_activation(model.out_activation_, "out_activation_", ("identity", "logistic", "softmax"))
    params = list(zip(model.coefs_, model.intercepts_))
    activations = [hidden] * (len(params) - 1) + [output]
    loss = "cross_entropy" if isinstance(model, MLPClassifier) else "mse"
    return _build_network(params, activations, loss, dtype)


def _check_network(network):
    if not isinstance(network, _network.BaseNetwork):
        raise TypeError(f"network must be a fastgd.Network, got {type(network).__name__}")


def _read_torch_module(torch, module):
    """[(weight, bias or None), ...], and the activation and dropout rate after each Linear of `module`."""
    nn = torch.nn
    if not isinstance(module, (nn.Sequential, nn.Linear)):
        raise ValueError(
            f"from_torch reads an nn.Sequential of Linear layers and activations, got {type(module).__name__}; "
            "for another module pass its state_dict() with activation= and output_activation="
        )
    modules = list(module) if isinstance(module, nn.Sequential) else [module]
    weights, activations, dropouts = [], [], []
    for index, layer in enumerate(modules):
        if isinstance(layer, nn.Dropout):
            if not weights or dropouts[-1]:
                why = "fastgd drops a layer's outputs: Dropout must follow a Linear layer or its activation, once"
                raise _unsupported(index, layer, why)
            dropouts[-1] = float(layer.p)
            continue
        if isinstance(layer, nn.Linear):
            if weights and layer.in_features != weights[-1][0].shape[0]:
                previous = weights[-1][0].shape[0]
                why = f"it takes {layer.in_features} inputs but the layer before gives {previous}"
                raise _unsupported(index, layer, why)
            weights.append((layer.weight, layer.bias))
            activations.append("identity")
            dropouts.append(0.0)
            continue
        if isinstance(layer, nn.Flatten):
            if index != 0 or (layer.start_dim, layer.end_dim) != (1, -1):
                raise _unsupported(index, layer, "only nn.Flatten() is supported, as the first module")
            continue
        if isinstance(layer, nn.Identity):
            continue
        if isinstance(layer, nn.Sigmoid):
            name = "sigmoid"
        elif isinstance(layer, nn.Tanh):
            name = "tanh"
        elif isinstance(layer, nn.ReLU):
            name = "relu"
        elif isinstance(layer, nn.LeakyReLU):
            if layer.negative_slope != 0.01:
                raise _unsupported(index, layer, "fastgd's leaky_relu has negative slope 0.01")
            name = "leaky_relu"
        elif isinstance(layer, nn.Softmax):
            if layer.dim not in (1, -1):
                raise _unsupported(index, layer, "fastgd's softmax is row-wise: dim must be 1 or -1")
            if index != len(modules) - 1:
                raise _unsupported(index, layer, "softmax must be the last module")
            name = "softmax"
        else:
            why = "expected Linear, Identity, Sigmoid, Tanh, ReLU, LeakyReLU(0.01), Softmax(dim=1), Dropout or a leading Flatten"
            raise _unsupported(index, layer, why)
        if not weights:
            raise _unsupported(index, layer, "an activation needs a Linear layer before it")
        if activations[-1] != "identity":
            raise _unsupported(index, layer, f"the Linear layer before already has the activation {activations[-1]}")
        if dropouts[-1]:
            raise _unsupported(index, layer, "fastgd applies dropout after the activation: put Dropout after it")
        activations[-1] = name
    if not weights:
        raise ValueError("the module holds no nn.Linear layer")
    if dropouts[-1]:
        raise ValueError("fastgd has no dropout on the output layer: drop the last nn.Dropout")
    return weights, activations, dropouts


def _unsupported(index, layer, why):
    return ValueError(f"unsupported module at index {index}: {layer!r} ({why})")


def _read_state_dict(torch, state_dict):
    """[(weight, bias or None), ...] from the "<prefix>.weight" / "<prefix>.bias" entries, in order."""
    layers = {}
    for key, value in state_dict.items():
        prefix, _, kind = key.rpartition(".") if isinstance(key, str) else ("", "", "")
        if kind not in ("weight", "bias"):
            raise ValueError(f"state_dict key {key!r} is not a Linear layer's '<prefix>.weight' or '<prefix>.bias'")
        tensor = value if isinstance(value, torch.Tensor) else torch.as_tensor(np.asarray(value))
        layers.setdefault(prefix, {})[kind] = tensor
    if not layers:
        raise ValueError("the state_dict is empty")
    weights = []
    for prefix, tensors in layers.items():
        if "weight" not in tensors:
            raise ValueError(f"state_dict has {prefix}.bias but no {prefix}.weight")
        weight, bias = tensors["weight"], tensors.get("bias")
        if weight.ndim != 2:
            raise ValueError(
                f"{prefix}.weight has shape {tuple(weight.shape)}; a Linear weight is 2-D (out_features, in_features)"
            )
        if bias is not None and tuple(bias.shape) != (weight.shape[0],):
            raise ValueError(f"{prefix}.bias has shape {tuple(bias.shape)}, expected ({weight.shape[0]},)")
        if weights and weight.shape[1] != weights[-1][0].shape[0]:
            raise ValueError(
                f"{prefix}.weight takes {weight.shape[1]} inputs but the layer before gives {weights[-1][0].shape[0]}; "
                "the state_dict must hold consecutive Linear layers in order"
            )
        weights.append((weight, bias))
    return weights


def _to_numpy(torch, tensor, name):
    if not tensor.is_floating_point():
        raise TypeError(f"{name} has dtype {tensor.dtype}; expected floating-point weights")
    # float64 holds every torch float exactly (bfloat16 has no NumPy twin); Network casts to its dtype.
    return tensor.detach().to("cpu", torch.float64).numpy()


def _sklearn_activation(value, attribute, supported):
    if value not in supported:
        raise ValueError(f"unsupported {attribute} {value!r}; fastgd supports {', '.join(supported)}")
    return _SKLEARN_ACTIVATIONS[value]


def _build_network(params, activations, loss, dtype, dropouts=None):
    """A Network of the given [(W (n_in, n_out), b), ...], activations and dropout rates."""
    dtype = check_dtype(dtype)
    if loss is None:
        loss = "cross_entropy" if activations[-1] in ("softmax", "sigmoid") else "mse"
    dropouts = dropouts or [0.0] * len(params)
    layers = [
        _network.Dense(W.shape[0], W.shape[1], act, rate) for (W, _), act, rate in zip(params, activations, dropouts)
    ]
    net = _network.Network(layers, loss=loss, dtype=dtype)
    net.params = params
    return net
