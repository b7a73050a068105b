"""The epoch loop's one home: every caller that trains (``Network.fit``, ``train_step``, the
scikit-learn estimators) runs its epochs through `run_epoch`, and `EpochLoop` adds what ``fit``
needs around it (shuffling, streaming a memory-mapped X part by part)."""

from __future__ import annotations

import math
import mmap
import sys
from collections import namedtuple

import numpy as np

from ._validation import raise_if_not_finite, to_engine

__all__ = ["EpochLoop", "EpochResult", "is_sparse", "loss_and_gradients", "prepare_sparse", "run_epoch"]

EpochResult = namedtuple("EpochResult", "loss_sum penalty_sum samples failed_batch interrupted")
EpochResult.__doc__ = """What one pass over the rows gives.

loss_sum is Σ over batches of m · the batch's (weighted) mean loss before its update, penalty_sum
the same of the batch's L2 penalty ½ λ Σ‖W‖² / Σw; failed_batch is -1, or the batch whose loss
(not applied) or after which the weights were not finite; interrupted: Ctrl-C at a batch boundary."""

# Arrays mapped from files (np.memmap) are trained on and evaluated this many bytes at a time,
# so that only one part of the file is in memory.
STREAM_CHUNK_BYTES = 64 * 2**20


def is_sparse(X):
    """Whether X is a scipy.sparse matrix or array (without importing scipy when it is not loaded)."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(X)


def prepare_sparse(X, n_in, dtype, name="X"):
    """X, any scipy.sparse matrix or array, as the CSR matrix of `dtype` the engine reads.

    Converted once, never made dense: int64 row pointers and int32 column indices (the engine's
    layout), explicit zeros kept. Raises ValueError for a wrong shape, no rows, or a stored NaN or
    Inf, and TypeError for values that are not real numbers.
    """
    from scipy import sparse

    if X.ndim != 2:
        raise ValueError(f"{name} must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError(f"{name} is empty (0 samples)")
    if X.shape[1] != n_in:
        raise ValueError(f"{name} has {X.shape[1]} features, but the network's input layer takes {n_in}")
    if X.dtype.kind not in "biuf":
        raise TypeError(f"{name} has dtype {X.dtype}; expected real numbers")
    if X.shape[1] >= 2**31 - 1:
        raise ValueError(f"{name} has {X.shape[1]} columns; the engine's sparse input takes fewer than 2**31 - 1")
    csr = sparse.csr_matrix(X, dtype=dtype, copy=False)
    with np.errstate(over="ignore"):
        data = np.ascontiguousarray(csr.data, dtype=dtype)
    if not np.isfinite(data).all():
        bad = int(np.flatnonzero(~np.isfinite(data))[0])
        row = int(np.searchsorted(csr.indptr, bad, side="right")) - 1
        original = sparse.csr_matrix(X)[row].toarray()[0, csr.indices[bad]]
        if np.isfinite(original):
            raise ValueError(f"{name} holds {original:g} at row {row}, column {csr.indices[bad]}, beyond the range of {np.dtype(dtype).name}")
        raise ValueError(f"{name} contains NaN or Inf (first at row {row}, column {csr.indices[bad]})")
    result = sparse.csr_matrix((data, csr.indices.astype(np.int32, copy=False), csr.indptr.astype(np.int64, copy=False)), shape=csr.shape, copy=False)
    return result


def engine_arrays(csr):
    """The (indptr, indices, data) tuple the engine's sparse entry points take."""
    return (
        np.ascontiguousarray(csr.indptr, dtype=np.int64),
        np.ascontiguousarray(csr.indices, dtype=np.int32),
        np.ascontiguousarray(csr.data),
    )


def run_epoch(
    network,
    state,
    X,
    targets,
    order=None,
    batch_size=32,
    *,
    sample_weight=None,
    l2=0.0,
    clip_norm=0.0,
    dropout_seed=0,
    first_batch=0,
    catch_interrupt=False,
    check_rows=False,
):
    """One pass over the rows of X in `order` (or in turn), batch by batch, without returning to Python.

    X is what the engine reads (a C-contiguous array of the network's dtype, or the CSR matrix of
    `prepare_sparse`), targets (n, n_out) likewise; sample_weight (n,) float64 or None weighs
    each row in its batch's mean loss; l2 adds scikit-learn's penalty ½ λ Σ‖W‖² / Σw to every
    batch's loss. Returns an `EpochResult`.
    """
    weight = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=np.float64)
    result = network._train_epoch(
        state, X, targets, order, batch_size, clip_norm, catch_interrupt, dropout_seed, first_batch, check_rows, weight, l2
    )
    loss_sum, samples, failed, interrupted, penalty_sum = result
    return EpochResult(loss_sum, penalty_sum, samples, failed, interrupted)


def loss_and_gradients(network, X, targets, sample_weight=None, l2=0.0):
    """(mean loss, penalty, [(dW, db), ...]) over all of X as one batch, without updating.

    The mean is weighted by sample_weight when given; the penalty is ½ λ Σ‖W‖² / Σw and the
    gradient is that of their sum: scikit-learn's objective for its lbfgs solver.
    """
    weight = None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=np.float64)
    return network._full_gradient(X, targets, weight, l2)


def _streamed(X):
    return isinstance(X, np.memmap)


def _chunk_rows(X, dtype, multiple=1):
    """Rows per part of a streamed X: about STREAM_CHUNK_BYTES once converted, a multiple of `multiple`."""
    rows = STREAM_CHUNK_BYTES // (X.shape[1] * max(dtype.itemsize, X.dtype.itemsize))
    return max(multiple, rows // multiple * multiple)


def _release_pages(X):
    """Let the kernel drop the pages of a memory-mapped X that training has read."""
    while X is not None and getattr(X, "_mmap", None) is None:
        X = X.base if isinstance(X, np.ndarray) else None
    if X is not None and hasattr(mmap, "MADV_DONTNEED"):
        X._mmap.madvise(mmap.MADV_DONTNEED)


def parts(X, dtype, name, rows=None, starts=None):
    """(start, stop, X[start:stop] ready for the engine) over X: one part for an array in memory
    or a sparse matrix, parts of `rows` rows (in the order of `starts`) for a streamed one."""
    if not _streamed(X):
        yield 0, X.shape[0], X
        return
    rows = rows or _chunk_rows(X, dtype)
    for start in range(0, len(X), rows) if starts is None else starts:
        stop = min(start + rows, len(X))
        yield start, stop, to_engine(X[start:stop], dtype, name, first_row=start)
        _release_pages(X)


class EpochLoop:
    """What ``fit`` runs each epoch: X (in memory, sparse, or an np.memmap streamed part by part)
    in a fresh random order, through `run_epoch`, leaving nothing half-trained when it fails.

    `original` is the X as given while the engine has not yet read all its rows, checking them
    as it goes (an array in memory): a bad value is then explained from it, and it is dropped
    after the first complete epoch.
    """

    def __init__(self, network, X, targets, batch_size, shuffle=True, clip_norm=0.0, original=None):
        self.network, self.X, self.targets = network, X, targets
        self.batch_size, self.shuffle, self.clip_norm = batch_size, shuffle, clip_norm
        self.original = original

    @property
    def batches(self):
        return math.ceil(self.X.shape[0] / self.batch_size)

    def run_or_restore(self, state, rng, epoch, lr, catch_interrupt=False):
        """`run`, or on failure the weights and optimizer state of the epoch's start restored and
        then ValueError (a bad value in X) or TrainingDiverged raised."""
        from .network import TrainingDiverged

        saved = ([(W.copy(), b.copy()) for W, b in self.network.params], state.get_state())
        try:
            result = self.run(state, rng, catch_interrupt)
        except ValueError:
            # bad values found in a streamed part, or by the engine in X
            self._restore(saved, state)
            raise
        if result.failed_batch >= 0:
            self._restore(saved, state)
            raise TrainingDiverged(epoch, result.failed_batch + 1, lr)
        if not result.interrupted:
            self.original = None  # the epoch gathered every row of X
        return result

    def _restore(self, saved, state):
        """Leave nothing half-trained; while X is unchecked, name its first bad value as a check
        before training would: it explains more than a divergence or a row number."""
        self.network.params = saved[0]
        state.set_state(saved[1])
        if self.original is not None:
            raise_if_not_finite(self.original[: self.X.shape[0]], self.X, "X")

    def run(self, state, rng, catch_interrupt=False):
        """One epoch; returns an `EpochResult`. While `original` is kept, the engine checks the
        rows as it reads them and a row holding NaN or Inf raises ValueError at its batch."""
        network, X = self.network, self.X
        train = dict(batch_size=self.batch_size, clip_norm=self.clip_norm, catch_interrupt=catch_interrupt)
        if not _streamed(X):
            order = rng.permutation(X.shape[0]) if self.shuffle else None
            seed = network._draw_dropout_seed(rng)
            check_rows = self.original is not None
            return run_epoch(network, state, X, self.targets, order, dropout_seed=seed, check_rows=check_rows, **train)
        rows = _chunk_rows(X, network.dtype, multiple=self.batch_size)
        starts = np.arange(0, len(X), rows)
        if self.shuffle:
            starts = rng.permutation(starts)
        seed = network._draw_dropout_seed(rng)
        total, first_batch = EpochResult(0.0, 0.0, 0, -1, False), 0
        for start, stop, part in parts(X, network.dtype, "X", rows, starts):
            order = rng.permutation(stop - start) if self.shuffle else None
            result = run_epoch(
                network, state, part, self.targets[start:stop], order, dropout_seed=seed, first_batch=first_batch, **train
            )
            failed = first_batch + result.failed_batch if result.failed_batch >= 0 else -1
            total = EpochResult(
                total.loss_sum + result.loss_sum,
                total.penalty_sum + result.penalty_sum,
                total.samples + result.samples,
                failed,
                result.interrupted,
            )
            if failed >= 0 or result.interrupted:
                return total
            first_batch += math.ceil((stop - start) / self.batch_size)
        return total
