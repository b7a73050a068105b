"""Optimizers: hyperparameters in Python, state and update kernels in C++ (and in the NumPy twin)."""

from __future__ import annotations

import weakref

from ._validation import check_real

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "SklearnSGD", "SklearnAdam"]


class Optimizer:
    """Base of fastgd's optimizers: hyperparameters here, one state per network it trains.

    Hyperparameters are attributes, stored as given and validated by ``_validate`` at
    construction and again whenever a network's state is fetched (every epoch of ``fit``), so
    they may be changed between epochs. The state (step count and buffers) lives in C++ for a
    `fastgd.Network` and in NumPy for a `fastgd.reference.Network`; ``state(network)`` shows it.
    """

    _core_class = None  # the engine's state class, without its dtype suffix (32 or 64)

    def __init__(self):
        self._validate()
        self._states = weakref.WeakKeyDictionary()

    def _validate(self):
        raise NotImplementedError

    def _hyperparameters(self):
        """Hyperparameters by attribute name, as floats (what checkpoints and repr show)."""
        raise NotImplementedError

    def _core_arguments(self):
        """Keyword arguments of the engine's state class and of its set_hyperparameters."""
        raise NotImplementedError

    def _state_for(self, network):
        """The state this optimizer keeps for `network`, made on first use, hyperparameters refreshed."""
        self._validate()
        state = self._states.get(network)
        if state is None:
            state = network._new_optimizer_state(self)
            self._states[network] = state
        network._sync_optimizer_state(state, self)
        return state

    def state(self, network):
        """A read-only copy of the state this optimizer keeps for `network`.

        Returns
        -------
        dict
            ``{"steps": int, "<buffer>_w": (array like W per layer), "<buffer>_b": (array like
            b per layer), ...}`` with one pair of keys per buffer allocated so far (see each
            optimizer's Notes for its buffers); arrays are copies with ``writeable=False``.
            ``{"steps": 0}`` for a network this optimizer has not trained.
        """
        if not hasattr(network, "_new_optimizer_state"):
            raise TypeError(f"network must be a fastgd Network, got {type(network).__name__}")
        state = self._states.get(network)
        if state is None:
            return {"steps": 0}
        view = {}
        for key, value in state.get_state().items():
            if isinstance(value, list):
                for array in value:
                    array.flags.writeable = False
                value = tuple(value)
            view[key] = value
        return view

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}({args})"


def _check_fraction(value, name):
    """A real number in [0, 1)."""
    value = check_real(value, name, minimum=0.0)
    if value >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return value


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, Nesterov momentum and weight decay.

    Follows ``torch.optim.SGD`` (with ``dampening=0``): ``g = grad + weight_decay * w``;
    with momentum ``b = g`` on the first step and ``b = momentum * b + g`` after, then
    ``g = g + momentum * b`` (Nesterov) or ``g = b``; finally ``w = w - lr * g``.
    The gradient is the mean over the mini-batch.

    Parameters
    ----------
    lr : float
        Learning rate, positive.
    momentum : float, default 0.0
        Momentum factor, non-negative.
    nesterov : bool, default False
        Use Nesterov momentum (needs ``momentum > 0``).
    weight_decay : float, default 0.0
        L2 penalty on weights (not biases), non-negative.

    Notes
    -----
    An optimizer keeps separate state (momentum buffers, step count) for each network it
    trains. Hyperparameters may be changed between calls to ``fit``; they are read again at
    the start of every epoch.

    State (``state(network)``, checkpoints): ``steps``, and with momentum ``velocity_w`` /
    ``velocity_b``, the buffers ``b`` (torch's ``momentum_buffer``), from the first step with
    momentum on.
    """

    _core_class = "SGD"

    def __init__(self, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        self.weight_decay = weight_decay
        super().__init__()

    def _validate(self):
        check_real(self.lr, "lr", strictly_positive=True)
        check_real(self.momentum, "momentum", minimum=0.0)
        check_real(self.weight_decay, "weight_decay", minimum=0.0)
        if not isinstance(self.nesterov, bool):
            raise TypeError(f"nesterov must be True or False, got {self.nesterov!r}")
        if self.nesterov and self.momentum == 0:
            raise ValueError("nesterov momentum needs momentum > 0")

    def _hyperparameters(self):
        return {
            "lr": float(self.lr),
            "momentum": float(self.momentum),
            "nesterov": self.nesterov,
            "weight_decay": float(self.weight_decay),
        }

    def _core_arguments(self):
        return self._hyperparameters()


class Adam(Optimizer):
    """Adam: adaptive moment estimation, with optional L2 weight decay.

    Follows ``torch.optim.Adam`` (``amsgrad=False``). At step t, with g the gradient of the
    mean loss over the mini-batch::

        g ← g + λ w
        m ← β1 m + (1 − β1) g
        v ← β2 v + (1 − β2) g²
        w ← w − γ m̂ / (√v̂ + ε),   m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)

    with m and v starting at 0, λ the weight decay (on weights only; biases are never
    decayed) and γ the learning rate.

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate γ, positive.
    betas : tuple of 2 floats, default (0.9, 0.999)
        Decay rates (β1, β2) of the moment estimates, each in [0, 1).
    eps : float, default 1e-8
        ε added to the denominator, positive.
    weight_decay : float, default 0.0
        L2 penalty λ on weights (not biases), non-negative.

    Notes
    -----
    State (``state(network)``, checkpoints): ``steps`` (t), and from the first step
    ``exp_avg_w`` / ``exp_avg_b`` (m) and ``exp_avg_sq_w`` / ``exp_avg_sq_b`` (v), the names
    torch.optim uses.
    """

    _core_class = "Adam"
    _decoupled_weight_decay = False

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        self.lr = lr
        self.betas = betas
        self.eps = eps
        self.weight_decay = weight_decay
        super().__init__()

    def _validate(self):
        check_real(self.lr, "lr", strictly_positive=True)
        if isinstance(self.betas, (str, bytes)) or not hasattr(self.betas, "__len__") or len(self.betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2) of numbers in [0, 1), got {self.betas!r}")
        _check_fraction(self.betas[0], "betas[0]")
        _check_fraction(self.betas[1], "betas[1]")
        check_real(self.eps, "eps", strictly_positive=True)
        check_real(self.weight_decay, "weight_decay", minimum=0.0)

    def _hyperparameters(self):
        return {
            "lr": float(self.lr),
            "betas": (float(self.betas[0]), float(self.betas[1])),
            "eps": float(self.eps),
            "weight_decay": float(self.weight_decay),
        }

    def _core_arguments(self):
        return dict(self._hyperparameters(), decoupled_weight_decay=self._decoupled_weight_decay)


class AdamW(Adam):
    """AdamW: Adam with decoupled weight decay.

    Follows ``torch.optim.AdamW`` (``amsgrad=False``): the same update as `Adam`, except that
    the weights shrink directly instead of through an L2 term in the gradient. At step t::

        w ← w − γ λ w
        m ← β1 m + (1 − β1) g
        v ← β2 v + (1 − β2) g²
        w ← w − γ m̂ / (√v̂ + ε),   m̂ = m / (1 − β1^t),  v̂ = v / (1 − β2^t)

    with the decay on weights only; biases are never decayed.

    Parameters
    ----------
    lr : float, default 1e-3
        Learning rate γ, positive.
    betas : tuple of 2 floats, default (0.9, 0.999)
        Decay rates (β1, β2) of the moment estimates, each in [0, 1).
    eps : float, default 1e-8
        ε added to the denominator, positive.
    weight_decay : float, default 1e-2
        Decoupled decay rate λ of the weights (not biases), non-negative.

    Notes
    -----
    State: as `Adam`'s (``steps``, ``exp_avg_w``/``_b``, ``exp_avg_sq_w``/``_b``).
    """

    _decoupled_weight_decay = True

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)


class RMSprop(Optimizer):
    """RMSprop: steps scaled by a running root mean square of the gradient.

    Follows ``torch.optim.RMSprop`` with ``centered=False``. With g the gradient of the mean
    loss over the mini-batch::

        g ← g + λ w
        v ← α v + (1 − α) g²
        b ← μ b + g / (√v + ε),  w ← w − γ b       with momentum μ > 0
        w ← w − γ g / (√v + ε)                     without

    with v and b starting at 0 and λ the weight decay (on weights only; biases are never
    decayed).

    Parameters
    ----------
    lr : float, default 1e-2
        Learning rate γ, positive.
    alpha : float, default 0.99
        Smoothing constant α of the mean square, in [0, 1).
    eps : float, default 1e-8
        ε added to the denominator, positive.
    momentum : float, default 0.0
        Momentum factor μ, non-negative.
    weight_decay : float, default 0.0
        L2 penalty λ on weights (not biases), non-negative.

    Notes
    -----
    State (``state(network)``, checkpoints): ``steps``, from the first step ``square_avg_w`` /
    ``square_avg_b`` (v), and with momentum ``velocity_w`` / ``velocity_b`` (b, torch's
    ``momentum_buffer``).
    """

    _core_class = "RMSprop"

    def __init__(self, lr=1e-2, alpha=0.99, eps=1e-8, momentum=0.0, weight_decay=0.0):
        self.lr = lr
        self.alpha = alpha
        self.eps = eps
        self.momentum = momentum
        self.weight_decay = weight_decay
        super().__init__()

    def _validate(self):
        check_real(self.lr, "lr", strictly_positive=True)
        _check_fraction(self.alpha, "alpha")
        check_real(self.eps, "eps", strictly_positive=True)
        check_real(self.momentum, "momentum", minimum=0.0)
        check_real(self.weight_decay, "weight_decay", minimum=0.0)

    def _hyperparameters(self):
        return {
            "lr": float(self.lr),
            "alpha": float(self.alpha),
            "eps": float(self.eps),
            "momentum": float(self.momentum),
            "weight_decay": float(self.weight_decay),
        }

    def _core_arguments(self):
        return self._hyperparameters()


class Adagrad(Optimizer):
    """Adagrad: steps scaled by the root of the sum of all squared gradients so far.

    Follows ``torch.optim.Adagrad`` with ``lr_decay=0`` and ``initial_accumulator_value=0``.
    With g the gradient of the mean loss over the mini-batch::

        g ← g + λ w
        s ← s + g²
        w ← w − γ g / (√s + ε)

    with s starting at 0 and λ the weight decay (on weights only; biases are never decayed).

    Parameters
    ----------
    lr : float, default 1e-2
        Learning rate γ, positive.
    eps : float, default 1e-10
        ε added to the denominator, positive.
    weight_decay : float, default 0.0
        L2 penalty λ on weights (not biases), non-negative.

    Notes
    -----
    State (``state(network)``, checkpoints): ``steps``, and from the first step ``sum_w`` /
    ``sum_b`` (s).
    """

    _core_class = "Adagrad"

    def __init__(self, lr=1e-2, eps=1e-10, weight_decay=0.0):
        self.lr = lr
        self.eps = eps
        self.weight_decay = weight_decay
        super().__init__()

    def _validate(self):
        check_real(self.lr, "lr", strictly_positive=True)
        check_real(self.eps, "eps", strictly_positive=True)
        check_real(self.weight_decay, "weight_decay", minimum=0.0)

    def _hyperparameters(self):
        return {"lr": float(self.lr), "eps": float(self.eps), "weight_decay": float(self.weight_decay)}

    def _core_arguments(self):
        return self._hyperparameters()


class SklearnSGD(Optimizer):
    """Stochastic gradient descent as scikit-learn's MLP solver ``'sgd'`` updates.

    scikit-learn's ``SGDOptimizer``: the velocity holds the step itself, ``u = momentum * u -
    lr * g`` (``u`` starts at 0), then ``w = w + u``, or with Nesterov's momentum ``w = w +
    momentum * u - lr * g``. Weights and biases alike; an L2 term is part of ``g``. Used by
    `fastgd.sklearn`; `SGD` is PyTorch's form. With a learning rate that never changes the two
    trace the same path, up to rounding; they differ when it changes, as scikit-learn's
    ``invscaling`` and ``adaptive`` schedules change it.

    Parameters
    ----------
    lr : float, default 0.001
        Learning rate, positive; may be changed between epochs.
    momentum : float, default 0.9
        In [0, 1].
    nesterov : bool, default True

    Notes
    -----
    State: ``steps`` and ``velocity_w`` / ``velocity_b`` (``u``), from the first step.
    """

    _core_class = "SklearnSGD"

    def __init__(self, lr=0.001, momentum=0.9, nesterov=True):
        self.lr = lr
        self.momentum = momentum
        self.nesterov = nesterov
        super().__init__()

    def _validate(self):
        check_real(self.lr, "lr", strictly_positive=True)
        if check_real(self.momentum, "momentum", minimum=0.0) > 1:
            raise ValueError(f"momentum must be in [0, 1], got {self.momentum}")

    def _hyperparameters(self):
        return {"lr": float(self.lr), "momentum": float(self.momentum), "nesterov": bool(self.nesterov)}

    def _core_arguments(self):
        return self._hyperparameters()


class SklearnAdam(Optimizer):
    """Adam as scikit-learn's MLP solver ``'adam'`` updates.

    scikit-learn's ``AdamOptimizer``: at step t, ``m = beta_1 m + (1 - beta_1) g``, ``v =
    beta_2 v + (1 - beta_2) g²``, ``lr_t = lr √(1 - beta_2^t) / (1 - beta_1^t)`` and ``w = w -
    lr_t m / (√v + epsilon)``. Unlike `Adam` (PyTorch's), epsilon is added before the bias
    correction. Weights and biases alike; an L2 term is part of ``g``.

    Parameters
    ----------
    lr : float, default 0.001
        Learning rate, positive.
    beta_1, beta_2 : float, default 0.9, 0.999
        In [0, 1).
    epsilon : float, default 1e-8
        Positive.

    Notes
    -----
    State: ``steps`` (t) and ``exp_avg_*`` (m), ``exp_avg_sq_*`` (v), from the first step.
    """

    _core_class = "SklearnAdam"

    def __init__(self, lr=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-8):
        self.lr = lr
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        super().__init__()

    def _validate(self):
        check_real(self.lr, "lr", strictly_positive=True)
        _check_fraction(self.beta_1, "beta_1")
        _check_fraction(self.beta_2, "beta_2")
        check_real(self.epsilon, "epsilon", strictly_positive=True)

    def _hyperparameters(self):
        return {"lr": float(self.lr), "beta_1": float(self.beta_1), "beta_2": float(self.beta_2), "epsilon": float(self.epsilon)}

    def _core_arguments(self):
        return self._hyperparameters()
