"""The public Network: configuration, validation and the epoch loop's control around the C++ engine."""

from __future__ import annotations

import contextlib
import math
import os
import sys
import threading
import time

import numpy as np

from . import _core
from ._training import EpochLoop, _streamed, engine_arrays, is_sparse, parts, prepare_sparse, run_epoch
from ._validation import (
    ACTIVATIONS,
    LOSSES,
    check_choice,
    check_dtype,
    check_int,
    check_finite,
    check_real,
    check_seed,
    engine_ready,
    read_X,
    prepare_targets,
    prepare_X,
    raise_if_not_finite,
    read_numbers,
    to_engine,
)
from .callbacks import Callback
from .optimizers import SGD, Optimizer

__all__ = ["Dense", "History", "Network", "TrainingDiverged"]


class TrainingDiverged(ArithmeticError):
    """The loss became NaN or Inf during training; the batch that produced it was not applied."""

    def __init__(self, epoch, batch, lr, outcome="the weights were restored to those at the start of the epoch"):
        self.epoch, self.batch, self.lr = epoch, batch, lr
        super().__init__(
            f"training diverged: the loss or the weights became NaN or Inf at epoch {epoch}, batch {batch} "
            f"(learning rate {lr:g}); {outcome}; try a lower learning rate"
        )


class Dense:
    """A fully connected layer: ``a = activation(x @ W + b)`` with W of shape (n_in, n_out).

    Parameters
    ----------
    n_in, n_out : int
        Number of inputs and outputs, positive.
    activation : str, default "identity"
        One of identity, sigmoid, tanh, relu, leaky_relu (slope 0.01), softmax (output layer only).
    dropout : float, default 0.0
        Fraction of the layer's outputs zeroed at random in each training batch, the others
        scaled by 1 / (1 - dropout) (inverted dropout); inference uses every output unscaled.
        Hidden layers only, in [0, 1).
    """

    def __init__(self, n_in, n_out, activation="identity", dropout=0.0):
        self.n_in = check_int(n_in, "n_in", 1)
        self.n_out = check_int(n_out, "n_out", 1)
        self.activation = check_choice(activation, ACTIVATIONS, "activation")
        self.dropout = check_real(dropout, "dropout", minimum=0.0)
        if self.dropout >= 1:
            raise ValueError(f"dropout must be below 1, got {self.dropout}")

    def __repr__(self):
        dropout = f", dropout={self.dropout!r}" if self.dropout else ""
        return f"Dense({self.n_in}, {self.n_out}, activation={self.activation!r}{dropout})"

    def __eq__(self, other):
        return isinstance(other, Dense) and (self.n_in, self.n_out, self.activation, self.dropout) == (
            other.n_in,
            other.n_out,
            other.activation,
            other.dropout,
        )

    __hash__ = None


class History:
    """What ``fit`` returns: ``history`` maps each metric to its value at the end of every epoch."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.interrupted = False

    def _append(self, epoch, logs):
        self.epoch.append(epoch)
        for key, value in logs.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, metrics={list(self.history)})"


INITIALIZERS = {
    # the textbook's first, "large" initialization: W ~ N(0, 1)
    "normal": lambda rng, n_in, n_out: rng.standard_normal((n_in, n_out)),
    # W ~ N(0, 1/n_in): z = x·W keeps about the variance of x
    "scaled_normal": lambda rng, n_in, n_out: rng.standard_normal((n_in, n_out)) / math.sqrt(n_in),
    # Glorot & Bengio (2010): W ~ U(−a, a) with a = √(6 / (n_in + n_out))
    "glorot_uniform": lambda rng, n_in, n_out: rng.uniform(-1, 1, (n_in, n_out)) * math.sqrt(6 / (n_in + n_out)),
    # He et al. (2015), for ReLU layers: W ~ N(0, 2/n_in)
    "he_normal": lambda rng, n_in, n_out: rng.standard_normal((n_in, n_out)) * math.sqrt(2 / n_in),
}


class _EpochProgress:
    """A tqdm bar for one epoch, fed every 0.1 s from the engine's progress counters by a thread
    of its own while the epoch runs without the GIL."""

    def __init__(self, read, total_batches, description):
        from tqdm import tqdm

        self._read = read
        self._bar = tqdm(total=total_batches, desc=description, unit="batch", leave=False, file=sys.stderr, dynamic_ncols=True)
        self._started = time.perf_counter()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc_info):
        self._done.set()
        self._thread.join()
        self._bar.close()

    def _poll(self):
        while not self._done.wait(0.1):
            batches, samples, loss_sum = self._read()
            self._bar.n = batches
            if samples:
                rate = samples / max(time.perf_counter() - self._started, 1e-9)
                self._bar.set_postfix_str(f"loss {loss_sum / samples:.4f}, {rate:,.0f} samples/s", refresh=False)
            self._bar.refresh()


def _array_keys(arrays):
    """The optimizer buffer names among a checkpoint's arrays ("optimizer.<name>.<layer>")."""
    return {name.split(".")[1] for name in arrays if name.startswith("optimizer.")}


def _layers_from_spec(layers, activation, output_activation, dropout=0.0):
    if isinstance(layers, (str, bytes)) or not hasattr(layers, "__len__"):
        raise TypeError("layers must be a list of layer sizes or of fastgd.Dense")
    if len(layers) and all(isinstance(layer, Dense) for layer in layers):
        if dropout:
            raise ValueError("give dropout to each fastgd.Dense, not to the Network, when layers are Dense")
        for previous, layer in zip(layers, layers[1:]):
            if previous.n_out != layer.n_in:
                raise ValueError(
                    f"layers do not chain: {previous!r} gives {previous.n_out} outputs "
                    f"but {layer!r} takes {layer.n_in} inputs"
                )
        return list(layers)
    if any(isinstance(layer, Dense) for layer in layers):
        raise TypeError("layers must be all sizes or all fastgd.Dense, not a mix")
    sizes = [check_int(size, "layer size", 1) for size in layers]
    if len(sizes) < 2:
        raise ValueError(f"a network needs at least an input and an output size, got {list(layers)!r}")
    activations = [activation] * (len(sizes) - 2) + [output_activation]
    rates = [dropout] * (len(sizes) - 2) + [0.0]
    return [Dense(*shape, act, rate) for *shape, act, rate in zip(sizes, sizes[1:], activations, rates)]


class BaseNetwork:
    """Configuration, validation and loop control shared by `Network` and the NumPy twin.

    Subclasses provide the arithmetic: ``_build``, ``_param_arrays``, ``_predict``,
    ``_evaluate``, ``_train_epoch``, ``_gradients`` and the optimizer-state hooks.
    """

    # Whether _train_epoch(..., check_rows=True) finds NaN or Inf in the rows it reads, so that
    # fit need not check X before training.
    _checks_rows_while_training = False

    def __init__(
        self,
        layers,
        activation="relu",
        output_activation="softmax",
        loss="cross_entropy",
        dtype="float32",
        seed=None,
        init="scaled_normal",
        bias_init="zeros",
        dropout=0.0,
    ):
        self.init = check_choice(init, tuple(INITIALIZERS), "init")
        self.bias_init = check_choice(bias_init, ("zeros", "normal"), "bias_init")
        layers = _layers_from_spec(layers, activation, output_activation, check_real(dropout, "dropout", minimum=0.0))
        self._configure(layers, loss, dtype, seed)
        self._initialize(np.random.default_rng(self.seed))

    @classmethod
    def _uninitialized(cls, layers, loss, dtype):
        """A network of `layers` whose parameters are left for the caller to fill."""
        network = cls.__new__(cls)
        network._configure(_layers_from_spec(list(layers), None, None), loss, dtype, None)
        return network

    def _configure(self, layers, loss, dtype, seed):
        self.layers = layers
        self.loss = check_choice(loss, LOSSES, "loss")
        self.dtype = check_dtype(dtype)
        self.seed = check_seed(seed)
        for layer in self.layers[:-1]:
            if layer.activation == "softmax":
                raise ValueError("softmax is only allowed on the output layer")
        if self.layers[-1].dropout:
            raise ValueError("dropout is only allowed on hidden layers, not on the output layer")
        if self.loss == "cross_entropy" and self.layers[-1].activation not in ("softmax", "sigmoid"):
            raise ValueError(
                f"cross_entropy needs a softmax or sigmoid output layer, got {self.layers[-1].activation!r}"
            )
        self._check_fits_in_memory()
        self.metadata = {}
        # Seeds the dropout masks of train_step; fit draws them from its own seeded generator.
        self._dropout_rng = np.random.default_rng(None if self.seed is None else [self.seed, 1])
        self._build()

    def _check_fits_in_memory(self):
        n_params = sum((layer.n_in + 1) * layer.n_out for layer in self.layers)
        needed = n_params * self.dtype.itemsize
        try:
            available = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (AttributeError, ValueError, OSError):
            return
        if needed > available:
            raise MemoryError(
                f"a network of sizes {self.sizes} has {n_params:,} parameters, {needed / 2**30:,.1f} GiB "
                f"in {self.dtype.name}: more than this machine's {available / 2**30:,.1f} GiB of memory"
            )

    @property
    def sizes(self):
        """Layer sizes ``[n_in, n_1, ..., n_out]``."""
        return [self.layers[0].n_in] + [layer.n_out for layer in self.layers]

    @property
    def has_dropout(self):
        """Whether any layer drops units in training."""
        return any(layer.dropout for layer in self.layers)

    def _draw_dropout_seed(self, rng):
        return int(rng.integers(2**63)) if self.has_dropout else 0

    @property
    def n_in(self):
        return self.layers[0].n_in

    @property
    def n_out(self):
        return self.layers[-1].n_out

    def _initialize(self, rng):
        # Drawn in float64 whatever the dtype, so float32 and float64 networks start alike.
        for layer, (W, b) in zip(self.layers, self._param_arrays()):
            W[...] = INITIALIZERS[self.init](rng, layer.n_in, layer.n_out)
            b[...] = rng.standard_normal(layer.n_out) if self.bias_init == "normal" else 0

    @property
    def params(self):
        """``[(W, b), ...]`` per layer: W (n_in, n_out), b (n_out,), views of the network's own memory."""
        return list(self._param_arrays())

    @params.setter
    def params(self, values):
        if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
            raise TypeError(f"params must be a list of (W, b) pairs, got {type(values).__name__}")
        values = list(values)
        if len(values) != len(self.layers):
            raise ValueError(f"expected {len(self.layers)} (W, b) pairs, got {len(values)}")
        staged = []
        for index, (pair, current) in enumerate(zip(values, self._param_arrays())):
            if isinstance(pair, (str, bytes)) or not hasattr(pair, "__len__") or len(pair) != 2:
                raise TypeError(f"params[{index}] must be a (W, b) pair, got {pair!r:.60}")
            for name, value, old in zip(("W", "b"), pair, current):
                label = f"params[{index}] {name}"
                new = read_numbers(value, label)
                if new.dtype.kind not in "biuf":
                    raise TypeError(f"{label} has dtype {new.dtype}; expected real numbers")
                if new.shape != old.shape:
                    raise ValueError(f"{label} has shape {new.shape}, expected {old.shape}")
                staged.append(to_engine(new.reshape(-1, old.shape[-1]), self.dtype, label))
        for new, old in zip(staged, (array for pair in self._param_arrays() for array in pair)):
            old[...] = new.reshape(old.shape)

    def predict(self, X, out=None):
        """Outputs of the network for X.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_in), or (n_in,) for one sample
            A C-contiguous array of the network's dtype goes to the engine without conversion.
        out : ndarray, optional
            Where to write the result: C-contiguous, of the network's dtype and of the shape
            returned. Saves an allocation per call in hot loops.

        Returns
        -------
        ndarray of shape (n_samples, n_out), or (n_out,) for a 1-D X, in the network's dtype
        """
        if engine_ready(X, self.n_in, self.dtype):
            single = X.ndim == 1
            X = X.reshape(1, -1) if single else X
            check_finite(X, "X")
        elif is_sparse(X):
            X, single = prepare_sparse(X, self.n_in, self.dtype), False
        else:
            X, single = prepare_X(X, self.n_in, self.dtype, allow_1d=True)
        shape = (self.n_out,) if single else (X.shape[0], self.n_out)
        if out is None:
            out = np.empty(shape, dtype=self.dtype)
        elif not (
            isinstance(out, np.ndarray) and out.dtype == self.dtype and out.shape == shape
            and out.flags.c_contiguous and out.flags.aligned and out.flags.writeable
        ):
            raise ValueError(
                f"out must be a writeable C-contiguous {self.dtype.name} array of shape {shape}, got "
                + (f"{out.dtype} {out.shape}" if isinstance(out, np.ndarray) else type(out).__name__)
            )
        self._predict_into(out.reshape(X.shape[0], self.n_out), X)
        return out

    def evaluate(self, X, y):
        """Mean loss over (X, y), and accuracy when y names one class per sample.

        Returns
        -------
        dict
            ``{"loss": float, "accuracy": float}``; ``accuracy`` only for classification.
        """
        X = self._prepare_input(X, "X", convert=not _streamed(X))
        targets, labels = prepare_targets(y, X.shape[0], self.n_out, self.dtype)
        return self._evaluate_prepared(X, targets, labels, "X")

    def _prepare_input(self, X, name, convert=True, check=True):
        """X for the engine: a sparse matrix as `prepare_sparse` gives it, else as `prepare_X` does."""
        if is_sparse(X):
            return prepare_sparse(X, self.n_in, self.dtype, name)
        return prepare_X(X, self.n_in, self.dtype, name=name, convert=convert, check=check)[0]

    def _evaluate_prepared(self, X, targets, labels, name="X_val"):
        classify = labels is not None and (self.n_out > 1 or self.layers[-1].activation == "sigmoid")
        loss_sum, correct = 0.0, 0
        for start, stop, chunk in parts(X, self.dtype, name):
            out, part_loss = self._evaluate(chunk, targets[start:stop])
            loss_sum += part_loss
            if classify:
                predicted = out.argmax(axis=1) if self.n_out > 1 else (out[:, 0] > 0.5)
                correct += int(np.count_nonzero(predicted == labels[start:stop]))
        result = {"loss": loss_sum / X.shape[0]}
        if classify:
            result["accuracy"] = correct / X.shape[0]
        return result

    def _epoch_progress(self, show, total_batches, description):
        reader = self._progress_reader()
        if reader is not None:
            self._reset_progress()
        if not show:
            return contextlib.nullcontext()
        return _EpochProgress(reader, total_batches, description)

    def train_step(self, X, y, optimizer):
        """One update on one batch (all of X); returns that batch's mean loss before the update."""
        X = self._prepare_input(X, "X")
        targets, _ = prepare_targets(y, X.shape[0], self.n_out, self.dtype)
        state = self._optimizer_state(optimizer)
        dropout_seed = self._draw_dropout_seed(self._dropout_rng)
        result = run_epoch(self, state, X, targets, None, X.shape[0], dropout_seed=dropout_seed)
        if result.failed_batch >= 0:
            # No copy is kept per step: a batch whose loss is not finite is never applied, and
            # an update that overflows the weights is reported as such.
            outcome = "the batch was not applied" if result.samples == 0 else "its update made the weights NaN or Inf"
            raise TrainingDiverged(1, 1, optimizer.lr, outcome)
        return result.loss_sum / result.samples

    def fit(
        self,
        X,
        y,
        epochs=1,
        batch_size=32,
        optimizer=None,
        validation_data=None,
        validation_split=0.0,
        shuffle=True,
        seed=None,
        verbose=1,
        callbacks=(),
        early_stopping=None,
        lr_schedule=None,
        clip_norm=None,
        checkpoint=None,
        resume=None,
    ):
        """Train by mini-batch gradient descent.

        Parameters
        ----------
        X : array-like of shape (n_samples, n_in)
            An ``np.memmap`` (for example from ``np.load(path, mmap_mode="r")``) is streamed:
            read, converted, checked and trained on about 64 MB at a time, the pages read
            released after each part, so files larger than memory train in bounded memory.
            Shuffling then visits the parts in random order and the rows of each part in random
            order. The same holds for a memory-mapped ``X_val``.
        y : array-like of shape (n_samples,) with class labels, or (n_samples, n_out) targets
        epochs : int, default 1
            The epoch to train up to; with `resume`, counting the epochs already done.
        batch_size : int, default 32
            Samples per update; the last batch of an epoch holds the remainder.
        optimizer : Optimizer, optional
            Defaults to ``SGD(lr=0.1)``. Its state (momenta, step count) carries over between calls.
        validation_data : tuple (X_val, y_val), optional
            Evaluated after every epoch into ``val_loss`` (and ``val_accuracy``).
        validation_split : float, default 0.0
            Instead of `validation_data`: hold out this fraction of the samples, the last ones.
        shuffle : bool, default True
            Visit the samples in a new random order each epoch.
        seed : int, optional
            Seed of the shuffling order and of the dropout masks.
        verbose : int, default 1
            0 is silent; 1 prints one line per epoch and, when stderr is a terminal, a progress
            bar during it (batches done, samples/s, running loss, time left); 2 prints only the
            lines.
        callbacks : sequence of Callback
            Called around every epoch; one whose ``on_epoch_end`` returns True ends training.
        early_stopping : EarlyStopping, optional
        lr_schedule : Callback, optional
            StepDecay, ExponentialDecay, CosineDecay or ReduceLROnPlateau.
        clip_norm : float, optional
            Scale each batch's gradient down to this global 2-norm when it is longer.
        checkpoint : str or os.PathLike, optional
            Write weights, optimizer state, epoch, shuffling state, callbacks' state and
            history there at the end of every epoch (atomically).
        resume : str or os.PathLike, optional
            Continue from such a checkpoint: the run ends with exactly the weights of an
            uninterrupted one (same data, arguments, machine and thread count).

        Returns
        -------
        History
            ``history.history["loss"]`` is the mean over each epoch of every batch's loss,
            taken before that batch's update. ``history.interrupted`` is True when Ctrl-C
            stopped training; the network then holds the weights of the last batch completed.

        Raises
        ------
        TrainingDiverged
            When a loss or the weights become NaN or Inf; the weights and optimizer state are
            first restored to those at the start of that epoch.
        ValueError
            When X or X_val holds NaN, Inf or a value beyond the range of the network's dtype,
            naming the first one. The C++ engine finds them in X as the first epoch reads its
            rows, and then restores the weights and optimizer state of the epoch's start.
        """
        # An array in memory goes to an engine that checks its rows as the first epoch gathers
        # them, sparing a pass over all of X; the twin checks it here.
        X, targets, validation, original = self._fit_data(X, y, validation_data, validation_split)
        epochs = check_int(epochs, "epochs", 1)
        verbose = check_int(verbose, "verbose", 0)
        clip_norm = 0.0 if clip_norm is None else check_real(clip_norm, "clip_norm", strictly_positive=True)
        batch_size = min(check_int(batch_size, "batch_size", 1), X.shape[0])
        loop = EpochLoop(self, X, targets, batch_size, bool(shuffle), clip_norm, original)
        optimizer = SGD(lr=0.1) if optimizer is None else optimizer
        state = self._optimizer_state(optimizer)
        callbacks = [c for c in (lr_schedule, *callbacks, early_stopping) if c is not None]
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise TypeError(f"callbacks must be fastgd.Callback instances, got {callback!r}")
        rng = np.random.default_rng(check_seed(seed))
        run = {"batch_size": batch_size, "shuffle": bool(shuffle), "clip_norm": clip_norm}
        history = History()
        for callback in callbacks:
            callback.on_train_begin(self, optimizer)
        first_epoch = 1
        if resume is not None:
            first_epoch = self._resume(resume, optimizer, rng, history, callbacks, run) + 1
        catch_interrupt = threading.current_thread() is threading.main_thread()
        try:
            for epoch in range(first_epoch, epochs + 1):
                started = time.perf_counter()
                for callback in callbacks:
                    callback.on_epoch_begin(epoch)
                state = self._optimizer_state(optimizer)
                show_bar = verbose == 1 and self._progress_reader() is not None and sys.stderr.isatty()
                with self._epoch_progress(show_bar, loop.batches, f"epoch {epoch}/{epochs}"):
                    result = loop.run_or_restore(state, rng, epoch, optimizer.lr, catch_interrupt)
                if result.interrupted:
                    history.interrupted = True
                    break
                logs = {"loss": result.loss_sum / result.samples}
                if validation is not None:
                    scores = self._evaluate_prepared(*validation)
                    logs.update({f"val_{key}": value for key, value in scores.items()})
                history._append(epoch, logs)
                self._record_training(epoch, logs, optimizer, batch_size)
                if verbose:
                    metrics = " - ".join(f"{key}: {value:.4f}" for key, value in logs.items())
                    print(f"epoch {epoch}/{epochs} - {metrics} - {time.perf_counter() - started:.2f}s", flush=True)
                stop = False
                for callback in callbacks:
                    stop = bool(callback.on_epoch_end(epoch, logs)) or stop
                if checkpoint is not None:
                    self._write_checkpoint(checkpoint, epoch, optimizer, rng, history, callbacks, run)
                if stop:
                    break
        except KeyboardInterrupt:
            history.interrupted = True
        for callback in callbacks:
            callback.on_train_end()
        return history

    def _fit_data(self, X, y, validation_data, validation_split):
        """fit's (X, targets, validation, original): X and the targets as the engine reads them,
        validation as (X_val, targets, labels) or None, and the X as given when the engine is left
        to check its rows as the first epoch reads them (None when X was checked here)."""
        # An array in memory goes to an engine that checks its rows as the first epoch gathers
        # them, sparing a pass over all of X; the twin checks it here.
        in_memory = not _streamed(X) and not is_sparse(X)
        original = read_X(X, self.dtype, "X") if self._checks_rows_while_training and in_memory else None
        X = self._prepare_input(X if original is None else original, "X", convert=not _streamed(X), check=original is None)
        targets, labels = prepare_targets(y, X.shape[0], self.n_out, self.dtype)
        validation_split = check_real(validation_split, "validation_split", minimum=0.0)
        if validation_split:
            if validation_data is not None:
                raise ValueError("give validation_data or validation_split, not both")
            n = X.shape[0]
            n_val = int(round(n * validation_split))
            if not 0 < n_val < n:
                raise ValueError(f"validation_split={validation_split} leaves {n_val} of {n} samples for validation")
            if original is not None:
                # validation only reads its part: check it here
                raise_if_not_finite(original[-n_val:], X[-n_val:], "X", first_row=n - n_val)
            validation = (X[-n_val:], targets[-n_val:], None if labels is None else labels[-n_val:])
            return X[:-n_val], targets[:-n_val], validation, original
        if validation_data is None:
            return X, targets, None, original
        if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
            raise TypeError("validation_data must be a tuple (X_val, y_val)")
        X_val = self._prepare_input(validation_data[0], "X_val", convert=not _streamed(validation_data[0]))
        validation = (X_val,) + prepare_targets(
            validation_data[1], X_val.shape[0], self.n_out, self.dtype, name="y_val", x_name="X_val"
        )
        return X, targets, validation, original

    def _write_checkpoint(self, path, epoch, optimizer, rng, history, callbacks, run):
        from . import io

        tensors = {}
        for index, (W, b) in enumerate(self.params):
            tensors[f"layers.{index}.W"], tensors[f"layers.{index}.b"] = W, b
        optimizer_scalars = {}
        for key, value in optimizer._state_for(self).get_state().items():
            if isinstance(value, list):
                for index, array in enumerate(value):
                    tensors[f"optimizer.{key}.{index}"] = array
                optimizer_scalars[key] = len(value)
            else:
                optimizer_scalars[key] = value
        callback_states = []
        for position, callback in enumerate(callbacks):
            callback_states.append({"class": type(callback).__name__, "state": callback.state_dict()})
            for name, array in callback.state_arrays().items():
                tensors[f"callbacks.{position}.{name}"] = array
        document = {
            "architecture": io.architecture(self),
            "epoch": epoch,
            "run": run,
            "history": {"epoch": history.epoch, "history": history.history},
            "rng": rng.bit_generator.state,
            "optimizer": {
                "class": type(optimizer).__name__,
                "hyperparameters": optimizer._hyperparameters(),
                "state": optimizer_scalars,
            },
            "callbacks": callback_states,
            "metadata": self.metadata,
        }
        io.save_checkpoint(path, document, tensors)

    def _resume(self, path, optimizer, rng, history, callbacks, run):
        """Load a checkpoint written by fit into this network, optimizer, rng, history and callbacks."""
        from . import io

        document, arrays = io.load_checkpoint(path)
        if document["architecture"] != io.architecture(self):
            raise ValueError(f"{path} holds a checkpoint of another network: {document['architecture']}")
        if document.get("run") != run:
            raise ValueError(f"resume with the same batch_size, shuffle and clip_norm as the checkpoint: {document.get('run')}")
        saved = document["optimizer"]
        if saved["class"] != type(optimizer).__name__:
            raise ValueError(f"{path} was written with {saved['class']}, not {type(optimizer).__name__}")
        for key, value in saved["hyperparameters"].items():
            setattr(optimizer, key, tuple(value) if isinstance(value, list) else value)
        self.params = [(arrays[f"layers.{i}.W"], arrays[f"layers.{i}.b"]) for i in range(len(self.layers))]
        state = optimizer._state_for(self)
        state.set_state(
            {
                key: [arrays[f"optimizer.{key}.{i}"] for i in range(value)] if key in _array_keys(arrays) else value
                for key, value in saved["state"].items()
            }
        )
        if len(document["callbacks"]) != len(callbacks) or any(
            entry["class"] != type(callback).__name__ for entry, callback in zip(document["callbacks"], callbacks)
        ):
            raise ValueError(f"resume with the same callbacks as the checkpoint: {[c['class'] for c in document['callbacks']]}")
        for position, (entry, callback) in enumerate(zip(document["callbacks"], callbacks)):
            callback.load_state_dict(entry["state"])
            prefix = f"callbacks.{position}."
            callback.load_state_arrays({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})
        rng.bit_generator.state = document["rng"]
        history.epoch = list(document["history"]["epoch"])
        history.history = {key: list(values) for key, values in document["history"]["history"].items()}
        self.metadata = document.get("metadata") or {}
        return int(document["epoch"])

    def _record_training(self, epoch, logs, optimizer, batch_size):
        training = self.metadata.setdefault("training", {"epochs": 0})
        training["epochs"] += 1
        training.update(last_epoch=dict(logs), optimizer=repr(optimizer), batch_size=batch_size)

    def save(self, path, metadata=None):
        """Write the network to `path` (see `fastgd.io` for the format); atomic and pickle-free."""
        from .io import save

        save(self, path, metadata)

    def to_onnx(self, path, opset=17):
        """Export as a standard ONNX graph (Gemm and activation ops); needs ``fastgd[onnx]``."""
        from .interop import to_onnx

        return to_onnx(self, path, opset)

    def gradients(self, X, y, dropout_seed=None):
        """Mean loss over (X, y) and its gradient ``[(dW, db), ...]``, without updating.

        Without `dropout_seed` every unit takes part, as in inference. With it, the loss and
        gradient are those of a training batch through the dropout masks that seed gives the
        first batch of an epoch.
        """
        X = self._prepare_input(X, "X")
        targets, _ = prepare_targets(y, X.shape[0], self.n_out, self.dtype)
        if dropout_seed is not None:
            dropout_seed = check_int(dropout_seed, "dropout_seed", 0)
            if dropout_seed >= 2**64:
                raise ValueError(f"dropout_seed must be below 2**64, got {dropout_seed}")
        return self._gradients(X, targets, dropout_seed)

    def _progress_reader(self):
        """A function giving (batches, samples, loss_sum) trained so far in this epoch, or None."""
        return None

    def _reset_progress(self):
        pass

    def _optimizer_state(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            what = f"the class {optimizer.__name__}" if isinstance(optimizer, type) else repr(optimizer)
            raise TypeError(f"optimizer must be a fastgd optimizer such as fastgd.SGD(lr=0.1), got {what}")
        return optimizer._state_for(self)

    def __repr__(self):
        layers = ", ".join(repr(layer) for layer in self.layers)
        return f"{type(self).__name__}([{layers}], loss={self.loss!r}, dtype={self.dtype.name!r})"


class Network(BaseNetwork):
    """A dense neural network whose forward pass, backpropagation and updates run in C++.

    Parameters
    ----------
    layers : list of int or list of Dense
        Layer sizes ``[n_in, n_1, ..., n_out]``, or the layers themselves.
    activation : str, default "relu"
        Hidden layers' activation when `layers` are sizes.
    output_activation : str, default "softmax"
        Output layer's activation when `layers` are sizes.
    loss : {"cross_entropy", "mse"}, default "cross_entropy"
        ``mse`` is the mean over the batch of ½‖a − y‖². ``cross_entropy`` needs a softmax
        output (−Σ y log a per sample) or a sigmoid output (binary cross-entropy summed over
        outputs).
    dtype : {"float32", "float64"}, default "float32"
    seed : int, optional
        Seed of the initial weights.
    dropout : float, default 0.0
        Dropout rate of every hidden layer when `layers` are sizes (see `Dense`); dropout
        masks are drawn from ``fit``'s seed.
    init : {"scaled_normal", "normal", "glorot_uniform", "he_normal"}, default "scaled_normal"
        Weights drawn from N(0, 1/n_in), N(0, 1) (the textbook's "large" start),
        U(±√(6/(n_in + n_out))) or N(0, 2/n_in).
    bias_init : {"zeros", "normal"}, default "zeros"
        Biases at 0, or drawn from N(0, 1) as the textbook does.

    Examples
    --------
    >>> net = fastgd.Network([784, 30, 10], activation="sigmoid", output_activation="sigmoid",
    ...                      loss="mse", seed=0)
    >>> history = net.fit(X, y, epochs=30, batch_size=10, optimizer=fastgd.SGD(lr=3.0))
    """

    _checks_rows_while_training = True

    @classmethod
    def from_torch(cls, source, activation=None, output_activation=None, loss=None, dtype=None):
        """A Network with the weights of a PyTorch ``nn.Sequential`` of Linear layers, or of its state_dict.

        See `fastgd.interop.from_torch`.
        """
        from .interop import from_torch

        return from_torch(source, activation, output_activation, loss, dtype)

    @classmethod
    def from_sklearn(cls, model, dtype="float64"):
        """A Network with the weights of a fitted scikit-learn MLPClassifier or MLPRegressor.

        See `fastgd.interop.from_sklearn`.
        """
        from .interop import from_sklearn

        return from_sklearn(model, dtype)

    def _build(self):
        core = _core.Network32 if self.dtype == np.float32 else _core.Network64
        self._core = core(
            self.sizes, [layer.activation for layer in self.layers], self.loss, [layer.dropout for layer in self.layers]
        )
        self._views = [(self._core.weight(i), self._core.bias(i)) for i in range(len(self.layers))]

    def _param_arrays(self):
        return self._views

    def predict(self, X, out=None):
        # With out= and arrays the engine takes as they are, it checks them itself (dtype,
        # shapes, finiteness) and the call costs no Python-level validation.
        if out is not None and self._core.predict_direct(out, X):
            return out
        return super().predict(X, out)

    predict.__doc__ = BaseNetwork.predict.__doc__

    def _predict_into(self, out, X):
        if is_sparse(X):
            self._core.predict_sparse(out, engine_arrays(X))
        else:
            self._core.predict(out, X)

    def _evaluate(self, X, targets):
        out = np.empty((X.shape[0], self.n_out), dtype=self.dtype)
        if is_sparse(X):
            return out, self._core.evaluate_sparse(out, engine_arrays(X), targets)
        return out, self._core.evaluate(out, X, targets)

    def _train_epoch(
        self, state, X, targets, order, batch_size, clip_norm, catch_interrupt, dropout_seed, first_batch,
        check_rows=False, sample_weight=None, l2=0.0,
    ):
        train, X = (self._core.train_epoch_sparse, engine_arrays(X)) if is_sparse(X) else (self._core.train_epoch, X)
        return train(
            state, X, targets, order, batch_size, clip_norm, catch_interrupt, dropout_seed, first_batch, check_rows,
            sample_weight, l2,
        )

    def _full_gradient(self, X, targets, sample_weight, l2):
        if is_sparse(X):
            return self._core.full_gradient_sparse(engine_arrays(X), targets, sample_weight, l2)
        return self._core.full_gradient(X, targets, sample_weight, l2)

    def _progress_reader(self):
        return self._core.progress

    def _reset_progress(self):
        self._core.reset_progress()

    def _gradients(self, X, targets, dropout_seed):
        if not is_sparse(X):
            return self._core.gradients(X, targets, dropout_seed)
        if dropout_seed is not None:
            raise ValueError("gradients with dropout_seed needs a dense X")
        loss, _, grads = self._full_gradient(X, targets, None, 0.0)
        return loss, grads

    def _new_optimizer_state(self, optimizer):
        if optimizer._core_class is None:
            raise TypeError(f"unsupported optimizer {optimizer!r}")
        state = getattr(_core, optimizer._core_class + ("32" if self.dtype == np.float32 else "64"))
        return state(**optimizer._core_arguments(), sizes=self.sizes)

    def _sync_optimizer_state(self, state, optimizer):
        state.set_hyperparameters(**optimizer._core_arguments())
