"""fastgd's NumPy twin: the same Network API and the same math, in plain NumPy.

It is the oracle the tests check the C++ engine against, the baseline the benchmarks compare
with, and the documentation of the math. Each function mirrors the C++ function of the same
name in ``cpp/include/fastgd/``; shapes follow NumPy: samples are rows, W is (n_in, n_out).
"""

from __future__ import annotations

import numpy as np

from .network import BaseNetwork, Dense, History, TrainingDiverged
from .optimizers import SGD

__all__ = [
    "Network",
    "Dense",
    "History",
    "SGD",
    "TrainingDiverged",
    "activate",
    "apply_jacobian",
    "loss_sum",
    "output_delta",
    "dense_forward",
    "dense_backward_params",
    "dense_backward_input",
    "forward",
    "backward",
    "sgd_update",
]

LEAKY_RELU_SLOPE = 0.01


# activations.hpp
def activate(kind, z):
    """a = f(z), row by row for softmax."""
    if kind == "identity":
        return z.copy()
    if kind == "sigmoid":
        with np.errstate(over="ignore"):
            return 1 / (1 + np.exp(-z))
    if kind == "tanh":
        return np.tanh(z)
    if kind == "relu":
        return np.maximum(z, 0)
    if kind == "leaky_relu":
        return np.where(z > 0, z, LEAKY_RELU_SLOPE * z)
    if kind == "softmax":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    raise ValueError(f"unknown activation {kind!r}")


def apply_jacobian(kind, z, a, da):
    """dz = da · ∂a/∂z."""
    if kind == "identity":
        return da.copy()
    if kind == "sigmoid":
        return da * a * (1 - a)
    if kind == "tanh":
        return da * (1 - a * a)
    if kind == "relu":
        return np.where(z > 0, da, 0)
    if kind == "leaky_relu":
        return np.where(z > 0, da, LEAKY_RELU_SLOPE * da)
    if kind == "softmax":
        # dz_k = a_k (da_k − Σ_j da_j a_j)
        return a * (da - np.sum(da * a, axis=1, keepdims=True))
    raise ValueError(f"unknown activation {kind!r}")


# losses.hpp
def loss_sum(loss, output, z, a, y):
    """The loss summed over the rows (the cost is its mean)."""
    if loss == "mse":
        return float(0.5 * np.sum((a.astype(np.float64) - y) ** 2))
    z = z.astype(np.float64)
    if output == "softmax":
        # −Σ y log a, with log a = z − logsumexp(z)
        shift = z.max(axis=1, keepdims=True)
        logsumexp = shift + np.log(np.sum(np.exp(z - shift), axis=1, keepdims=True))
        return float(-np.sum(y * (z - logsumexp)))
    # −[y log σ(z) + (1 − y) log(1 − σ(z))] = softplus(z) − y z
    return float(np.sum(np.maximum(z, 0) + np.log1p(np.exp(-np.abs(z))) - y * z))


def output_delta(loss, output, z, a, y):
    """dC/dz of the output layer for C the mean loss over the rows."""
    m = len(z)
    if loss == "mse":
        return apply_jacobian(output, z, a, (a - y) / m)
    if output == "softmax":
        return (a * y.sum(axis=1, keepdims=True) - y) / m
    return (a - y) / m


# dense.hpp
def dense_forward(x, W, b):
    """z = x W + b; x (m, n_in), W (n_in, n_out), b (n_out,)."""
    return x @ W + b


def dense_backward_params(dz, x):
    """dC/dW = xᵀ dz and dC/db = Σ_rows dz."""
    return x.T @ dz, dz.sum(axis=0)


def dense_backward_input(dz, W):
    """dC/dx = dz Wᵀ."""
    return dz @ W.T


# network.hpp
def forward(params, activations, x):
    """Pre-activations and activations of every layer."""
    zs, activations_out = [], []
    for (W, b), kind in zip(params, activations):
        z = dense_forward(x, W, b)
        x = activate(kind, z)
        zs.append(z)
        activations_out.append(x)
    return zs, activations_out


def backward(params, activations, loss, x, y, zs, outputs):
    """Gradient [(dW, db), ...] of the mean loss over the rows, by the chain rule."""
    grads = [None] * len(params)
    dz = output_delta(loss, activations[-1], zs[-1], outputs[-1], y)
    for layer in reversed(range(len(params))):
        layer_input = x if layer == 0 else outputs[layer - 1]
        grads[layer] = dense_backward_params(dz, layer_input)
        if layer > 0:
            da = dense_backward_input(dz, params[layer][0])
            dz = apply_jacobian(activations[layer - 1], zs[layer - 1], outputs[layer - 1], da)
    return grads


# optimizers.hpp
def sgd_update(param, grad, velocity, lr, momentum, nesterov, decay):
    """One torch.optim.SGD step on `param` in place; returns the new momentum buffer (or None)."""
    g = grad + decay * param
    if momentum != 0:
        velocity = g.copy() if velocity is None else momentum * velocity + g
        g = g + momentum * velocity if nesterov else velocity
    param -= lr * g
    return velocity


class SGDState:
    """Momentum buffers and step count of SGD for one network of the twin."""

    def __init__(self):
        self.hyper = None
        self.steps = 0
        self.velocity = None

    def step(self, params, grads):
        h = self.hyper
        if self.velocity is None:
            self.velocity = [[None, None] for _ in params]
        for (W, b), (dW, db), v in zip(params, grads, self.velocity):
            v[0] = sgd_update(W, dW, v[0], h["lr"], h["momentum"], h["nesterov"], h["weight_decay"])
            v[1] = sgd_update(b, db, v[1], h["lr"], h["momentum"], h["nesterov"], 0.0)
        self.steps += 1


# train.hpp
def train_epoch(network, state, X, targets, order, batch_size):
    """Mini-batch gradient descent over X in `order`; returns (loss_sum, samples, failed_batch)."""
    n = len(X)
    order = np.arange(n) if order is None else order
    loss_total, samples = 0.0, 0
    activations = [layer.activation for layer in network.layers]
    for batch, start in enumerate(range(0, n, batch_size)):
        rows = order[start:start + batch_size]
        xb, yb = X[rows], targets[rows]
        zs, outputs = forward(network._params, activations, xb)
        loss = loss_sum(network.loss, activations[-1], zs[-1], outputs[-1], yb)
        if not np.isfinite(loss):
            return loss_total, samples, batch
        state.step(network._params, backward(network._params, activations, network.loss, xb, yb, zs, outputs))
        loss_total += loss
        samples += len(rows)
    return loss_total, samples, -1


class Network(BaseNetwork):
    """The NumPy twin of `fastgd.Network`: same constructor, same methods, same results."""

    def _build(self):
        self._params = [
            (np.zeros((layer.n_in, layer.n_out), self.dtype), np.zeros(layer.n_out, self.dtype))
            for layer in self.layers
        ]

    def _param_arrays(self):
        return self._params

    def _predict_into(self, out, X):
        out[...] = forward(self._params, [layer.activation for layer in self.layers], X)[1][-1]

    def _evaluate(self, X, targets):
        activations = [layer.activation for layer in self.layers]
        zs, outputs = forward(self._params, activations, X)
        return outputs[-1], loss_sum(self.loss, activations[-1], zs[-1], outputs[-1], targets)

    def _train_epoch(self, state, X, targets, order, batch_size):
        return train_epoch(self, state, X, targets, order, batch_size)

    def _gradients(self, X, targets):
        activations = [layer.activation for layer in self.layers]
        zs, outputs = forward(self._params, activations, X)
        loss = loss_sum(self.loss, activations[-1], zs[-1], outputs[-1], targets) / len(X)
        return loss, backward(self._params, activations, self.loss, X, targets, zs, outputs)

    def _new_optimizer_state(self, optimizer):
        if isinstance(optimizer, SGD):
            return SGDState()
        raise TypeError(f"unsupported optimizer {optimizer!r}")

    def _sync_optimizer_state(self, state, optimizer):
        state.hyper = optimizer._hyperparameters()
