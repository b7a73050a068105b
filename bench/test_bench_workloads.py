"""The performance issue's five workloads, fastgd against its NumPy twin and the installed peers.

W1-W3 train one epoch on the 60,000 MNIST training images, W4 predicts one sample and W5 the
10,000 test images. Engines: fastgd, the NumPy twin (``fastgd.reference``) and, when installed,
PyTorch eager, scikit-learn's MLP and (W4, W5) ONNX Runtime, all on ``--threads`` threads.
A peer that is not installed skips. Every benchmark checks its result: a training benchmark
trains one checked epoch (its warm-up) before timing and checks the last timed network after;
a predict benchmark compares its outputs with fastgd's, and fastgd's with the twin's, first.
``test_gemm_rate`` times NumPy's float32 GEMM for the machine's reference rate.

Run: python -m pytest bench --threads 1 --benchmark-json=bench/last-workloads-1thread.json
"""

import warnings

import numpy as np
import pytest

import fastgd

TRAINING_ENGINES = ["fastgd", "numpy", "torch", "sklearn"]
PREDICT_ENGINES = ["fastgd", "numpy", "torch", "sklearn", "onnxruntime"]

# scikit-learn's MLPRegressor has an identity output layer: with it the textbook's lr 3.0
# diverges within the epoch (overflow), 1.0 reaches 58 % and 0.5 reaches 91 %.
SKLEARN_LR = {"W1": 0.5}

GEMM_SIZE = 2048


def median(benchmark):
    """The median time of a benchmark, or None under --benchmark-disable."""
    return benchmark.stats.stats.median if benchmark.stats else None


def record_rate(benchmark, flops):
    benchmark.extra_info["flops"] = flops
    seconds = median(benchmark)
    if seconds:
        benchmark.extra_info["gflops"] = flops / seconds / 1e9


class FastgdTrainer:
    """fastgd or its NumPy twin (`module`), trained through the public ``fit``."""

    note = ""

    def __init__(self, module, spec, mnist):
        self.module, self.spec = module, spec
        (self.X, self.y), (self.X_test, self.y_test) = mnist

    def build(self):
        net = self.module.Network(self.spec["sizes"], dtype="float32", seed=0, **self.spec["net"])
        name, options = self.spec["optimizer"]
        return net, getattr(fastgd, name)(**options)

    def epoch(self, net, optimizer):
        net.fit(self.X, self.y, epochs=1, batch_size=self.spec["batch_size"], optimizer=optimizer, seed=0, verbose=0)

    def accuracy(self, net, optimizer):
        return net.evaluate(self.X_test, self.y_test)["accuracy"]


def torch_layers(torch, net, softmax):
    """Linear layers holding `net`'s weights, each followed by its activation module.

    A softmax output becomes nn.Softmax only when `softmax`; training leaves it to cross_entropy.
    """
    modules = []
    for layer, (W, b) in zip(net.layers, net.params):
        linear = torch.nn.Linear(layer.n_in, layer.n_out)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T.copy()))
            linear.bias.copy_(torch.from_numpy(b.copy()))
        modules.append(linear)
        if layer.activation == "relu":
            modules.append(torch.nn.ReLU())
        elif layer.activation == "sigmoid":
            modules.append(torch.nn.Sigmoid())
        elif layer.activation == "softmax" and softmax:
            modules.append(torch.nn.Softmax(dim=-1))
    return torch.nn.Sequential(*modules)


class TorchTrainer:
    """A PyTorch eager loop: the tensors converted once, a shuffled index per epoch, gathered batches."""

    def __init__(self, torch, spec, mnist):
        self.torch, self.spec = torch, spec
        (X, y), (X_test, self.y_test) = mnist
        self.mse = spec["net"]["loss"] == "mse"
        self.X = torch.from_numpy(X)
        self.y = torch.from_numpy(np.eye(10, dtype=np.float32)[y] if self.mse else y.astype(np.int64))
        self.X_test = torch.from_numpy(X_test)
        self.note = (
            "same initial weights as fastgd; loss sum(½(a-y)²)/batch as fastgd's mse" if self.mse
            else "same initial weights as fastgd; cross_entropy on the logits (softmax folded into the loss)"
        )

    def build(self):
        torch = self.torch
        model = torch_layers(torch, fastgd.Network(self.spec["sizes"], seed=0, **self.spec["net"]), softmax=False)
        name, options = self.spec["optimizer"]
        optimizer = getattr(torch.optim, name)(model.parameters(), **options)
        return model, optimizer, torch.Generator().manual_seed(0)

    def loss(self, out, target):
        if self.mse:
            return self.torch.nn.functional.mse_loss(out, target, reduction="sum") * (0.5 / len(out))
        return self.torch.nn.functional.cross_entropy(out, target)

    def epoch(self, model, optimizer, generator):
        n, batch_size = len(self.X), self.spec["batch_size"]
        order = self.torch.randperm(n, generator=generator)
        for start in range(0, n, batch_size):
            rows = order[start:start + batch_size]
            optimizer.zero_grad()
            self.loss(model(self.X[rows]), self.y[rows]).backward()
            optimizer.step()

    def accuracy(self, model, optimizer, generator):
        with self.torch.inference_mode():
            return float(np.mean(model(self.X_test).argmax(dim=1).numpy() == self.y_test))


class SklearnTrainer:
    """scikit-learn's MLPClassifier (MLPRegressor on one-hot targets for mse), one epoch as max_iter=1."""

    def __init__(self, sk, spec, key, mnist):
        self.spec = spec
        (X, y), (self.X_test, self.y_test) = mnist
        self.regressor = spec["net"]["loss"] == "mse"
        self.X, self.y = X, (np.eye(10, dtype=np.float32)[y] if self.regressor else y)
        name, options = spec["optimizer"]
        lr = SKLEARN_LR.get(key, options["lr"])
        self.options = dict(
            hidden_layer_sizes=tuple(spec["sizes"][1:-1]),
            activation={"sigmoid": "logistic", "relu": "relu"}[spec["net"]["activation"]],
            batch_size=spec["batch_size"], learning_rate_init=lr, alpha=0.0,
            max_iter=1, shuffle=True, random_state=0,
        )
        if name == "SGD":
            self.options.update(solver="sgd", learning_rate="constant", momentum=options.get("momentum", 0.0), nesterovs_momentum=False)
        else:
            self.options.update(solver="adam")
        self.estimator = sk.MLPRegressor if self.regressor else sk.MLPClassifier
        notes = ["Glorot-uniform initial weights (its own)", "the loss of every batch is computed"]
        if self.regressor:
            notes.insert(0, f"MLPRegressor: identity output layer, not sigmoid, squared error on one-hot targets; learning_rate_init={lr} (3.0 diverges)")
        if name == "Adam":
            notes.append("Adam adds eps to sqrt(v) before bias correction")
        self.note = "; ".join(notes)

    def build(self):
        return (self.estimator(**self.options),)

    def epoch(self, model):
        from sklearn.exceptions import ConvergenceWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # max_iter=1 is the point
            model.fit(self.X, self.y)

    def accuracy(self, model):
        predicted = model.predict(self.X_test)
        return float(np.mean((predicted.argmax(axis=1) if self.regressor else predicted) == self.y_test))


def make_trainer(engine, key, spec, mnist, request):
    if engine == "fastgd":
        return FastgdTrainer(fastgd, spec, mnist)
    if engine == "numpy":
        return FastgdTrainer(fastgd.reference, spec, mnist)
    if engine == "torch":
        return TorchTrainer(request.getfixturevalue("torch"), spec, mnist)
    return SklearnTrainer(request.getfixturevalue("sklearn_mlp"), spec, key, mnist)


@pytest.mark.parametrize("engine", TRAINING_ENGINES)
@pytest.mark.parametrize("key", ["W1", "W2", "W3"])
def test_train_epoch(benchmark, request, mnist, workloads, key, engine):
    spec = workloads[key]
    trainer = make_trainer(engine, key, spec, mnist, request)
    benchmark.group = f"{key} {spec['title']}"
    benchmark.extra_info.update(workload=key, engine=engine, samples=len(mnist[0][0]), note=trainer.note)

    # The warm-up epoch, checked before anything is timed.
    state = trainer.build()
    trainer.epoch(*state)
    checked = trainer.accuracy(*state)
    assert checked > spec["accuracy"], f"{engine} reached {checked:.2%} after one epoch of {key}"
    del state

    built = []

    def setup():
        built[:] = [trainer.build()]  # a fresh network, from the same seed, every round
        return built[0], {}

    benchmark.pedantic(trainer.epoch, setup=setup, rounds=spec["rounds"], warmup_rounds=0)
    accuracy = trainer.accuracy(*built[0])
    benchmark.extra_info.update(accuracy_warmup=checked, accuracy=accuracy)
    assert accuracy > spec["accuracy"], f"{engine}'s last timed epoch of {key} reached {accuracy:.2%}"
    record_rate(benchmark, spec["flops_per_sample"] * len(mnist[0][0]))


@pytest.mark.parametrize("engine", ["fastgd", "numpy"])
@pytest.mark.parametrize("key", ["W1", "W2"])
def test_train_epoch_without_zeros(benchmark, mnist, workloads, key, engine):
    """W1 and W2 on MNIST with every pixel moved off zero (0.01 + 0.99·x): the same arithmetic
    for the twin, none of the zeros fastgd's first layer skips (its dense path)."""
    spec = workloads[key]
    (X, y), (X_test, y_test) = mnist
    shifted = ((0.01 + 0.99 * X).astype(np.float32), y), ((0.01 + 0.99 * X_test).astype(np.float32), y_test)
    assert shifted[0][0].min() > 0
    trainer = FastgdTrainer(fastgd if engine == "fastgd" else fastgd.reference, spec, shifted)
    benchmark.group = f"{key} without zeros: {spec['title']}"
    benchmark.extra_info.update(workload=f"{key}-dense", engine=engine, samples=len(X))
    built = []

    def setup():
        built[:] = [trainer.build()]
        return built[0], {}

    benchmark.pedantic(trainer.epoch, setup=setup, rounds=spec["rounds"], warmup_rounds=1)
    accuracy = trainer.accuracy(*built[0])
    benchmark.extra_info.update(accuracy=accuracy)
    assert accuracy > spec["accuracy"], f"{engine} reached {accuracy:.2%} after one epoch of {key} without zeros"
    record_rate(benchmark, spec["flops_per_sample"] * len(X))


def make_predictor(engine, net, mnist, request):
    """A callable X -> outputs for `engine`, running `net`'s weights; X is (n, n_in) or (n_in,)."""
    n_in = net.n_in
    if engine == "fastgd":
        return net.predict
    if engine == "numpy":
        twin = fastgd.reference.Network(net.layers, loss=net.loss, dtype=net.dtype)
        twin.params = net.params
        return twin.predict
    if engine == "onnxruntime":
        session = request.getfixturevalue("ort_session")(net)
        return lambda X: session.run(None, {"input": X.reshape(-1, n_in)})[0]
    if engine == "torch":
        torch = request.getfixturevalue("torch")
        model = torch_layers(torch, net, softmax=True).eval()

        def run(X):
            with torch.inference_mode():
                return model(torch.from_numpy(X.reshape(-1, n_in))).numpy()

        return run
    sk = request.getfixturevalue("sklearn_mlp")
    from sklearn.exceptions import ConvergenceWarning

    # A fitted MLPClassifier of the same shape (fitted on 1,000 images, so it knows the 10
    # classes), given net's weights: its coefs_ have fastgd's (n_in, n_out) layout.
    (X, y), _ = mnist
    model = sk.MLPClassifier(hidden_layer_sizes=tuple(net.sizes[1:-1]), activation="relu", max_iter=1, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X[:1000], y[:1000])
    assert list(model.classes_) == list(range(10))
    model.coefs_ = [W.copy() for W, _ in net.params]
    model.intercepts_ = [b.copy() for _, b in net.params]
    return lambda X: model.predict_proba(X.reshape(-1, n_in))


@pytest.mark.parametrize("engine", PREDICT_ENGINES)
@pytest.mark.parametrize("key", ["W4", "W5"])
def test_predict(benchmark, request, mnist, workloads, key, engine):
    spec = workloads[key]
    _, (X_test, _) = mnist
    net = fastgd.Network(spec["sizes"], activation="relu", output_activation="softmax", dtype="float32", seed=0)
    X = X_test[0] if spec["rows"] == 1 else X_test[:spec["rows"]]
    expected = net.predict(X)
    twin = make_predictor("numpy", net, mnist, request)
    np.testing.assert_allclose(expected, twin(X), rtol=1e-4, atol=1e-6, err_msg="fastgd against the twin")
    predict = make_predictor(engine, net, mnist, request)
    np.testing.assert_allclose(np.reshape(predict(X), expected.shape), expected, rtol=1e-4, atol=1e-6, err_msg=engine)

    benchmark.group = f"{key} {spec['title']}"
    benchmark.extra_info.update(workload=key, engine=engine, samples=spec["rows"])
    if key == "W4":
        if engine == "fastgd":
            out = np.empty(net.n_out, dtype=np.float32)
            benchmark(net.predict, X, out=out)
            benchmark.extra_info["note"] = "net.predict(x, out=out), 1-D float32 x"
        else:
            benchmark(predict, X)
    else:
        benchmark.pedantic(predict, args=(X,), rounds=10, warmup_rounds=1)
    record_rate(benchmark, spec["flops_per_sample"] * spec["rows"])


def test_gemm_rate(benchmark):
    """The machine's float32 GEMM rate through NumPy's BLAS, the yardstick of W3's GFLOP/s."""
    rng = np.random.default_rng(0)
    A, B = (rng.standard_normal((GEMM_SIZE, GEMM_SIZE), dtype=np.float32) for _ in range(2))
    C = np.empty_like(A)
    np.matmul(A[:64], B, out=C[:64])
    np.testing.assert_allclose(C[:64, :8], A[:64].astype(np.float64) @ B[:, :8].astype(np.float64), rtol=1e-3, atol=1e-2)
    benchmark.group = "gemm rate"
    benchmark.extra_info.update(workload="GEMM", engine="numpy", note=f"NumPy float32 A @ B, {GEMM_SIZE}³")
    benchmark.pedantic(np.matmul, args=(A, B), kwargs={"out": C}, rounds=5, warmup_rounds=1)
    record_rate(benchmark, 2 * GEMM_SIZE**3)
