"""Callbacks that `fit` calls around each epoch: early stopping and learning-rate schedules.

A callback's ``on_epoch_end`` may return True to end training cleanly after that epoch. Each
callback keeps its progress in a JSON-able ``state_dict()``, which checkpoints save, so that
a resumed run continues exactly where the interrupted one stopped.
"""

from __future__ import annotations

import math

from ._validation import check_int, check_real

__all__ = [
    "Callback",
    "EarlyStopping",
    "StepDecay",
    "ExponentialDecay",
    "CosineDecay",
    "ReduceLROnPlateau",
]


class Callback:
    """Base class: override the hooks you need. Epochs are numbered from 1."""

    def on_train_begin(self, network, optimizer):
        self.network, self.optimizer = network, optimizer

    def on_epoch_begin(self, epoch):
        pass

    def on_epoch_end(self, epoch, logs):
        """Return True to stop training after this epoch."""
        return False

    def on_train_end(self):
        pass

    def state_dict(self):
        """Progress as JSON-able values, for checkpoints."""
        return {}

    def load_state_dict(self, state):
        pass

    def state_arrays(self):
        """Progress held in arrays (name -> ndarray), for checkpoints."""
        return {}

    def load_state_arrays(self, arrays):
        pass


class _Monitor:
    """Whether a monitored metric improved on its best value by more than min_delta."""

    def __init__(self, monitor, min_delta, mode):
        if not isinstance(monitor, str):
            raise TypeError(f"monitor must be a metric name such as 'val_loss', got {monitor!r}")
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode must be 'auto', 'min' or 'max', got {mode!r}")
        self.monitor = monitor
        self.min_delta = check_real(min_delta, "min_delta", minimum=0.0)
        self.mode = mode
        self.maximize = mode == "max" or (mode == "auto" and "acc" in monitor)

    def value(self, owner, logs):
        if self.monitor not in logs:
            raise ValueError(
                f"{owner} monitors {self.monitor!r}, which fit does not report (it reports {sorted(logs)}); "
                "pass validation_data or validation_split for val_ metrics"
            )
        return float(logs[self.monitor])

    def improved(self, value, best):
        if best is None:
            return math.isfinite(value)
        return value > best + self.min_delta if self.maximize else value < best - self.min_delta


class EarlyStopping(Callback):
    """Stop when the monitored metric has not improved by more than `min_delta` for `patience` epochs.

    Parameters
    ----------
    monitor : str, default "val_loss"
    patience : int, default 5
    min_delta : float, default 1e-4
    mode : {"auto", "min", "max"}, default "auto"
        "auto" maximizes metrics whose name contains "acc" and minimizes the others.
    restore_best : bool, default True
        When training ends, early or not, put back the weights of the best epoch.
    """

    def __init__(self, monitor="val_loss", patience=5, min_delta=1e-4, mode="auto", restore_best=True):
        self._monitor = _Monitor(monitor, min_delta, mode)
        self.monitor, self.min_delta, self.mode = monitor, min_delta, mode
        self.patience = check_int(patience, "patience", 0)
        self.restore_best = bool(restore_best)
        self.best = self.best_epoch = self.stopped_epoch = None
        self.wait = 0
        self.best_params = None

    def on_epoch_end(self, epoch, logs):
        value = self._monitor.value("EarlyStopping", logs)
        if self._monitor.improved(value, self.best):
            self.best, self.best_epoch, self.wait = value, epoch, 0
            if self.restore_best:
                self.best_params = [(W.copy(), b.copy()) for W, b in self.network.params]
            return False
        self.wait += 1
        if self.wait > self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self):
        if self.restore_best and self.best_params is not None:
            self.network.params = self.best_params

    def state_dict(self):
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait}

    def load_state_dict(self, state):
        self.best, self.best_epoch, self.wait = state["best"], state["best_epoch"], state["wait"]

    def state_arrays(self):
        if self.best_params is None:
            return {}
        return {f"{name}{index}": array for index, (W, b) in enumerate(self.best_params) for name, array in (("W", W), ("b", b))}

    def load_state_arrays(self, arrays):
        if arrays:
            self.best_params = [(arrays[f"W{i}"], arrays[f"b{i}"]) for i in range(len(arrays) // 2)]


class _Schedule(Callback):
    """Sets the optimizer's lr at the start of each epoch from the lr it had when training began."""

    def __init__(self):
        self.base_lr = None

    def on_train_begin(self, network, optimizer):
        super().on_train_begin(network, optimizer)
        if self.base_lr is None:
            self.base_lr = float(optimizer.lr)

    def on_epoch_begin(self, epoch):
        self.optimizer.lr = self.lr_at(epoch)

    def lr_at(self, epoch):
        raise NotImplementedError

    def state_dict(self):
        return {"base_lr": self.base_lr}

    def load_state_dict(self, state):
        self.base_lr = state["base_lr"]


class StepDecay(_Schedule):
    """lr = base_lr · gamma^⌊(epoch − 1) / step_size⌋ (torch.optim.lr_scheduler.StepLR)."""

    def __init__(self, step_size, gamma=0.1):
        super().__init__()
        self.step_size = check_int(step_size, "step_size", 1)
        self.gamma = check_real(gamma, "gamma", strictly_positive=True)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** ((epoch - 1) // self.step_size)


class ExponentialDecay(_Schedule):
    """lr = base_lr · gamma^(epoch − 1) (torch.optim.lr_scheduler.ExponentialLR)."""

    def __init__(self, gamma):
        super().__init__()
        self.gamma = check_real(gamma, "gamma", strictly_positive=True)

    def lr_at(self, epoch):
        return self.base_lr * self.gamma ** (epoch - 1)


class CosineDecay(_Schedule):
    """lr = min_lr + (base_lr − min_lr)(1 + cos(π·t/T))/2 with t = epoch − 1, held at min_lr after T.

    The closed form of torch.optim.lr_scheduler.CosineAnnealingLR over one half period.
    """

    def __init__(self, T, min_lr=0.0):
        super().__init__()
        self.T = check_int(T, "T", 1)
        self.min_lr = check_real(min_lr, "min_lr", minimum=0.0)

    def lr_at(self, epoch):
        t = min(epoch - 1, self.T)
        return self.min_lr + (self.base_lr - self.min_lr) * (1 + math.cos(math.pi * t / self.T)) / 2


class ReduceLROnPlateau(Callback):
    """Multiply lr by `factor` when `monitor` has not improved for `patience` epochs.

    Follows torch.optim.lr_scheduler.ReduceLROnPlateau: after a reduction, `cooldown` epochs
    pass before counting resumes; lr never goes below `min_lr`.
    """

    def __init__(self, monitor="val_loss", factor=0.1, patience=10, min_delta=1e-4, cooldown=0, min_lr=0.0, mode="auto"):
        self._monitor = _Monitor(monitor, min_delta, mode)
        self.monitor, self.min_delta, self.mode = monitor, min_delta, mode
        self.factor = check_real(factor, "factor", strictly_positive=True)
        if self.factor >= 1:
            raise ValueError(f"factor must be below 1, got {factor}")
        self.patience = check_int(patience, "patience", 0)
        self.cooldown = check_int(cooldown, "cooldown", 0)
        self.min_lr = check_real(min_lr, "min_lr", minimum=0.0)
        self.best, self.wait, self.cooldown_left = None, 0, 0

    def on_epoch_end(self, epoch, logs):
        value = self._monitor.value("ReduceLROnPlateau", logs)
        if self._monitor.improved(value, self.best):
            self.best, self.wait = value, 0
        else:
            self.wait += 1
        if self.cooldown_left > 0:
            self.cooldown_left -= 1
            self.wait = 0
        if self.wait > self.patience:
            self.optimizer.lr = max(float(self.optimizer.lr) * self.factor, self.min_lr)
            self.cooldown_left, self.wait = self.cooldown, 0
        return False

    def state_dict(self):
        return {"best": self.best, "wait": self.wait, "cooldown_left": self.cooldown_left}

    def load_state_dict(self, state):
        self.best, self.wait, self.cooldown_left = state["best"], state["wait"], state["cooldown_left"]

