"""Bad-input battery: malformed input to the public API, each case in its own subprocess.

Every case runs in a fresh interpreter, so a case that crashes the engine (a segfault, an
abort, an AddressSanitizer report) fails as that one test, with its signal and stderr,
instead of killing the run. A malformed input must raise a Python exception of the expected
type whose message names the problem; a legitimate one must simply work. No case may emit a
warning: the child reports warnings, and the parent fails the case on any.

Each case is ``Case(id, source, expect)``. ``source`` runs after a common prelude that
defines ``np``, ``fastgd``, ``datasets``, a network ``net = fastgd.Network([4, 5, 3], seed=0)``,
``X = np.zeros((6, 4), np.float32)``, ``y = np.array([0, 1, 2, 0, 1, 2])`` and ``D``, the
folder of bad files built by the `battery` fixture. ``expect`` is
``("raises", exception_name_or_names, regex)`` (the regex is searched in ``str(exception)``)
or ``("works", check)`` where ``check`` is an expression, evaluated after ``source``, that
must be true (``source`` leaves what it produced in ``result``), or None.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import signal
import struct
import subprocess
import sys
import time
from collections import namedtuple
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

Case = namedtuple("Case", "id source expect")


def raises(exception, pattern):
    return ("raises", exception, pattern)


def works(check=None):
    return ("works", check)


CASES = [
    # constructor
    Case("ctor-unknown-activation", 'fastgd.Network([4, 5, 3], activation="swish")',
         raises("ValueError", r"unknown activation 'swish'; expected one of identity")),
    Case("ctor-unknown-output-activation", 'fastgd.Network([4, 3], output_activation="gelu")',
         raises("ValueError", r"unknown activation 'gelu'")),
    Case("ctor-unknown-loss", 'fastgd.Network([4, 3], loss="hinge")',
         raises("ValueError", r"unknown loss 'hinge'; expected one of mse, cross_entropy")),
    Case("ctor-unknown-dtype-name", 'fastgd.Network([4, 3], dtype="bfloat16")',
         raises("ValueError", r"unsupported dtype 'bfloat16'; expected 'float32' or 'float64'")),
    Case("ctor-float16-dtype", 'fastgd.Network([4, 3], dtype="float16")',
         raises("ValueError", r"unsupported dtype 'float16'")),
    Case("ctor-int-dtype", "fastgd.Network([4, 3], dtype=int)",
         raises("ValueError", r"unsupported dtype <class 'int'>")),
    # np.dtype(None) is float64; a network asked for dtype None must not quietly become float64.
    Case("ctor-dtype-none", "fastgd.Network([4, 3], dtype=None)",
         raises("ValueError", r"unsupported dtype None")),
    Case("ctor-zero-size", "fastgd.Network([4, 0, 3])",
         raises("ValueError", r"layer size must be at least 1, got 0")),
    Case("ctor-negative-size", "fastgd.Network([-4, 3])",
         raises("ValueError", r"layer size must be at least 1, got -4")),
    Case("ctor-non-integer-size", "fastgd.Network([4, 2.5, 3])",
         raises("TypeError", r"layer size must be an integer, got 2\.5")),
    Case("ctor-bool-size", "fastgd.Network([4, True, 3])",
         raises("TypeError", r"layer size must be an integer, got True")),
    Case("ctor-string-size", 'fastgd.Network([4, "5", 3])',
         raises("TypeError", r"layer size must be an integer, got '5'")),
    Case("ctor-huge-sizes", "fastgd.Network([10**7, 10**6, 10])",
         raises("MemoryError", r"sizes \[10000000, 1000000, 10\] has [\d,]+ parameters, [\d,.]+ GiB")),
    Case("ctor-astronomic-size", "fastgd.Network([2**64, 2])",
         raises("MemoryError", r"sizes \[18446744073709551616, 2\]")),
    Case("ctor-single-size", "fastgd.Network([4])",
         raises("ValueError", r"at least an input and an output size, got \[4\]")),
    Case("ctor-no-layers", "fastgd.Network([])",
         raises("ValueError", r"at least an input and an output size, got \[\]")),
    Case("ctor-softmax-hidden", 'fastgd.Network([4, 5, 3], activation="softmax")',
         raises("ValueError", r"softmax is only allowed on the output layer")),
    Case("ctor-cross-entropy-relu-output", 'fastgd.Network([4, 3], output_activation="relu")',
         raises("ValueError", r"cross_entropy needs a softmax or sigmoid output layer, got 'relu'")),
    Case("ctor-dense-chain-mismatch", 'fastgd.Network([fastgd.Dense(4, 5), fastgd.Dense(6, 3, "softmax")])',
         raises("ValueError", r"layers do not chain: Dense\(4, 5.*gives 5 outputs but Dense\(6, 3.*takes 6 inputs")),
    Case("ctor-dense-and-sizes-mixed", "fastgd.Network([fastgd.Dense(4, 5), 3])",
         raises("TypeError", r"all sizes or all fastgd\.Dense, not a mix")),
    Case("ctor-layers-none", "fastgd.Network(None)",
         raises("TypeError", r"layers must be a list of layer sizes or of fastgd\.Dense")),
    Case("ctor-layers-string", 'fastgd.Network("784,30,10")',
         raises("TypeError", r"layers must be a list of layer sizes or of fastgd\.Dense")),
    Case("ctor-negative-seed", "fastgd.Network([4, 3], seed=-1)",
         raises("ValueError", r"\bseed\b")),
    Case("dense-zero-outputs", "fastgd.Dense(3, 0)",
         raises("ValueError", r"n_out must be at least 1, got 0")),
    Case("dense-unknown-activation", 'fastgd.Dense(3, 4, activation="gelu")',
         raises("ValueError", r"unknown activation 'gelu'")),
    # fit: X
    Case("fit-X-1d", "net.fit(X[0], y[:1], verbose=0)",
         raises("ValueError", r"X must be 2-D \(n_samples, n_features\), got 1-D with shape \(4,\)")),
    Case("fit-X-3d", "net.fit(X[:, :, None], y, verbose=0)",
         raises("ValueError", r"X must be 2-D \(n_samples, n_features\), got 3-D with shape \(6, 4, 1\)")),
    Case("fit-X-wrong-features", "net.fit(np.zeros((6, 5), np.float32), y, verbose=0)",
         raises("ValueError", r"X has 5 features, but the network's input layer takes 4")),
    Case("fit-X-empty", "net.fit(np.zeros((0, 4), np.float32), y[:0], verbose=0)",
         raises("ValueError", r"X is empty \(0 samples\)")),
    Case("fit-X-empty-lists", "net.fit([], [], verbose=0)",
         raises("ValueError", r"X must be 2-D .* got 1-D with shape \(0,\)")),
    Case("fit-X-nan", "Xn = X.copy(); Xn[2, 1] = np.nan; net.fit(Xn, y, verbose=0)",
         raises("ValueError", r"X contains NaN or Inf \(first at row 2, column 1\)")),
    Case("fit-X-inf-in-list", 'net.fit([[0.0, 0.0, 0.0, 0.0]] * 5 + [[0.0, float("-inf"), 0.0, 0.0]], y, verbose=0)',
         raises("ValueError", r"X contains NaN or Inf \(first at row 5, column 1\)")),
    Case("fit-X-object-dtype", "net.fit(X.astype(object), y, verbose=0)",
         raises("TypeError", r"X has dtype object; fastgd takes real numbers \(bool, integer or float dtypes\)")),
    Case("fit-X-string-array", 'net.fit(np.array([["a"] * 4] * 6), y, verbose=0)',
         raises("TypeError", r"X has dtype <U1; fastgd takes real numbers")),
    Case("fit-X-string-list", 'net.fit([["a", "b", "c", "d"]] * 6, y, verbose=0)',
         raises("TypeError", r"X has dtype <U1; fastgd takes real numbers")),
    Case("fit-X-complex", "net.fit(X.astype(complex), y, verbose=0)",
         raises("TypeError", r"X has dtype complex128; fastgd takes real numbers")),
    Case("fit-X-datetime", "net.fit(X.astype(np.int64).astype('datetime64[s]'), y, verbose=0)",
         raises("TypeError", r"X has dtype datetime64\[s\]; fastgd takes real numbers")),
    # Finite float64 values beyond float32's range become Inf in the float32 copy; the message
    # must say that, not that the user's (finite) X holds NaN or Inf.
    Case("fit-X-float64-beyond-float32-range", "net.fit(np.full((6, 4), 1e300), y, verbose=0)",
         raises("ValueError", r"X .*float32")),
    # fit: y
    Case("fit-length-mismatch", "net.fit(X, y[:4], verbose=0)",
         raises("ValueError", r"X has 6 samples but y has 4")),
    Case("fit-label-out-of-range", "net.fit(X, np.array([0, 1, 2, 3, 1, 2]), verbose=0)",
         raises("ValueError", r"label 3 at index 3 of y is out of range for an output layer of 3 units \(labels must be 0\.\.2\)")),
    Case("fit-label-negative", "net.fit(X, np.array([0, -1, 2, 0, 1, 2]), verbose=0)",
         raises("ValueError", r"label -1 at index 1 of y is out of range")),
    Case("fit-label-non-integer-float", "net.fit(X, np.array([0, 1.5, 2, 0, 1, 2]), verbose=0)",
         raises("ValueError", r"non-integer class label 1\.5 at index 1")),
    Case("fit-label-nan", "net.fit(X, np.array([0, 1, np.nan, 0, 1, 2]), verbose=0)",
         raises("ValueError", r"non-integer class label nan at index 2")),
    Case("fit-label-inf", "net.fit(X, np.array([0, 1, 2, np.inf, 1, 2]), verbose=0)",
         raises("ValueError", r"non-integer class label inf at index 3")),
    # Labels too large for int64 must be reported as they are, not as their wrapped cast.
    Case("fit-label-huge-float", "net.fit(X, np.array([1e20, 1, 2, 0, 1, 2]), verbose=0)",
         raises("ValueError", r"label (1e\+20|100000000000000000000)(\.0)? at index 0 of y is out of range")),
    Case("fit-label-huge-uint64", "net.fit(X, np.array([2**63, 1, 2, 0, 1, 2], dtype=np.uint64), verbose=0)",
         raises("ValueError", r"label 9223372036854775808 at index 0 of y is out of range")),
    Case("fit-y-inf-in-targets", "T = np.eye(3)[y]; T[4, 2] = np.inf; net.fit(X, T, verbose=0)",
         raises("ValueError", r"y contains NaN or Inf \(first at row 4, column 2\)")),
    Case("fit-y-nan-regression-target",
         'reg = fastgd.Network([4, 1], output_activation="identity", loss="mse", seed=0); '
         "reg.fit(X, np.array([0.5, np.nan, 1, 2, 3, 4]), verbose=0)",
         raises("ValueError", r"y contains NaN or Inf \(first at row 1, column 0\)")),
    Case("fit-y-wrong-target-width", "net.fit(X, np.zeros((6, 4)), verbose=0)",
         raises("ValueError", r"y has shape \(6, 4\), but the network has 3 outputs: expected \(6, 3\)")),
    Case("fit-y-3d", "net.fit(X, np.zeros((6, 3, 1)), verbose=0)",
         raises("ValueError", r"y must be 1-D class labels or 2-D targets \(n_samples, 3\), got shape \(6, 3, 1\)")),
    Case("fit-y-scalar", "net.fit(X, 2, verbose=0)",
         raises("ValueError", r"y must be 1-D class labels or 2-D targets .* got shape \(\)")),
    Case("fit-y-string-labels", 'net.fit(X, np.array(["cat", "dog", "cat", "dog", "cat", "dog"]), verbose=0)',
         raises("TypeError", r"y has dtype <U3; expected integer class labels or float targets")),
    # fit: batch_size, epochs, seed
    Case("fit-batch-size-zero", "net.fit(X, y, batch_size=0, verbose=0)",
         raises("ValueError", r"batch_size must be at least 1, got 0")),
    Case("fit-batch-size-negative", "net.fit(X, y, batch_size=-1, verbose=0)",
         raises("ValueError", r"batch_size must be at least 1, got -1")),
    Case("fit-batch-size-float", "net.fit(X, y, batch_size=1.5, verbose=0)",
         raises("TypeError", r"batch_size must be an integer, got 1\.5")),
    Case("fit-batch-size-bool", "net.fit(X, y, batch_size=True, verbose=0)",
         raises("TypeError", r"batch_size must be an integer, got True")),
    Case("fit-batch-size-inf", 'net.fit(X, y, batch_size=float("inf"), verbose=0)',
         raises("TypeError", r"batch_size must be an integer, got inf")),
    Case("fit-batch-size-string", 'net.fit(X, y, batch_size="32", verbose=0)',
         raises("TypeError", r"batch_size must be an integer, got '32'")),
    Case("fit-epochs-zero", "net.fit(X, y, epochs=0, verbose=0)",
         raises("ValueError", r"epochs must be at least 1, got 0")),
    Case("fit-epochs-negative", "net.fit(X, y, epochs=-1, verbose=0)",
         raises("ValueError", r"epochs must be at least 1, got -1")),
    Case("fit-epochs-float", "net.fit(X, y, epochs=2.0, verbose=0)",
         raises("TypeError", r"epochs must be an integer, got 2\.0")),
    Case("fit-string-seed", 'net.fit(X, y, seed="abc", verbose=0)',
         raises("TypeError", r"\bseed\b")),
    # fit: optimizer
    Case("fit-lr-negative", "net.fit(X, y, optimizer=fastgd.SGD(lr=-0.1), verbose=0)",
         raises("ValueError", r"lr must be positive, got -0\.1")),
    Case("fit-lr-zero", "net.fit(X, y, optimizer=fastgd.SGD(lr=0), verbose=0)",
         raises("ValueError", r"lr must be positive, got 0")),
    Case("fit-lr-nan", 'net.fit(X, y, optimizer=fastgd.SGD(lr=float("nan")), verbose=0)',
         raises("ValueError", r"lr must be finite, got nan")),
    Case("fit-lr-inf", 'net.fit(X, y, optimizer=fastgd.SGD(lr=float("inf")), verbose=0)',
         raises("ValueError", r"lr must be finite, got inf")),
    Case("fit-lr-string", 'net.fit(X, y, optimizer=fastgd.SGD(lr="fast"), verbose=0)',
         raises("TypeError", r"lr must be a real number, got 'fast'")),
    Case("fit-lr-none", "net.fit(X, y, optimizer=fastgd.SGD(lr=None), verbose=0)",
         raises("TypeError", r"lr must be a real number, got None")),
    Case("fit-lr-set-to-nan-after-construction",
         'opt = fastgd.SGD(lr=0.1); opt.lr = float("nan"); net.fit(X, y, optimizer=opt, verbose=0)',
         raises("ValueError", r"lr must be finite, got nan")),
    Case("fit-momentum-negative", "net.fit(X, y, optimizer=fastgd.SGD(lr=0.1, momentum=-0.5), verbose=0)",
         raises("ValueError", r"momentum must be at least 0\.0, got -0\.5")),
    Case("fit-momentum-nan", 'net.fit(X, y, optimizer=fastgd.SGD(lr=0.1, momentum=float("nan")), verbose=0)',
         raises("ValueError", r"momentum must be finite, got nan")),
    Case("fit-nesterov-without-momentum", "net.fit(X, y, optimizer=fastgd.SGD(lr=0.1, nesterov=True), verbose=0)",
         raises("ValueError", r"nesterov momentum needs momentum > 0")),
    Case("fit-nesterov-not-bool", 'net.fit(X, y, optimizer=fastgd.SGD(lr=0.1, momentum=0.9, nesterov="yes"), verbose=0)',
         raises("TypeError", r"nesterov must be True or False, got 'yes'")),
    Case("fit-weight-decay-negative", "net.fit(X, y, optimizer=fastgd.SGD(lr=0.1, weight_decay=-1e-4), verbose=0)",
         raises("ValueError", r"weight_decay must be at least 0\.0, got -0\.0001")),
    Case("fit-optimizer-string", 'net.fit(X, y, optimizer="sgd", verbose=0)',
         raises("TypeError", r"optimizer must be a fastgd optimizer such as fastgd\.SGD\(lr=0\.1\), got 'sgd'")),
    # The class instead of an instance: an easy slip that must be named as such.
    Case("fit-optimizer-class-not-instance", "net.fit(X, y, optimizer=fastgd.SGD, verbose=0)",
         raises("TypeError", r"optimizer must be a fastgd optimizer")),
    # fit: validation_data
    Case("fit-validation-not-a-pair", "net.fit(X, y, validation_data=X, verbose=0)",
         raises("TypeError", r"validation_data must be a tuple \(X_val, y_val\)")),
    Case("fit-validation-triple", "net.fit(X, y, validation_data=(X, y, y), verbose=0)",
         raises("TypeError", r"validation_data must be a tuple \(X_val, y_val\)")),
    Case("fit-validation-wrong-features", "net.fit(X, y, validation_data=(X[:, :3], y), verbose=0)",
         raises("ValueError", r"X_val has 3 features, but the network's input layer takes 4")),
    Case("fit-validation-length-mismatch", "net.fit(X, y, validation_data=(X[:4], y[:2]), verbose=0)",
         raises("ValueError", r"X_val has 4 samples but y_val has 2")),
    Case("fit-validation-nan", "Xv = X.copy(); Xv[1, 3] = np.nan; net.fit(X, y, validation_data=(Xv, y), verbose=0)",
         raises("ValueError", r"X_val contains NaN or Inf \(first at row 1, column 3\)")),
    Case("fit-validation-label-out-of-range", "net.fit(X, y, validation_data=(X, y + 1), verbose=0)",
         raises("ValueError", r"label 3 at index 2 of y_val is out of range")),
    # predict / evaluate
    Case("predict-wrong-features", "net.predict(np.zeros((2, 5), np.float32))",
         raises("ValueError", r"X has 5 features, but the network's input layer takes 4")),
    Case("predict-1d-wrong-length", "net.predict(np.zeros(5, np.float32))",
         raises("ValueError", r"X has 5 features, but the network's input layer takes 4")),
    Case("predict-3d", "net.predict(np.zeros((2, 4, 1), np.float32))",
         raises("ValueError", r"X must be 2-D \(n_samples, n_features\), got 3-D")),
    Case("predict-nan", "Xn = X.copy(); Xn[0, 0] = np.nan; net.predict(Xn)",
         raises("ValueError", r"X contains NaN or Inf \(first at row 0, column 0\)")),
    Case("predict-none", "net.predict(None)",
         raises("ValueError", r"X must be 2-D \(n_samples, n_features\)")),
    Case("predict-dict", 'net.predict({"a": 1})',
         raises("TypeError", r"X could not be read as an array of numbers: .*dict")),
    Case("predict-ragged-list", "net.predict([[1, 2, 3, 4], [1, 2]])",
         raises("TypeError", r"X could not be read as an array of numbers: .*inhomogeneous")),
    Case("predict-string", 'net.predict("abcd")',
         raises("TypeError", r"X has dtype <U4; fastgd takes real numbers")),
    Case("predict-empty", "net.predict(np.zeros((0, 4), np.float32))",
         raises("ValueError", r"X is empty \(0 samples\)")),
    Case("predict-scalar", "net.predict(1.0)",
         raises("ValueError", r"X must be 2-D \(n_samples, n_features\), got 0-D")),
    Case("evaluate-wrong-features", "net.evaluate(np.zeros((6, 3), np.float32), y)",
         raises("ValueError", r"X has 3 features, but the network's input layer takes 4")),
    Case("evaluate-X-3d", "net.evaluate(X[None], y)",
         raises("ValueError", r"X must be 2-D \(n_samples, n_features\), got 3-D")),
    Case("evaluate-X-nan", "Xn = X.copy(); Xn[5, 3] = np.nan; net.evaluate(Xn, y)",
         raises("ValueError", r"X contains NaN or Inf \(first at row 5, column 3\)")),
    Case("evaluate-X-dict", 'net.evaluate({"X": X}, y)',
         raises("TypeError", r"X could not be read as an array of numbers")),
    Case("evaluate-y-none", "net.evaluate(X, None)",
         raises("TypeError", r"y has dtype object; expected integer class labels or float targets")),
    Case("evaluate-y-ragged", "net.evaluate(X[:2], [[0, 1], [1]])",
         raises(("TypeError", "ValueError"), r"\by\b")),
    Case("evaluate-length-mismatch", "net.evaluate(X, y[:5])",
         raises("ValueError", r"X has 6 samples but y has 5")),
    # train_step and gradients
    Case("train-step-wrong-features", "net.train_step(X[:, :3], y, fastgd.SGD(lr=0.1))",
         raises("ValueError", r"X has 3 features, but the network's input layer takes 4")),
    Case("train-step-1d-batch", "net.train_step(X[0], y[:1], fastgd.SGD(lr=0.1))",
         raises("ValueError", r"X must be 2-D \(n_samples, n_features\), got 1-D")),
    Case("train-step-empty-batch", "net.train_step(X[:0], y[:0], fastgd.SGD(lr=0.1))",
         raises("ValueError", r"X is empty \(0 samples\)")),
    Case("train-step-label-out-of-range", "net.train_step(X, y * 2, fastgd.SGD(lr=0.1))",
         raises("ValueError", r"label 4 at index 2 of y is out of range")),
    Case("train-step-optimizer-string", 'net.train_step(X, y, "sgd")',
         raises("TypeError", r"optimizer must be a fastgd optimizer such as fastgd\.SGD\(lr=0\.1\), got 'sgd'")),
    Case("train-step-optimizer-none", "net.train_step(X, y, None)",
         raises("TypeError", r"optimizer must be a fastgd optimizer .*got None")),
    Case("train-step-optimizer-class-not-instance", "net.train_step(X, y, fastgd.SGD)",
         raises("TypeError", r"optimizer must be a fastgd optimizer")),
    Case("gradients-wrong-features", "net.gradients(np.zeros((6, 7), np.float32), y)",
         raises("ValueError", r"X has 7 features, but the network's input layer takes 4")),
    # params assignment
    Case("params-too-few-pairs", "net.params = net.params[:1]",
         raises("ValueError", r"expected 2 \(W, b\) pairs, got 1")),
    Case("params-too-many-pairs", "net.params = net.params * 2",
         raises("ValueError", r"expected 2 \(W, b\) pairs, got 4")),
    Case("params-W-transposed", "(W, b), second = net.params; net.params = [(W.T, b), second]",
         raises("ValueError", r"params\[0\] W has shape \(5, 4\), expected \(4, 5\)")),
    Case("params-b-wrong-shape", "first, (W, b) = net.params; net.params = [first, (W, b[:2])]",
         raises("ValueError", r"params\[1\] b has shape \(2,\), expected \(3,\)")),
    Case("params-W-nan", "(W, b), second = net.params; W = W.copy(); W[1, 1] = np.nan; net.params = [(W, b), second]",
         raises("ValueError", r"params\[0\] W contains NaN or Inf")),
    Case("params-b-inf", "first, (W, b) = net.params; net.params = [first, (W, np.full(3, np.inf))]",
         raises("ValueError", r"params\[1\] b contains NaN or Inf")),
    Case("params-non-numeric", 'net.params = [("a", "b"), ("c", "d")]',
         raises(("TypeError", "ValueError"), r"params\[0\] W")),
    Case("params-not-pairs", "net.params = [1, 2]",
         raises("TypeError", r"params\[0\]")),
    Case("params-none", "net.params = None",
         raises("TypeError", r"params")),
    # Casting complex to float drops the imaginary part: a silent wrong answer if accepted.
    Case("params-complex", "(W, b), second = net.params; net.params = [(W + 1j, b), second]",
         raises("TypeError", r"params\[0\] W")),
    # loaders
    Case("load-mnist-missing-folder", 'datasets.load_mnist(D / "no-such-folder")',
         raises("FileNotFoundError", r"MNIST folder not found: .*no-such-folder \(looked there because it was passed")),
    Case("load-mnist-missing-folder-from-env",
         'os.environ["FASTGD_DATA"] = str(D / "no-such-root"); datasets.load_mnist()',
         raises("FileNotFoundError", r"MNIST folder not found: .*no-such-root.*FASTGD_DATA is set")),
    Case("load-mnist-missing-file", 'datasets.load_mnist(D / "mnist_missing_file")',
         raises("FileNotFoundError", r"MNIST file t10k-labels-idx1-ubyte not found in .*mnist_missing_file")),
    Case("load-mnist-label-out-of-range", 'datasets.load_mnist(D / "mnist_bad_label")',
         raises("ValueError", r"train-labels-idx1-ubyte: label 10 at index 2 is out of range 0\.\.9")),
    Case("load-mnist-wrong-image-size", 'datasets.load_mnist(D / "mnist_small_images")',
         raises("ValueError", r"train-images-idx3-ubyte: expected 28x28 images, got 3x3")),
    Case("load-mnist-count-mismatch", 'datasets.load_mnist(D / "mnist_count_mismatch")',
         raises("ValueError", r"train: 5 images but 4 labels")),
    Case("load-mnist-corrupt-member", 'datasets.load_mnist(D / "mnist_corrupt_member")',
         raises("ValueError", r"train-images-idx3-ubyte\.gz: corrupt gzip data")),
    Case("read-idx-missing-file", 'datasets.read_idx(D / "no-such-file.idx")',
         raises("FileNotFoundError", r"no-such-file\.idx")),
    Case("read-idx-not-idx", 'datasets.read_idx(D / "not_idx.txt")',
         raises("ValueError", r"not_idx\.txt: bad magic number 0x[0-9a-f]{8}: not an IDX file")),
    Case("read-idx-empty-file", 'datasets.read_idx(D / "empty.idx")',
         raises("ValueError", r"empty\.idx: file too short: 0 bytes")),
    Case("read-idx-truncated", 'datasets.read_idx(D / "truncated.idx")',
         raises("ValueError", r"truncated\.idx: truncated: header says 10 = 10 bytes of data, found 5")),
    Case("read-idx-trailing-bytes", 'datasets.read_idx(D / "trailing.idx")',
         raises("ValueError", r"trailing\.idx: trailing bytes: header says 3 = 3 bytes of data, found 5")),
    Case("read-idx-gzip-corrupt", 'datasets.read_idx(D / "corrupt.gz")',
         raises("ValueError", r"corrupt\.gz: corrupt gzip data")),
    Case("read-idx-gzip-truncated", 'datasets.read_idx(D / "truncated.gz")',
         raises("ValueError", r"truncated\.gz: corrupt gzip data")),
    Case("read-idx-float-data-type", 'datasets.read_idx(D / "float_type.idx")',
         raises("ValueError", r"float_type\.idx: unsupported IDX data type 0x0D")),
    Case("read-idx-zero-dimensions", 'datasets.read_idx(D / "zero_ndim.idx")',
         raises("ValueError", r"zero_ndim\.idx: invalid number of dimensions 0")),
    Case("read-idx-absurd-dimensions", 'datasets.read_idx(D / "absurd_dims.idx")',
         raises("ValueError", r"absurd_dims\.idx: truncated: header says 4294967295x4294967295x4294967295x4294967295")),
    Case("read-idx-directory", 'datasets.read_idx(D / "a_directory")',
         raises("IsADirectoryError", r"a_directory")),
    Case("read-idx-none", "datasets.read_idx(None)",
         raises("TypeError", r"expected str, bytes or os\.PathLike object, not NoneType")),
    # threads
    Case("set-num-threads-zero", "fastgd.set_num_threads(0)",
         raises("ValueError", r"number of threads must be at least 1, got 0")),
    Case("set-num-threads-negative", "fastgd.set_num_threads(-3)",
         raises("ValueError", r"number of threads must be at least 1, got -3")),
    # legitimate input that must simply work
    Case("works-X-list-of-lists", "result = net.fit(X.tolist(), y, verbose=0)",
         works('len(result.history["loss"]) == 1 and np.isfinite(result.history["loss"][0])')),
    Case("works-X-float16-int-bool",
         "result = [net.predict(X.astype(t)) for t in (np.float16, np.int64, np.uint8, bool)]",
         works("all(np.array_equal(r, net.predict(X)) for r in result)")),
    Case("works-X-list-of-ints", "result = net.fit(X.astype(int).tolist(), y, verbose=0)",
         works('np.isfinite(result.history["loss"][0])')),
    Case("works-batch-larger-than-data", "result = net.fit(X, y, batch_size=100, verbose=0)",
         works('np.isfinite(result.history["loss"][0])')),
    Case("works-batch-size-2-to-the-80", "result = net.fit(X, y, batch_size=2**80, epochs=2, verbose=0)",
         works('len(result.history["loss"]) == 2 and np.all(np.isfinite(result.history["loss"]))')),
    Case("works-y-python-list", "result = net.fit(X, [0, 1, 2, 0, 1, 2], verbose=0)",
         works('np.isfinite(result.history["loss"][0])')),
    Case("works-float-labels-that-are-integers", "result = net.evaluate(X, y.astype(np.float64))",
         works('set(result) == {"loss", "accuracy"}')),
    Case("works-float64-X-to-float32-net",
         "net.fit(X.astype(np.float64), y, verbose=0); result = net.predict(X.astype(np.float64))",
         works("result.dtype == np.float32 and result.shape == (6, 3)")),
    Case("works-predict-1d-single-sample", "result = net.predict(np.arange(4.0))",
         works("result.shape == (3,) and np.array_equal(result, net.predict(np.arange(4.0)[None])[0])")),
    Case("works-big-endian-X",
         "R = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32); result = net.predict(R.astype('>f4'))",
         works("np.array_equal(result, net.predict(R))")),
    Case("works-misaligned-X",
         "R = np.random.default_rng(0).standard_normal((6, 4)).astype(np.float32); "
         "Rm = np.zeros(R.nbytes + 1, np.uint8)[1:].view(np.float32).reshape(6, 4); Rm[...] = R; "
         "result = net.predict(Rm)",
         works("not Rm.flags.aligned and np.array_equal(result, net.predict(R))")),
    Case("works-strided-and-fortran-X",
         "R = np.random.default_rng(0).standard_normal((6, 8)).astype(np.float32); "
         "result = (net.predict(R[:, ::2]), net.predict(np.asfortranarray(R[:, ::2])))",
         works("np.array_equal(result[0], net.predict(np.ascontiguousarray(R[:, ::2]))) and np.array_equal(*result)")),
    Case("works-read-only-X", "X.setflags(write=False); result = net.fit(X, y, verbose=0)",
         works('np.isfinite(result.history["loss"][0])')),
    Case("works-numpy-integer-arguments",
         "n2 = fastgd.Network(np.array([4, 5, 3]), seed=np.int64(0)); "
         "result = n2.fit(X, y, epochs=np.int64(2), batch_size=np.int32(4), verbose=0)",
         works('len(result.history["loss"]) == 2')),
    Case("works-validation-data-as-lists",
         "result = net.fit(X, y, validation_data=[X.tolist(), y.tolist()], verbose=0)",
         works('"val_loss" in result.history and "val_accuracy" in result.history')),
    Case("works-train-step-nesterov",
         "result = net.train_step(X, y, fastgd.SGD(lr=0.1, momentum=0.9, nesterov=True))",
         works("isinstance(result, float) and np.isfinite(result)")),
    Case("works-params-as-nested-lists",
         "before = [(W.copy(), b.copy()) for W, b in net.params]; "
         "net.params = [(W.tolist(), b.tolist()) for W, b in before]; result = net.params",
         works("all(np.array_equal(W, W0) and np.array_equal(b, b0) for (W, b), (W0, b0) in zip(result, before))")),
    Case("works-load-mnist-gzipped", 'result = datasets.load_mnist(D / "mnist_ok")',
         works("result[0][0].shape == (5, 784) and result[0][1].shape == (5,) and result[1][0].shape == (3, 784)")),
    Case("works-read-idx", 'result = datasets.read_idx(D / "valid.idx")',
         works("result.dtype == np.uint8 and result.tolist() == [[1, 2, 3], [4, 5, 6]]")),
]

TIMEOUT = 60
WORKERS = 2  # matches the CI runners' two cores; the children are short, mostly interpreter start-up.
IMPORT_ATTEMPTS = 5  # fastgd may be mid-reinstall while the battery runs: retry an import that fails.
IMPORT_RETRY_DELAY = 3.0
RESULT_MARKER = "fastgd-battery-result: "
IMPORTED_MARKER = "fastgd-battery: imported"

IMPORTS = "import os, pathlib\nimport numpy as np\nimport fastgd\nfrom fastgd import datasets\n"
SETUP = (
    "net = fastgd.Network([4, 5, 3], seed=0)\n"
    "X = np.zeros((6, 4), np.float32)\n"
    "y = np.array([0, 1, 2, 0, 1, 2])\n"
    "D = pathlib.Path(os.environ['FASTGD_BATTERY_FILES'])\n"
)

# Runs in the child. It reports one JSON line after RESULT_MARKER, since fit may print too.
CHILD_RUNNER = r'''
import json, sys, traceback, warnings

def _emit(**fields):
    sys.stdout.write("\n" + RESULT_MARKER + json.dumps(fields) + "\n")
    sys.stdout.flush()

def _describe(exc):
    frames = traceback.extract_tb(exc.__traceback__)
    where = f"{frames[-1].filename}:{frames[-1].lineno} in {frames[-1].name}" if frames else "?"
    return dict(type=type(exc).__name__, mro=[cls.__name__ for cls in type(exc).__mro__],
                message=str(exc), where=where)

def _run(imports, setup, source, check):
    scope = {}
    try:
        exec(imports, scope)
    except Exception as exc:
        _emit(outcome="import_failed", **_describe(exc))
        return
    print(IMPORTED_MARKER, flush=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            exec(setup, scope)
        except BaseException as exc:
            _emit(outcome="setup_failed", **_describe(exc))
            return
        try:
            exec(compile(source, "<case>", "exec"), scope)
            passed = True if check is None else bool(eval(compile(check, "<check>", "eval"), scope))
        except BaseException as exc:
            fields = dict(outcome="raised", **_describe(exc))
        else:
            fields = dict(outcome="returned", check_passed=passed, result=repr(scope.get("result"))[:500])
    fields["warnings"] = [f"{w.category.__name__}: {w.message} ({w.filename}:{w.lineno})" for w in caught]
    _emit(**fields)
'''

Run = namedtuple("Run", "returncode stdout stderr report timed_out")


def child_source(case):
    check = case.expect[1] if case.expect[0] == "works" else None
    return (
        f"RESULT_MARKER = {RESULT_MARKER!r}\nIMPORTED_MARKER = {IMPORTED_MARKER!r}\n"
        + CHILD_RUNNER
        + f"\n_run({IMPORTS!r}, {SETUP!r}, {case.source!r}, {check!r})\n"
    )


def run_case(case, files):
    """Run one case in a fresh interpreter; retry only if fastgd could not even be imported."""
    # The child inherits the whole environment, LD_PRELOAD and ASAN_OPTIONS included, so the
    # battery runs under the sanitizers whenever the suite does.
    env = dict(os.environ, FASTGD_BATTERY_FILES=str(files))
    for attempt in range(1, IMPORT_ATTEMPTS + 1):
        try:
            proc = subprocess.run(
                [sys.executable, "-c", child_source(case)],
                capture_output=True,
                encoding="utf-8",
                errors="replace",
                timeout=TIMEOUT,
                env=env,
                cwd=files,
            )
        except subprocess.TimeoutExpired as exc:
            return Run(None, _text(exc.stdout), _text(exc.stderr), None, True)
        report = None
        for line in proc.stdout.splitlines():
            if line.startswith(RESULT_MARKER):
                report = json.loads(line[len(RESULT_MARKER):])
        imported = IMPORTED_MARKER in proc.stdout
        import_broken = not imported and (proc.returncode != 0 or (report or {}).get("outcome") == "import_failed")
        if import_broken and attempt < IMPORT_ATTEMPTS:
            time.sleep(IMPORT_RETRY_DELAY)
            continue
        return Run(proc.returncode, proc.stdout, proc.stderr, report, False)


def _text(output):
    if isinstance(output, bytes):
        return output.decode("utf-8", "replace")
    return output or ""


def _tail(text, limit=4000):
    return text if len(text) <= limit else "[...]\n" + text[-limit:]


def _signal_name(number):
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


def problems_with(case, run):
    """What is wrong with `run` as an outcome of `case`: a list of sentences, empty if nothing."""
    if run.timed_out:
        return [f"hung: no result within {TIMEOUT} s\n--- stderr ---\n{_tail(run.stderr)}"]
    if run.returncode < 0:
        return [f"crashed with signal {_signal_name(-run.returncode)}\n--- stderr ---\n{_tail(run.stderr)}"]
    if re.search(r"ERROR: AddressSanitizer|runtime error:", run.stderr):
        return [f"sanitizer report (exit code {run.returncode})\n--- stderr ---\n{_tail(run.stderr)}"]
    report = run.report
    if report is None:
        return [f"exited with code {run.returncode} without reporting\n--- stderr ---\n{_tail(run.stderr)}"]
    if report["outcome"] in ("import_failed", "setup_failed"):
        return [f"{report['outcome']}: {report['type']}: {report['message']}"]
    problems = []
    if run.returncode != 0:
        problems.append(f"exited with code {run.returncode} after reporting\n--- stderr ---\n{_tail(run.stderr)}")
    if report["outcome"] == "raised":
        got = f"{report['type']}: {report['message']!r} (raised at {report['where']})"
    else:
        got = f"returned {report['result']}"
    if case.expect[0] == "raises":
        _, names, pattern = case.expect
        names = (names,) if isinstance(names, str) else names
        expected = f"{' or '.join(names)} matching {pattern!r}"
        if report["outcome"] != "raised":
            problems.append(f"expected {expected}, but it {got}")
        elif not set(names) & set(report["mro"]):
            problems.append(f"expected {expected}, got {got}")
        elif not re.search(pattern, report["message"]):
            problems.append(f"message does not match {pattern!r}: got {got}")
    elif report["outcome"] != "returned":
        problems.append(f"legitimate input, expected it to work, got {got}")
    elif not report["check_passed"]:
        problems.append(f"check {case.expect[1]!r} is false: it {got}")
    if report["warnings"]:
        problems.append("emitted warnings: " + "; ".join(report["warnings"]))
    return problems


def idx_bytes(array, type_code=0x08):
    array = np.asarray(array, dtype=np.uint8)
    header = struct.pack(">BBBB", 0, 0, type_code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.tobytes()


# fastgd.datasets.MNIST_FILES, spelled out: the parent never imports fastgd, so that nothing
# the engine does can take the test run down with it.
MNIST_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def write_mnist(folder, compress=False, omit=(), **overrides):
    """Write four small MNIST files (5 training, 3 test images), with `overrides` by key."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (5, 28, 28)),
        "train_labels": rng.integers(0, 10, 5),
        "test_images": rng.integers(0, 256, (3, 28, 28)),
        "test_labels": rng.integers(0, 10, 3),
    }
    arrays.update(overrides)
    folder.mkdir()
    for key, array in arrays.items():
        if key in omit:
            continue
        data = idx_bytes(array)
        name = MNIST_FILES[key] + (".gz" if compress else "")
        (folder / name).write_bytes(gzip.compress(data) if compress else data)


def write_bad_files(files):
    """The files the loader cases read, in the folder the children know as ``D``."""
    (files / "not_idx.txt").write_bytes(b"hello, this is not an IDX file\n")
    (files / "empty.idx").write_bytes(b"")
    (files / "truncated.idx").write_bytes(idx_bytes(np.arange(10))[:-5])
    (files / "trailing.idx").write_bytes(idx_bytes(np.arange(3)) + b"\x00\x00")
    (files / "corrupt.gz").write_bytes(b"\x1f\x8b\x08\x00this is not deflate data")
    (files / "truncated.gz").write_bytes(gzip.compress(idx_bytes(np.arange(100)))[:20])
    (files / "float_type.idx").write_bytes(struct.pack(">BBBBI", 0, 0, 0x0D, 1, 2) + bytes(8))
    (files / "zero_ndim.idx").write_bytes(b"\x00\x00\x08\x00")
    (files / "absurd_dims.idx").write_bytes(struct.pack(">BBBB4I", 0, 0, 0x08, 4, *[2**32 - 1] * 4))
    (files / "a_directory").mkdir()
    (files / "valid.idx").write_bytes(idx_bytes([[1, 2, 3], [4, 5, 6]]))
    write_mnist(files / "mnist_ok", compress=True)
    write_mnist(files / "mnist_missing_file", omit=("test_labels",))
    write_mnist(files / "mnist_bad_label", train_labels=[0, 1, 10, 3, 4])
    write_mnist(files / "mnist_small_images", train_images=np.zeros((5, 3, 3)))
    write_mnist(files / "mnist_count_mismatch", train_labels=[0, 1, 2, 3])
    write_mnist(files / "mnist_corrupt_member", compress=True)
    (files / "mnist_corrupt_member" / "train-images-idx3-ubyte.gz").write_bytes(b"\x1f\x8b\x08\x00garbage, not deflate")


@pytest.fixture(scope="module")
def battery(request, tmp_path_factory):
    """Futures of the selected cases' runs, by case id, started on a small thread pool."""
    files = tmp_path_factory.mktemp("battery")
    write_bad_files(files)
    selected = [
        item.callspec.params["case"]
        for item in request.session.items
        if "case" in getattr(getattr(item, "callspec", None), "params", {}) and item.module is request.module
    ]
    pool = ThreadPoolExecutor(max_workers=WORKERS)
    try:
        yield {case.id: pool.submit(run_case, case, files) for case in selected or CASES}
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(case, battery):
    problems = problems_with(case, battery[case.id].result())
    if problems:
        pytest.fail(f"{case.source}\n" + "\n".join(problems), pytrace=False)


def test_battery_has_at_least_30_malformed_cases():
    n_raises = sum(case.expect[0] == "raises" for case in CASES)
    n_works = sum(case.expect[0] == "works" for case in CASES)
    counts = f"{n_raises} malformed-input cases, {n_works} legitimate ones"
    assert len({case.id for case in CASES}) == len(CASES), "case ids must be unique"
    assert len({case.source for case in CASES}) == len(CASES), "each case must feed a distinct input"
    assert all(case.expect[0] in ("raises", "works") for case in CASES)
    for case in CASES:
        if case.expect[0] == "raises":
            re.compile(case.expect[2])
    assert n_raises >= 30 and n_works >= 5, counts
