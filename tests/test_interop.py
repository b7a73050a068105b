"""Interop: ONNX export run by onnxruntime, and imports from PyTorch and scikit-learn, against those libraries."""

import os
import sys
import warnings

import numpy as np
import pytest

import fastgd
from fastgd import interop

HIDDEN = ["identity", "sigmoid", "tanh", "relu", "leaky_relu"]
OUTPUTS = [("softmax", "cross_entropy"), ("sigmoid", "cross_entropy"), ("identity", "mse"), ("leaky_relu", "mse")]
DTYPES = ["float32", "float64"]
RTOL = {"float32": 1e-5, "float64": 1e-12}


def assert_close(actual, expected, dtype, rtol=None):
    # Summation orders differ between libraries, so outputs near 0 need an absolute tolerance too.
    rtol = RTOL[np.dtype(dtype).name] if rtol is None else rtol
    assert actual.dtype == np.dtype(dtype)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol)


def random_network(hidden, output, loss, dtype, sizes=(5, 8, 6, 3), seed=0):
    """A network with random weights and biases, so that Gemm's C and every sign of z are exercised."""
    net = fastgd.Network(list(sizes), activation=hidden, output_activation=output, loss=loss, dtype=dtype, seed=seed)
    rng = np.random.default_rng(seed + 1)
    net.params = [(W, rng.standard_normal(b.shape)) for W, b in net.params]
    return net


# ---- ONNX ------------------------------------------------------------------------------------


@pytest.fixture
def onnx():
    return pytest.importorskip("onnx")


@pytest.fixture
def onnxruntime():
    return pytest.importorskip("onnxruntime")


def onnx_outputs(onnxruntime, path, X):
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(["output"], {"input": X})[0]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("output, loss", OUTPUTS)
@pytest.mark.parametrize("hidden", HIDDEN)
def test_onnx_runs_like_predict(onnx, onnxruntime, tmp_path, hidden, output, loss, dtype):
    net = random_network(hidden, output, loss, dtype)
    path = tmp_path / "model.onnx"
    interop.to_onnx(net, path)
    onnx.checker.check_model(str(path), full_check=True)
    # ONNX stores LeakyRelu's alpha as float32(0.01), 2.2e-8 away from fastgd's float64 slope.
    rtol = 1e-7 if dtype == "float64" and "leaky_relu" in (hidden, output) else None
    rng = np.random.default_rng(2)
    for n in (1, 2, 17, 256):
        X = rng.standard_normal((n, net.n_in)).astype(dtype)
        assert_close(onnx_outputs(onnxruntime, path, X), net.predict(X), dtype, rtol)


@pytest.mark.parametrize("dtype", DTYPES)
def test_onnx_graph_is_gemm_and_activations(onnx, tmp_path, dtype):
    net = fastgd.Network(
        [
            fastgd.Dense(4, 6, "relu"),
            fastgd.Dense(6, 5, "identity"),
            fastgd.Dense(5, 5, "leaky_relu"),
            fastgd.Dense(5, 3, "softmax"),
        ],
        loss="cross_entropy",
        dtype=dtype,
        seed=0,
    )
    path = tmp_path / "model.onnx"
    returned = interop.to_onnx(net, path, opset=13)
    model = onnx.load(str(path))
    assert model == returned
    ops = ["Gemm", "Relu", "Gemm", "Gemm", "LeakyRelu", "Gemm", "Softmax"]
    assert [node.op_type for node in model.graph.node] == ops
    attributes = {
        node.op_type: {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute} for node in model.graph.node
    }
    assert attributes["Gemm"] == {}  # no transA/transB, alpha = beta = 1
    assert attributes["LeakyRelu"] == {"alpha": pytest.approx(0.01)}
    assert attributes["Softmax"] == {"axis": 1}
    assert [opset.version for opset in model.opset_import] == [13]

    element = onnx.TensorProto.FLOAT if dtype == "float32" else onnx.TensorProto.DOUBLE
    for value, size in ((model.graph.input[0], 4), (model.graph.output[0], 3)):
        tensor = value.type.tensor_type
        assert tensor.elem_type == element
        assert [d.dim_param or d.dim_value for d in tensor.shape.dim] == ["batch", size]
    assert [value.name for value in model.graph.input] == ["input"]
    assert [value.name for value in model.graph.output] == ["output"]
    assert model.graph.node[-1].output == ["output"]

    stored = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    assert len(stored) == 2 * len(net.layers)
    for index, (W, b) in enumerate(net.params):
        np.testing.assert_array_equal(stored[f"layers.{index}.W"], W)
        np.testing.assert_array_equal(stored[f"layers.{index}.b"], b)
        assert stored[f"layers.{index}.W"].dtype == net.dtype
    assert model.producer_name == "fastgd"
    metadata = {p.key: p.value for p in model.metadata_props}
    assert metadata == {"fastgd_version": fastgd.__version__, "loss": "cross_entropy"}


def test_onnx_identity_output_ends_with_gemm(onnx, onnxruntime, tmp_path):
    net = random_network("tanh", "identity", "mse", "float64", sizes=(3, 1))
    path = tmp_path / "linear.onnx"
    model = interop.to_onnx(net, path)
    assert [node.op_type for node in model.graph.node] == ["Gemm"]
    X = np.random.default_rng(0).standard_normal((9, 3))
    assert_close(onnx_outputs(onnxruntime, path, X), X @ net.params[0][0] + net.params[0][1], "float64")


def test_onnx_write_replaces_a_file_whole_and_leaves_no_temporary(onnx, tmp_path):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old contents, longer than the new model " * 10_000)
    model = interop.to_onnx(random_network("relu", "softmax", "cross_entropy", "float32"), os.fspath(path))
    assert path.read_bytes() == model.SerializeToString()
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_onnx_failed_write_keeps_the_old_file(onnx, tmp_path, monkeypatch):
    path = tmp_path / "model.onnx"
    path.write_bytes(b"old")

    def fail(*args):
        raise OSError("disk full")

    monkeypatch.setattr(fastgd.io.os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        interop.to_onnx(random_network("relu", "softmax", "cross_entropy", "float32"), path)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.onnx"]


def test_onnx_errors(onnx, tmp_path):
    net = random_network("relu", "softmax", "cross_entropy", "float32")
    with pytest.raises(ValueError, match="opset must be at least 13"):
        interop.to_onnx(net, tmp_path / "m.onnx", opset=12)
    with pytest.raises(ValueError, match="opset must be at most"):
        interop.to_onnx(net, tmp_path / "m.onnx", opset=onnx.defs.onnx_opset_version() + 1)
    with pytest.raises(TypeError, match="opset must be an integer"):
        interop.to_onnx(net, tmp_path / "m.onnx", opset="17")
    with pytest.raises(TypeError, match="network must be a fastgd.Network"):
        interop.to_onnx(object(), tmp_path / "m.onnx")
    with pytest.raises(FileNotFoundError):
        interop.to_onnx(net, tmp_path / "missing" / "m.onnx")
    assert os.listdir(tmp_path) == []


def test_onnx_missing_says_how_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "onnx", None)  # makes `import onnx` raise ImportError
    net = random_network("relu", "softmax", "cross_entropy", "float32")
    with pytest.raises(ImportError, match=r'pip install "fastgd\[onnx\]"'):
        interop.to_onnx(net, tmp_path / "m.onnx")


# ---- PyTorch ---------------------------------------------------------------------------------


@pytest.fixture
def torch():
    return pytest.importorskip("torch")


TORCH_ACTIVATIONS = {
    "identity": lambda nn: nn.Identity(),
    "sigmoid": lambda nn: nn.Sigmoid(),
    "tanh": lambda nn: nn.Tanh(),
    "relu": lambda nn: nn.ReLU(),
    "leaky_relu": lambda nn: nn.LeakyReLU(0.01),
    "softmax": lambda nn: nn.Softmax(dim=1),
}
TORCH_CASES = [
    ("relu", "softmax", "cross_entropy"),
    ("tanh", "sigmoid", "cross_entropy"),
    ("sigmoid", "identity", "mse"),
    ("leaky_relu", "tanh", "mse"),
    ("identity", "relu", "mse"),
]


def torch_stack(torch, hidden, output, dtype, sizes=(5, 8, 6, 3), flatten=False):
    nn = torch.nn
    torch.manual_seed(0)
    modules = [nn.Flatten()] if flatten else []
    for index, (n_in, n_out) in enumerate(zip(sizes, sizes[1:])):
        modules.append(nn.Linear(n_in, n_out))
        modules.append(TORCH_ACTIVATIONS[output if index == len(sizes) - 2 else hidden](nn))
    return nn.Sequential(*modules).to(getattr(torch, dtype))


def torch_outputs(torch, module, X):
    with torch.no_grad():
        return module(torch.from_numpy(X)).numpy()


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("hidden, output, loss", TORCH_CASES)
def test_from_torch_module_and_state_dict(torch, hidden, output, loss, dtype):
    module = torch_stack(torch, hidden, output, dtype, flatten=hidden == "relu")
    X = np.random.default_rng(0).standard_normal((40, 5)).astype(dtype)
    expected = torch_outputs(torch, module, X)
    from_state = interop.from_torch(module.state_dict(), activation=hidden, output_activation=output)
    for net in (interop.from_torch(module), from_state):
        assert isinstance(net, fastgd.Network)
        assert [layer.activation for layer in net.layers] == [hidden, hidden, output]
        assert net.sizes == [5, 8, 6, 3]
        assert net.loss == loss
        assert_close(net.predict(X), expected, dtype)
        assert_close(net.predict(X[:1]), expected[:1], dtype)


def test_from_torch_details(torch):
    nn = torch.nn
    torch.manual_seed(1)
    module = nn.Sequential(nn.Linear(4, 3, bias=False), nn.Linear(3, 2), nn.Sigmoid())
    net = interop.from_torch(module)
    assert [layer.activation for layer in net.layers] == ["identity", "sigmoid"]
    np.testing.assert_array_equal(net.params[0][1], np.zeros(3, dtype=np.float32))
    np.testing.assert_array_equal(net.params[0][0], module[0].weight.detach().numpy().T)
    X = np.random.default_rng(1).standard_normal((6, 4)).astype(np.float32)
    assert_close(net.predict(X), torch_outputs(torch, module, X), "float32")

    # dtype and loss may be overridden; a lone Linear is a one-layer network.
    net = interop.from_torch(module.double(), dtype="float32", loss="mse")
    assert (net.dtype, net.loss) == (np.float32, "mse")
    lone = nn.Linear(3, 2).double()
    net = interop.from_torch(lone)
    assert (net.sizes, net.dtype, net.loss, net.layers[0].activation) == ([3, 2], np.float64, "mse", "identity")
    net = interop.from_torch(nn.Sequential(nn.Linear(3, 2), nn.Softmax(dim=-1)))
    assert (net.layers[0].activation, net.loss) == ("softmax", "cross_entropy")
    # a state_dict of one layer needs no hidden activation; NumPy arrays are accepted too
    state = {"0.weight": np.ones((2, 3)), "0.bias": np.zeros(2)}
    net = interop.from_torch(state, output_activation="identity")
    np.testing.assert_array_equal(net.params[0][0], np.ones((3, 2)))
    # a lone Linear's state_dict has keys "weight" and "bias"
    net = interop.from_torch(lone.state_dict(), output_activation="identity")
    X = np.random.default_rng(2).standard_normal((5, 3))
    assert_close(net.predict(X), torch_outputs(torch, lone, X), "float64")


@pytest.mark.parametrize(
    "build, index, name",
    [
        (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.GELU(), nn.Linear(3, 2)), 1, "GELU"),
        (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.LeakyReLU(0.2)), 1, "LeakyReLU(negative_slope=0.2)"),
        (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=0)), 1, "Softmax(dim=0)"),
        (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.Softmax(dim=1), nn.Linear(3, 2)), 1, "Softmax(dim=1)"),
        (lambda nn: nn.Sequential(nn.Conv1d(1, 2, 3), nn.Flatten(), nn.Linear(4, 2)), 0, "Conv1d"),
        (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.Flatten(), nn.Linear(3, 2)), 1, "Flatten"),
        (lambda nn: nn.Sequential(nn.ReLU(), nn.Linear(4, 3)), 0, "ReLU"),
        (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Tanh()), 2, "Tanh"),
        (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.Linear(2, 2)), 1, "Linear(in_features=2"),
        (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.Sequential(nn.ReLU())), 1, "Sequential"),
        (lambda nn: nn.Sequential(nn.Dropout(0.2), nn.Linear(4, 3)), 0, "Dropout(p=0.2"),
        (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.2), nn.Tanh(), nn.Linear(3, 2)), 2, "Tanh"),
        (lambda nn: nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.2), nn.Dropout(0.1), nn.Linear(3, 2)), 2, "Dropout(p=0.1"),
    ],
)
def test_from_torch_rejects_unsupported_modules(torch, build, index, name):
    with pytest.raises(ValueError, match=f"unsupported module at index {index}: ") as info:
        interop.from_torch(build(torch.nn))
    assert name in str(info.value)


def test_from_torch_carries_dropout_rates(torch):
    nn = torch.nn
    torch.manual_seed(3)
    module = nn.Sequential(
        nn.Linear(6, 5), nn.ReLU(), nn.Dropout(0.3), nn.Linear(5, 4), nn.Dropout(0.1), nn.Linear(4, 2), nn.Softmax(dim=1)
    ).eval()
    net = interop.from_torch(module)
    assert [layer.dropout for layer in net.layers] == [0.3, 0.1, 0.0]
    assert [layer.activation for layer in net.layers] == ["relu", "identity", "softmax"]
    X = np.random.default_rng(3).standard_normal((7, 6)).astype(np.float32)
    assert_close(net.predict(X), torch_outputs(torch, module, X), "float32")
    with pytest.raises(ValueError, match="no dropout on the output layer"):
        interop.from_torch(nn.Sequential(nn.Linear(4, 3), nn.Dropout(0.5)))


def test_from_torch_errors(torch):
    nn = torch.nn
    module = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2))
    state = module.state_dict()
    activations = {"activation": "relu", "output_activation": "identity"}
    with pytest.raises(ValueError, match="a state_dict holds no activations"):
        interop.from_torch(state)
    with pytest.raises(ValueError, match="a state_dict holds no activations"):
        interop.from_torch(state, output_activation="identity")
    with pytest.raises(ValueError, match="a state_dict holds no activations"):
        interop.from_torch(state, activation="relu")
    with pytest.raises(ValueError, match="give them only with a state_dict"):
        interop.from_torch(module, activation="relu")
    with pytest.raises(ValueError, match="unknown activation 'gelu'"):
        interop.from_torch(state, activation="gelu", output_activation="identity")
    with pytest.raises(ValueError, match="cross_entropy needs a softmax or sigmoid output"):
        interop.from_torch(module, loss="cross_entropy")
    with pytest.raises(ValueError, match="unsupported dtype"):
        interop.from_torch(module, dtype="float16")
    with pytest.raises(ValueError, match="got GRU"):
        interop.from_torch(nn.GRU(3, 2))
    with pytest.raises(ValueError, match="no nn.Linear layer"):
        interop.from_torch(nn.Sequential(nn.Flatten()))
    with pytest.raises(TypeError, match="torch.nn.Module or a state_dict"):
        interop.from_torch([module])
    with pytest.raises(ValueError, match="the state_dict is empty"):
        interop.from_torch({}, **activations)
    with pytest.raises(ValueError, match="'0.running_mean' is not a Linear layer's"):
        interop.from_torch({"0.running_mean": torch.zeros(3)}, **activations)
    with pytest.raises(ValueError, match="no 2.weight"):
        interop.from_torch({"0.weight": torch.zeros(3, 4), "2.bias": torch.zeros(3)}, **activations)
    with pytest.raises(ValueError, match="consecutive Linear layers in order"):
        interop.from_torch({"2.weight": torch.zeros(2, 3), "0.weight": torch.zeros(3, 4)}, **activations)
    with pytest.raises(ValueError, match=r"0.bias has shape \(2,\), expected \(3,\)"):
        interop.from_torch({"0.weight": torch.zeros(3, 4), "0.bias": torch.zeros(2)}, output_activation="identity")
    with pytest.raises(ValueError, match="a Linear weight is 2-D"):
        interop.from_torch({"0.weight": torch.zeros(3)}, output_activation="identity")
    with pytest.raises(TypeError, match="Linear layer 0's weight has dtype torch.int64; expected floating-point"):
        interop.from_torch({"0.weight": torch.zeros(3, 4, dtype=torch.int64)}, output_activation="identity")
    with pytest.raises(ValueError, match="NaN or Inf"):
        interop.from_torch({"0.weight": torch.full((3, 4), float("nan"))}, output_activation="identity")


def test_from_torch_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(ImportError, match=r"pip install torch"):
        interop.from_torch({})


# ---- scikit-learn ----------------------------------------------------------------------------


@pytest.fixture
def neural_network():
    pytest.importorskip("sklearn")
    from sklearn import neural_network

    return neural_network


def fitted(model, X, y):
    from sklearn.exceptions import ConvergenceWarning

    # A few iterations give weights far enough from their start; the fit need not converge.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


SKLEARN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}


@pytest.mark.parametrize("activation", list(SKLEARN_ACTIVATIONS))
@pytest.mark.parametrize("task", ["multiclass", "binary", "multilabel", "regression", "multioutput"])
def test_from_sklearn_predicts_like_sklearn(neural_network, activation, task):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((60, 4))
    targets = {
        "multiclass": rng.integers(0, 3, 60),
        "binary": rng.integers(0, 2, 60),
        "multilabel": rng.integers(0, 2, (60, 3)),
        "regression": rng.standard_normal(60),
        "multioutput": rng.standard_normal((60, 2)),
    }
    regression = task in ("regression", "multioutput")
    kind = neural_network.MLPRegressor if regression else neural_network.MLPClassifier
    model = kind(hidden_layer_sizes=(7, 5), activation=activation, max_iter=20, random_state=0)
    model = fitted(model, X, targets[task])
    expected = {
        "multiclass": lambda: model.predict_proba(X),
        "binary": lambda: model.predict_proba(X)[:, 1:],
        "multilabel": lambda: model.predict_proba(X),
        "regression": lambda: model.predict(X)[:, None],
        "multioutput": lambda: model.predict(X),
    }[task]()
    output = {"multiclass": "softmax", "binary": "sigmoid", "multilabel": "sigmoid"}.get(task, "identity")

    for dtype in DTYPES:
        net = interop.from_sklearn(model, dtype=dtype)
        hidden = SKLEARN_ACTIVATIONS[activation]
        assert [layer.activation for layer in net.layers] == [hidden, hidden, output]
        assert net.sizes == [4, 7, 5, expected.shape[1]]
        assert net.loss == ("mse" if regression else "cross_entropy")
        assert_close(net.predict(X), expected, dtype)
    assert interop.from_sklearn(model).dtype == np.float64
    if task == "binary":
        np.testing.assert_allclose(model.predict_proba(X)[:, 0], 1 - net.predict(X)[:, 0], rtol=1e-12, atol=1e-12)


def test_from_sklearn_errors(neural_network):
    X = np.random.default_rng(0).standard_normal((20, 3))
    with pytest.raises(ValueError, match="this MLPClassifier is not fitted yet"):
        interop.from_sklearn(neural_network.MLPClassifier())
    with pytest.raises(ValueError, match="this MLPRegressor is not fitted yet"):
        interop.from_sklearn(neural_network.MLPRegressor())
    with pytest.raises(TypeError, match="got BernoulliRBM"):
        interop.from_sklearn(neural_network.BernoulliRBM())
    model = fitted(neural_network.MLPRegressor(hidden_layer_sizes=(4,), max_iter=5), X, np.ones(20))
    with pytest.raises(ValueError, match="unsupported dtype"):
        interop.from_sklearn(model, dtype="int32")
    # MLPRegressor(loss="poisson") (scikit-learn >= 1.7) has an exp output
    model.out_activation_ = "exp"
    with pytest.raises(ValueError, match="unsupported out_activation_ 'exp'"):
        interop.from_sklearn(model)
    model.out_activation_, model.activation = "identity", "gelu"
    with pytest.raises(ValueError, match="unsupported activation 'gelu'"):
        interop.from_sklearn(model)


def test_from_sklearn_missing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "sklearn.neural_network", None)
    with pytest.raises(ImportError, match=r'pip install "fastgd\[sklearn\]"'):
        interop.from_sklearn(object())
