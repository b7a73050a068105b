"""Optimizers: hyperparameters in Python, state and update kernels in C++ (and in the NumPy twin)."""

from __future__ import annotations

import weakref

from ._validation import check_real

__all__ = ["Optimizer", "SGD"]


class Optimizer:
    """Base of fastgd's optimizers: hyperparameters here, one state per network it trains."""

    def __init__(self):
        self._validate()
        self._states = weakref.WeakKeyDictionary()

    def _validate(self):
        raise NotImplementedError

    def _hyperparameters(self):
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

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self._hyperparameters().items())
        return f"{type(self).__name__}({args})"


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
    """

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
