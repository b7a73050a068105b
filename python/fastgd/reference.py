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
    "sparse_dense_forward",
    "sparse_accumulate_gradient",
    "splitmix64",
    "dropout_mask",
    "forward",
    "backward",
    "sgd_update",
    "adam_update",
    "rmsprop_update",
    "adagrad_update",
    "sklearn_sgd_update",
    "sklearn_adam_update",
    "clip_gradient_norm",
    "squared_weights",
    "train_epoch",
    "full_gradient",
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
def loss_sum(loss, output, z, a, y, row_scale=None):
    """The loss summed over the rows (the cost is its mean); with row_scale (m,), Σ_i s_i C_i."""
    if row_scale is not None:
        return float(sum(s * loss_sum(loss, output, z[i : i + 1], a[i : i + 1], y[i : i + 1]) for i, s in enumerate(row_scale)))
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


def output_delta(loss, output, z, a, y, row_scale=None):
    """dC/dz of the output layer for C the mean loss over the rows, or with row_scale (m,) for
    C = Σ_i s_i C_i."""
    scale = 1 / len(z) if row_scale is None else np.asarray(row_scale, dtype=z.dtype)[:, None]
    if loss == "mse":
        return apply_jacobian(output, z, a, (a - y) * scale)
    if output == "softmax":
        return (a * y.sum(axis=1, keepdims=True) - y) * scale
    return (a - y) * scale


# dense.hpp
def dense_forward(x, W, b):
    """z = x W + b; x (m, n_in), a NumPy array or a scipy.sparse matrix, W (n_in, n_out), b (n_out,)."""
    return np.asarray(x @ W) + b


def dense_backward_params(dz, x):
    """dC/dW = xᵀ dz and dC/db = Σ_rows dz; x may be a scipy.sparse matrix."""
    return np.asarray(x.T @ dz), dz.sum(axis=0)


def dense_backward_input(dz, W):
    """dC/dx = dz Wᵀ."""
    return dz @ W.T


# sparse.hpp: the first layer's products from the input's nonzeros alone
def sparse_dense_forward(x, W, b):
    """z = x W + b, summing x_ij W_j only over the nonzero x_ij."""
    rows, cols = np.nonzero(x)
    z = np.tile(b, (len(x), 1))
    np.add.at(z, rows, x[rows, cols, None] * W[cols])
    return z


def sparse_accumulate_gradient(target, alpha, x, dz):
    """target += α xᵀ dz in place, adding α x_ij dz_i to row j of target for each nonzero x_ij."""
    rows, cols = np.nonzero(x)
    np.add.at(target, cols, alpha * x[rows, cols, None] * dz[rows])
    return target


# dropout.hpp
_UINT64 = (1 << 64) - 1


def splitmix64(x):
    """splitmix64's output function on uint64 (an int or an array), wrapping like C++."""
    if isinstance(x, np.ndarray):
        x = x + np.uint64(0x9E3779B97F4A7C15)
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))
    x = (x + 0x9E3779B97F4A7C15) & _UINT64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _UINT64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _UINT64
    return x ^ (x >> 31)


def dropout_mask(rows, cols, seed, batch, layer, rate, dtype=np.float64):
    """(rows, cols) scales: 0 where a unit is dropped, 1 / (1 − rate) where it is kept.

    Unit (i, j) is dropped when the top 53 bits of splitmix64(key ^ (i·cols + j)), as a
    fraction of 2^53, fall below `rate`; key depends on (seed, batch, layer) only.
    """
    key = splitmix64(splitmix64(splitmix64(seed) ^ batch) ^ layer)
    units = np.arange(rows * cols, dtype=np.uint64).reshape(rows, cols)
    kept = (splitmix64(units ^ np.uint64(key)) >> np.uint64(11)) >= np.uint64(int(rate * 2.0**53))
    return np.where(kept, np.dtype(dtype).type(1.0 / (1.0 - rate)), np.dtype(dtype).type(0))


def dropout_masks(rates, rows, widths, seed, batch, dtype):
    """Each layer's mask in one training batch (None for a layer without dropout)."""
    return [
        dropout_mask(rows, width, seed, batch, layer, rate, dtype) if rate else None
        for layer, (rate, width) in enumerate(zip(rates, widths))
    ]


# network.hpp
def forward(params, activations, x, masks=None):
    """Pre-activations and activations of every layer; with `masks`, each layer with a mask
    passes a ⊙ mask on to the next (the activations returned stay undropped)."""
    zs, activations_out = [], []
    masks = masks or [None] * len(params)
    for (W, b), kind, mask in zip(params, activations, masks):
        z = dense_forward(x, W, b)
        a = activate(kind, z)
        zs.append(z)
        activations_out.append(a)
        x = a if mask is None else a * mask
    return zs, activations_out


def backward(params, activations, loss, x, y, zs, outputs, masks=None, row_scale=None):
    """Gradient [(dW, db), ...] of the mean loss over the rows (weighted by row_scale), by the chain rule."""
    grads = [None] * len(params)
    masks = masks or [None] * len(params)
    dz = output_delta(loss, activations[-1], zs[-1], outputs[-1], y, row_scale)
    for layer in reversed(range(len(params))):
        previous = layer - 1
        if layer == 0:
            layer_input = x
        else:
            layer_input = outputs[previous] if masks[previous] is None else outputs[previous] * masks[previous]
        grads[layer] = dense_backward_params(dz, layer_input)
        if layer > 0:
            da = dense_backward_input(dz, params[layer][0])
            if masks[previous] is not None:
                da = da * masks[previous]  # dC/da = dC/d(a ⊙ mask) ⊙ mask
            dz = apply_jacobian(activations[previous], zs[previous], outputs[previous], da)
    return grads


# optimizers.hpp
# Weight decay λ applies to weights only, never to biases, in every optimizer. Each *_update
# works on one parameter array (a layer's W or b) and its buffers, in place, in the order of
# operations of the C++ kernel of the same name (and of torch.optim).
def sgd_update(param, grad, velocity, lr, momentum, nesterov, decay):
    """One torch.optim.SGD step on `param` in place; returns the new momentum buffer (or None)."""
    g = grad + decay * param
    if momentum != 0:
        velocity = g.copy() if velocity is None else momentum * velocity + g
        g = g + momentum * velocity if nesterov else velocity
    param -= lr * g
    return velocity


def adam_update(param, grad, exp_avg, exp_avg_sq, step, lr, betas, eps, decay, decoupled):
    """One torch.optim.Adam step (AdamW's when `decoupled`) on param, exp_avg, exp_avg_sq in place.

    `step` is t, counted from 1.
    """
    beta1, beta2 = betas
    if decay != 0:
        if decoupled:
            param *= 1 - lr * decay  # AdamW: θ ← θ − γλθ
        else:
            grad = grad + decay * param  # Adam: g ← g + λθ
    exp_avg[...] = beta1 * exp_avg + (1 - beta1) * grad  # m ← β1 m + (1 − β1) g
    exp_avg_sq[...] = exp_avg_sq * beta2 + (1 - beta2) * grad * grad  # v ← β2 v + (1 − β2) g²
    step_size = lr / (1 - beta1**step)  # γ / (1 − β1^t)
    denom = np.sqrt(exp_avg_sq) / float(np.sqrt(1 - beta2**step)) + eps  # √v / √(1 − β2^t) + ε
    param -= step_size * exp_avg / denom  # θ ← θ − γ m̂ / (√v̂ + ε)


def rmsprop_update(param, grad, square_avg, velocity, lr, alpha, eps, momentum, decay):
    """One torch.optim.RMSprop step (centered=False) on param, square_avg, velocity in place."""
    if decay != 0:
        grad = grad + decay * param  # g ← g + λθ
    square_avg[...] = square_avg * alpha + (1 - alpha) * grad * grad  # v ← α v + (1 − α) g²
    avg = np.sqrt(square_avg) + eps  # √v + ε
    if momentum > 0:
        velocity[...] = velocity * momentum + grad / avg  # b ← μ b + g / (√v + ε)
        param -= lr * velocity  # θ ← θ − γ b
    else:
        param -= lr * grad / avg  # θ ← θ − γ g / (√v + ε)


def adagrad_update(param, grad, state_sum, lr, eps, decay):
    """One torch.optim.Adagrad step (lr_decay=0) on param and state_sum in place."""
    if decay != 0:
        grad = grad + decay * param  # g ← g + λθ
    state_sum += grad * grad  # s ← s + g²
    param -= lr * grad / (np.sqrt(state_sum) + eps)  # θ ← θ − γ g / (√s + ε)


class OptimizerState:
    """Step count and buffers of one optimizer for one network of the twin.

    Each buffer is two lists, ``<name>_w`` (an array like W per layer) and ``<name>_b`` (like
    b), or None until a step allocates it. `sizes` and `dtype` are the network's; set_state
    checks against them (or, while unknown, against the shapes the buffers imply).
    """

    buffer_names = ()

    def __init__(self, sizes=None, dtype=None):
        self.hyper = None
        self.steps = 0
        self.sizes = None if sizes is None else list(sizes)
        self.dtype = None if dtype is None else np.dtype(dtype)
        for name in self.buffer_names:
            setattr(self, name + "_w", None)
            setattr(self, name + "_b", None)

    def _begin_step(self, params):
        if self.sizes is None:
            self.sizes = [params[0][0].shape[0]] + [W.shape[1] for W, _ in params]
        if self.dtype is None:
            self.dtype = params[0][0].dtype

    def _allocate(self, name, params):
        setattr(self, name + "_w", [np.zeros_like(W) for W, _ in params])
        setattr(self, name + "_b", [np.zeros_like(b) for _, b in params])

    def get_state(self):
        """``{"steps": int, "<name>_w": [copies per layer], "<name>_b": [...]}``, allocated buffers only."""
        state = {"steps": self.steps}
        for name in self.buffer_names:
            if getattr(self, name + "_w") is not None:
                for key in (name + "_w", name + "_b"):
                    state[key] = [array.copy() for array in getattr(self, key)]
        return state

    def set_state(self, state):
        """Restore a state from get_state(), checked whole first; absent buffers are dropped."""
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict as get_state() returns, got {type(state).__name__}")
        keys = ["steps"] + [name + suffix for name in self.buffer_names for suffix in ("_w", "_b")]
        for key in state:
            if key not in keys:
                raise ValueError(f"unknown key '{key}' in the optimizer state; expected {', '.join(keys)}")
        if "steps" not in state:
            raise ValueError("the optimizer state has no 'steps'")
        steps = state["steps"]
        if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
            raise TypeError(f"steps must be an integer, got {steps!r}")
        buffers = {}
        for name in self.buffer_names:
            w_key, b_key = name + "_w", name + "_b"
            if (w_key in state) != (b_key in state):
                given, missing = (w_key, b_key) if w_key in state else (b_key, w_key)
                raise ValueError(f"the optimizer state has {given} but no {missing}")
            if w_key in state:
                buffers[name] = (self._read_layers(state[w_key], w_key, 2), self._read_layers(state[b_key], b_key, 1))
        if steps < 0:
            raise ValueError(f"steps must be non-negative, got {steps}")
        sizes = self.sizes
        if sizes is None:
            for w, _ in buffers.values():
                if w:
                    sizes = [w[0].shape[0]] + [array.shape[1] for array in w]
                    break
        for name, (w, b) in buffers.items():
            if w or b:
                self._check_layout(name, w, b, sizes or [])
        dtype = self.dtype or np.dtype(np.float64)
        for name in self.buffer_names:
            w, b = buffers.get(name, ([], []))
            allocated = bool(w or b)
            setattr(self, name + "_w", [np.array(a, dtype=dtype) for a in w] if allocated else None)
            setattr(self, name + "_b", [np.array(a, dtype=dtype) for a in b] if allocated else None)
        self.steps = int(steps)
        self.sizes = sizes

    @staticmethod
    def _read_layers(value, key, ndim):
        if not isinstance(value, (list, tuple)):
            raise TypeError(f"{key} must be a list of arrays, one per layer, got {type(value).__name__}")
        arrays = []
        for index, item in enumerate(value):
            try:
                array = np.asarray(item)
            except (TypeError, ValueError):
                array = None
            if array is None or array.dtype.kind not in "biuf":
                raise TypeError(f"{key}[{index}] must be an array of real numbers, got {type(item).__name__}")
            if array.ndim != ndim:
                raise ValueError(f"{key}[{index}] must be {ndim}-D, got shape {array.shape}")
            arrays.append(array)
        return arrays

    @staticmethod
    def _check_layout(name, w, b, sizes):
        layers = max(len(sizes) - 1, 0)
        if len(w) != layers or len(b) != layers:
            raise ValueError(
                f"{name}_w and {name}_b hold {len(w)} and {len(b)} arrays, expected one per layer ({layers})"
            )
        for l in range(layers):
            if w[l].shape != (sizes[l], sizes[l + 1]):
                raise ValueError(f"{name}_w[{l}] has shape {w[l].shape}, expected {(sizes[l], sizes[l + 1])}")
            if b[l].shape != (sizes[l + 1],):
                raise ValueError(f"{name}_b[{l}] has shape {b[l].shape}, expected {(sizes[l + 1],)}")


class SGDState(OptimizerState):
    """SGD's step count and, with momentum, its buffers ``velocity`` (from the first momentum step)."""

    buffer_names = ("velocity",)

    def step(self, params, grads):
        h = self.hyper
        self._begin_step(params)
        momentum = h["momentum"]
        first = momentum != 0 and self.velocity_w is None
        if first:
            self._allocate("velocity", params)
        for l, ((W, b), (dW, db)) in enumerate(zip(params, grads)):
            if momentum == 0:
                sgd_update(W, dW, None, h["lr"], 0.0, False, h["weight_decay"])
                sgd_update(b, db, None, h["lr"], 0.0, False, 0.0)
                continue
            vW, vb = (None, None) if first else (self.velocity_w[l], self.velocity_b[l])
            self.velocity_w[l] = sgd_update(W, dW, vW, h["lr"], momentum, h["nesterov"], h["weight_decay"])
            self.velocity_b[l] = sgd_update(b, db, vb, h["lr"], momentum, h["nesterov"], 0.0)
        self.steps += 1


class AdamState(OptimizerState):
    """Adam's (and AdamW's) step count t and moments ``exp_avg`` (m) and ``exp_avg_sq`` (v)."""

    buffer_names = ("exp_avg", "exp_avg_sq")

    def step(self, params, grads):
        h = self.hyper
        self._begin_step(params)
        if self.exp_avg_w is None:
            self._allocate("exp_avg", params)
        if self.exp_avg_sq_w is None:
            self._allocate("exp_avg_sq", params)
        self.steps += 1
        args = h["lr"], h["betas"], h["eps"]
        for l, ((W, b), (dW, db)) in enumerate(zip(params, grads)):
            adam_update(W, dW, self.exp_avg_w[l], self.exp_avg_sq_w[l], self.steps, *args,
                        h["weight_decay"], h["decoupled_weight_decay"])
            adam_update(b, db, self.exp_avg_b[l], self.exp_avg_sq_b[l], self.steps, *args, 0.0, False)


class RMSpropState(OptimizerState):
    """RMSprop's step count, ``square_avg`` (v) and, with momentum, ``velocity`` (b)."""

    buffer_names = ("square_avg", "velocity")

    def step(self, params, grads):
        h = self.hyper
        self._begin_step(params)
        if self.square_avg_w is None:
            self._allocate("square_avg", params)
        momentum = h["momentum"]
        if momentum > 0 and self.velocity_w is None:
            self._allocate("velocity", params)
        self.steps += 1
        args = h["lr"], h["alpha"], h["eps"], momentum
        for l, ((W, b), (dW, db)) in enumerate(zip(params, grads)):
            vW, vb = (self.velocity_w[l], self.velocity_b[l]) if momentum > 0 else (None, None)
            rmsprop_update(W, dW, self.square_avg_w[l], vW, *args, h["weight_decay"])
            rmsprop_update(b, db, self.square_avg_b[l], vb, *args, 0.0)


class AdagradState(OptimizerState):
    """Adagrad's step count and sums of squared gradients ``sum`` (s)."""

    buffer_names = ("sum",)

    def step(self, params, grads):
        h = self.hyper
        self._begin_step(params)
        if self.sum_w is None:
            self._allocate("sum", params)
        self.steps += 1
        for l, ((W, b), (dW, db)) in enumerate(zip(params, grads)):
            adagrad_update(W, dW, self.sum_w[l], h["lr"], h["eps"], h["weight_decay"])
            adagrad_update(b, db, self.sum_b[l], h["lr"], h["eps"], 0.0)


# sklearn_optimizers.hpp: scikit-learn's MLP solvers, weights and biases alike
def sklearn_sgd_update(param, grad, velocity, lr, momentum, nesterov):
    """One step of scikit-learn's SGDOptimizer on param and velocity in place."""
    velocity[...] = momentum * velocity - lr * grad  # u ← μ u − γ g
    param += momentum * velocity - lr * grad if nesterov else velocity  # θ ← θ + μ u − γ g, or θ + u


def sklearn_adam_update(param, grad, m, v, step, lr, beta_1, beta_2, epsilon):
    """One step t (from 1) of scikit-learn's AdamOptimizer on param, m, v in place."""
    m[...] = beta_1 * m + (1 - beta_1) * grad  # m ← β1 m + (1 − β1) g
    v[...] = beta_2 * v + (1 - beta_2) * grad**2  # v ← β2 v + (1 − β2) g²
    lr_t = lr * np.sqrt(1 - beta_2**step) / (1 - beta_1**step)  # γ √(1 − β2^t) / (1 − β1^t)
    param += -lr_t * m / (np.sqrt(v) + epsilon)  # θ ← θ − γ_t m / (√v + ε)


class SklearnSGDState(OptimizerState):
    """scikit-learn's SGD: step count and ``velocity`` (u), from the first step."""

    buffer_names = ("velocity",)

    def step(self, params, grads):
        self._begin_step(params)
        if self.velocity_w is None:
            self._allocate("velocity", params)
        self.steps += 1
        h = self.hyper
        for l, ((W, b), (dW, db)) in enumerate(zip(params, grads)):
            sklearn_sgd_update(W, dW, self.velocity_w[l], h["lr"], h["momentum"], h["nesterov"])
            sklearn_sgd_update(b, db, self.velocity_b[l], h["lr"], h["momentum"], h["nesterov"])


class SklearnAdamState(OptimizerState):
    """scikit-learn's Adam: step count t, ``exp_avg`` (m) and ``exp_avg_sq`` (v)."""

    buffer_names = ("exp_avg", "exp_avg_sq")

    def step(self, params, grads):
        self._begin_step(params)
        if self.exp_avg_w is None:
            self._allocate("exp_avg", params)
            self._allocate("exp_avg_sq", params)
        self.steps += 1
        h = self.hyper
        args = self.steps, h["lr"], h["beta_1"], h["beta_2"], h["epsilon"]
        for l, ((W, b), (dW, db)) in enumerate(zip(params, grads)):
            sklearn_adam_update(W, dW, self.exp_avg_w[l], self.exp_avg_sq_w[l], *args)
            sklearn_adam_update(b, db, self.exp_avg_b[l], self.exp_avg_sq_b[l], *args)


OPTIMIZER_STATES = {
    "SGD": SGDState,
    "Adam": AdamState,
    "RMSprop": RMSpropState,
    "Adagrad": AdagradState,
    "SklearnSGD": SklearnSGDState,
    "SklearnAdam": SklearnAdamState,
}


# train.hpp
def clip_gradient_norm(grads, max_norm):
    """torch.nn.utils.clip_grad_norm_: scale all gradients by max_norm / (‖g‖ + 1e-6) when below 1."""
    norm = np.sqrt(sum(float(np.sum(dW.astype(np.float64) ** 2)) + float(np.sum(db.astype(np.float64) ** 2)) for dW, db in grads))
    factor = max_norm / (norm + 1e-6)
    if factor < 1:
        grads = [(dW * dW.dtype.type(factor), db * db.dtype.type(factor)) for dW, db in grads]
    return grads


def squared_weights(params):
    """Σ_l ‖W_l‖², for the L2 penalty."""
    return sum(float(np.sum(W.astype(np.float64) ** 2)) for W, _ in params)


def train_epoch(
    network, state, X, targets, order, batch_size, clip_norm=0.0, dropout_seed=0, first_batch=0, sample_weight=None, l2=0.0
):
    """Mini-batch gradient descent over X (an array or a scipy.sparse CSR matrix) in `order`;
    returns (loss_sum, samples, failed_batch, False, penalty_sum).

    Batch b is batch first_batch + b of the epoch and draws its dropout masks from
    (dropout_seed, first_batch + b). With sample_weight each batch's loss is its mean weighted by
    them (counted m times in loss_sum); l2 adds ½ λ Σ‖W‖² / Σw to the loss and λ W / Σw to dW."""
    n = X.shape[0]
    order = np.arange(n) if order is None else order
    loss_total, penalty_total, samples = 0.0, 0.0, 0
    activations = [layer.activation for layer in network.layers]
    for batch, start in enumerate(range(0, n, batch_size)):
        rows = order[start:start + batch_size]
        m = len(rows)
        xb, yb = X[rows], targets[rows]
        weight_sum, scale = float(m), None
        if sample_weight is not None:
            weight_sum = float(np.sum(sample_weight[rows]))
            if weight_sum == 0:  # a batch of weight 0 moves nothing
                samples += m
                continue
            scale = (sample_weight[rows] / weight_sum).astype(network.dtype)
        masks = network._dropout_masks(m, dropout_seed, first_batch + batch)
        zs, outputs = forward(network._params, activations, xb, masks)
        loss = loss_sum(network.loss, activations[-1], zs[-1], outputs[-1], yb, scale)
        loss = loss if scale is None else m * loss
        penalty = m * 0.5 * l2 * squared_weights(network._params) / weight_sum if l2 else 0.0
        if not (np.isfinite(loss) and np.isfinite(penalty)):
            return loss_total, samples, batch, False, penalty_total
        grads = backward(network._params, activations, network.loss, xb, yb, zs, outputs, masks, scale)
        if l2:
            grads = [(dW + network.dtype.type(l2 / weight_sum) * W, db) for (dW, db), (W, _) in zip(grads, network._params)]
        if clip_norm > 0:
            grads = clip_gradient_norm(grads, clip_norm)
        state.step(network._params, grads)
        loss_total += loss
        penalty_total += penalty
        samples += m
    failed = -1 if all(np.isfinite(W).all() and np.isfinite(b).all() for W, b in network._params) else batch
    return loss_total, samples, failed, False, penalty_total


def full_gradient(network, X, targets, sample_weight=None, l2=0.0):
    """(mean loss, penalty, [(dW, db), ...]) over all of X, weighted, plus the L2 penalty."""
    n = X.shape[0]
    weight = np.ones(n) if sample_weight is None else sample_weight
    scale = (weight / weight.sum()).astype(network.dtype)
    activations = [layer.activation for layer in network.layers]
    zs, outputs = forward(network._params, activations, X)
    loss = loss_sum(network.loss, activations[-1], zs[-1], outputs[-1], targets, scale)
    grads = backward(network._params, activations, network.loss, X, targets, zs, outputs, None, scale)
    penalty = 0.5 * l2 * squared_weights(network._params) / weight.sum()
    grads = [(dW + network.dtype.type(l2 / weight.sum()) * W, db) for (dW, db), (W, _) in zip(grads, network._params)]
    return loss, penalty, grads


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

    def _dropout_masks(self, rows, seed, batch):
        if not self.has_dropout:
            return None
        rates = [layer.dropout for layer in self.layers]
        return dropout_masks(rates, rows, self.sizes[1:], seed, batch, self.dtype)

    def _train_epoch(
        self, state, X, targets, order, batch_size, clip_norm, catch_interrupt, dropout_seed, first_batch,
        check_rows=False, sample_weight=None, l2=0.0,
    ):
        # fit checks X before training the twin: check_rows is never asked for
        return train_epoch(
            self, state, X, targets, order, batch_size, clip_norm, dropout_seed, first_batch, sample_weight, l2
        )

    def _full_gradient(self, X, targets, sample_weight, l2):
        return full_gradient(self, X, targets, sample_weight, l2)

    def _gradients(self, X, targets, dropout_seed):
        activations = [layer.activation for layer in self.layers]
        masks = None if dropout_seed is None else self._dropout_masks(len(X), dropout_seed, 0)
        zs, outputs = forward(self._params, activations, X, masks)
        loss = loss_sum(self.loss, activations[-1], zs[-1], outputs[-1], targets) / len(X)
        return loss, backward(self._params, activations, self.loss, X, targets, zs, outputs, masks)

    def _new_optimizer_state(self, optimizer):
        if optimizer._core_class not in OPTIMIZER_STATES:
            raise TypeError(f"unsupported optimizer {optimizer!r}")
        return OPTIMIZER_STATES[optimizer._core_class](sizes=self.sizes, dtype=self.dtype)

    def _sync_optimizer_state(self, state, optimizer):
        state.hyper = optimizer._core_arguments()
