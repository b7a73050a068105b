"""Loop control: schedules, early stopping, callbacks, validation_split, clipping, divergence,
Ctrl-C, and checkpoints that resume to exactly the weights of an uninterrupted run."""

import math
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import fastgd
from fastgd import ModelFormatError


def problem(n=240, n_in=8, n_out=3, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, n_in)).astype(np.float32)
    y = (X[:, :n_out].argmax(axis=1) + (rng.random(n) < 0.1)) % n_out
    return X, y


def network(seed=0, dtype="float32", dropout=0.0):
    return fastgd.Network([8, 16, 3], activation="tanh", dtype=dtype, seed=seed, dropout=dropout)


class RecordLR(fastgd.Callback):
    def __init__(self):
        self.lrs = []

    def on_epoch_begin(self, epoch):
        self.lrs.append(self.optimizer.lr)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (fastgd.StepDecay(step_size=2, gamma=0.5), [0.1, 0.1, 0.05, 0.05, 0.025]),
        (fastgd.ExponentialDecay(gamma=0.9), [0.1 * 0.9**k for k in range(5)]),
        (fastgd.CosineDecay(T=4, min_lr=0.01), [0.01 + 0.09 * (1 + math.cos(math.pi * min(k, 4) / 4)) / 2 for k in range(5)]),
    ],
    ids=["step", "exponential", "cosine"],
)
def test_schedules_set_the_learning_rate_each_epoch(schedule, expected):
    X, y = problem()
    record = RecordLR()
    network().fit(X, y, epochs=5, optimizer=fastgd.SGD(lr=0.1), lr_schedule=schedule, callbacks=[record], verbose=0)
    np.testing.assert_allclose(record.lrs, expected, rtol=1e-12)


def test_scheduled_learning_rate_is_the_one_the_engine_uses():
    X, y = problem()
    a, b = network(), network()
    a.fit(X, y, epochs=3, shuffle=False, optimizer=fastgd.SGD(lr=0.2), lr_schedule=fastgd.StepDecay(1, 0.5), verbose=0)
    opt = fastgd.SGD(lr=0.2)
    for lr in (0.2, 0.1, 0.05):
        opt.lr = lr
        b.fit(X, y, epochs=1, shuffle=False, optimizer=opt, verbose=0)
    np.testing.assert_array_equal(a.params[0][0], b.params[0][0])


def test_reduce_on_plateau_cuts_the_rate_when_the_metric_stalls():
    schedule = fastgd.ReduceLROnPlateau(monitor="val_loss", factor=0.5, patience=1, min_delta=0.0, min_lr=0.02)
    opt = fastgd.SGD(lr=0.1)
    schedule.on_train_begin(network(), opt)
    lrs = []
    for epoch, value in enumerate([1.0, 0.9, 0.95, 0.96, 0.97, 0.98, 0.99, 1.0], start=1):
        schedule.on_epoch_end(epoch, {"val_loss": value})
        lrs.append(opt.lr)
    # as torch's: a cut once more than `patience` epochs in a row fail to improve, then the floor
    np.testing.assert_allclose(lrs, [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02])


def test_early_stopping_stops_and_restores_the_best_weights():
    X, y = problem()
    net = network()
    snapshots = {}

    class Snapshot(fastgd.Callback):
        def on_epoch_end(self, epoch, logs):
            snapshots[epoch] = (logs["val_loss"], [W.copy() for W, _ in self.network.params])

    stopper = fastgd.EarlyStopping(monitor="val_loss", patience=2, min_delta=0.0, restore_best=True)
    # a learning rate this high makes the validation loss bounce, so it stops early
    history = net.fit(X, y, epochs=60, batch_size=8, optimizer=fastgd.SGD(lr=2.0), validation_split=0.25,
                      callbacks=[Snapshot()], early_stopping=stopper, seed=0, verbose=0)
    assert stopper.stopped_epoch is not None and len(history.epoch) == stopper.stopped_epoch < 60
    best_epoch = min(snapshots, key=lambda e: snapshots[e][0])
    assert stopper.best_epoch == best_epoch
    np.testing.assert_array_equal(net.params[0][0], snapshots[best_epoch][1][0])


def test_early_stopping_needs_the_metric_it_monitors():
    X, y = problem()
    with pytest.raises(ValueError, match="EarlyStopping monitors 'val_loss', which fit does not report"):
        network().fit(X, y, epochs=2, early_stopping=fastgd.EarlyStopping(), verbose=0)


def test_callback_returning_true_ends_training_cleanly():
    X, y = problem()

    class StopAtThree(fastgd.Callback):
        def on_epoch_end(self, epoch, logs):
            return epoch == 3

    history = network().fit(X, y, epochs=10, callbacks=[StopAtThree()], verbose=0)
    assert history.epoch == [1, 2, 3] and not history.interrupted


def test_validation_split_holds_out_the_last_samples():
    X, y = problem(n=200)
    a, b = network(), network()
    ha = a.fit(X, y, epochs=2, validation_split=0.1, seed=1, verbose=0)
    hb = b.fit(X[:180], y[:180], epochs=2, validation_data=(X[180:], y[180:]), seed=1, verbose=0)
    assert ha.history == hb.history
    with pytest.raises(ValueError, match="not both"):
        a.fit(X, y, validation_split=0.1, validation_data=(X, y), verbose=0)
    with pytest.raises(ValueError, match="leaves 0 of 200 samples"):
        a.fit(X, y, validation_split=0.001, verbose=0)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_clipping_matches_the_twin_and_bounds_each_step(dtype):
    X, y = problem()
    cpp, twin = network(dtype=dtype), fastgd.reference.Network([8, 16, 3], activation="tanh", dtype=dtype, seed=0)
    kwargs = dict(epochs=2, batch_size=16, seed=3, clip_norm=0.05, verbose=0)
    cpp.fit(X, y, optimizer=fastgd.SGD(lr=0.5), **kwargs)
    twin.fit(X, y, optimizer=fastgd.SGD(lr=0.5), **kwargs)
    tolerance = dict(rtol=1e-4, atol=1e-6) if dtype == "float32" else dict(rtol=1e-9, atol=1e-12)
    for (W, b), (tW, tb) in zip(cpp.params, twin.params):
        np.testing.assert_allclose(W, tW, **tolerance)
        np.testing.assert_allclose(b, tb, **tolerance)
    net = network(dtype="float64")
    before = [p.copy() for pair in net.params for p in pair]
    net.fit(X[:16], y[:16], epochs=1, batch_size=16, optimizer=fastgd.SGD(lr=1.0), clip_norm=0.01, verbose=0)
    step = np.sqrt(sum(np.sum((p - q) ** 2) for p, q in zip([p for pair in net.params for p in pair], before)))
    assert step == pytest.approx(0.01, rel=1e-4)


def test_divergence_restores_the_weights_and_names_epoch_and_batch():
    X, y = problem()
    net = fastgd.Network([8, 16, 3], activation="relu", output_activation="identity", loss="mse", seed=0)
    targets = np.eye(3, dtype=np.float32)[y] * 1e3
    net.fit(X, targets, epochs=1, optimizer=fastgd.SGD(lr=1e-4), verbose=0)
    good = [W.copy() for W, _ in net.params]
    opt = fastgd.SGD(lr=1e3, momentum=0.9)
    with pytest.raises(fastgd.TrainingDiverged, match=r"at epoch 1, batch \d+ \(learning rate 1000\); the weights were restored") as caught:
        net.fit(X, targets, epochs=5, optimizer=opt, verbose=0)
    assert caught.value.epoch == 1 and caught.value.batch >= 1
    for W, saved in zip(net.params, good):
        np.testing.assert_array_equal(W[0], saved)
    assert opt.state(net)["steps"] == 0
    assert np.isfinite(net.predict(X)).all()


def test_ctrl_c_stops_at_a_batch_boundary_and_returns_the_history():
    # SIGINT arrives in the middle of the third epoch, while the engine holds no GIL.
    child = textwrap.dedent(
        """
        import os, signal, threading, time
        import numpy as np
        import fastgd

        X = np.random.default_rng(0).standard_normal((60000, 100)).astype(np.float32)
        y = np.arange(60000) % 10
        net = fastgd.Network([100, 512, 10], seed=0)

        class SendSigintDuringEpoch3(fastgd.Callback):
            def on_epoch_begin(self, epoch):
                if epoch == 3:
                    threading.Timer(0.05, os.kill, (os.getpid(), signal.SIGINT)).start()

        history = net.fit(X, y, epochs=50, batch_size=16, callbacks=[SendSigintDuringEpoch3()], verbose=0)
        print(history.interrupted, len(history.epoch), bool(np.isfinite(net.predict(X[:5])).all()))
        """
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "2", "True"]


def checkpointed_run(tmp_path, epochs, resume=False, name="run.fgdckpt", optimizer=None, dtype="float32"):
    X, y = problem(n=300)
    net = network(seed=5, dtype=dtype, dropout=0.25)
    optimizer = optimizer or fastgd.SGD(lr=0.3, momentum=0.9, nesterov=True, weight_decay=1e-3)
    history = net.fit(
        X, y, epochs=epochs, batch_size=16, optimizer=optimizer, validation_split=0.2, seed=11, verbose=0,
        lr_schedule=fastgd.ReduceLROnPlateau(patience=1, factor=0.5),
        early_stopping=fastgd.EarlyStopping(patience=100, min_delta=0.0),
        checkpoint=tmp_path / name, resume=(tmp_path / name) if resume else None,
    )
    return net, history


def test_checkpoint_resume_ends_with_identical_weights(tmp_path):
    straight, straight_history = checkpointed_run(tmp_path, epochs=8, name="straight.fgdckpt")
    checkpointed_run(tmp_path, epochs=3)
    resumed, resumed_history = checkpointed_run(tmp_path, epochs=8, resume=True)
    for (W, b), (W2, b2) in zip(straight.params, resumed.params):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)
    assert resumed_history.history == straight_history.history
    assert resumed_history.epoch == list(range(1, 9))


def test_killed_run_resumes_to_the_same_weights(tmp_path):
    straight, _ = checkpointed_run(tmp_path, epochs=6, name="straight.fgdckpt")
    # The child is killed with SIGKILL just after writing its fourth checkpoint.
    child = textwrap.dedent(
        f"""
        import os, pathlib, signal, sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import fastgd.io
        from test_training import checkpointed_run

        real_save, written = fastgd.io.save_checkpoint, []
        def save_then_die(*args):
            real_save(*args)
            written.append(1)
            if len(written) == 4:
                os.kill(os.getpid(), signal.SIGKILL)
        fastgd.io.save_checkpoint = save_then_die
        checkpointed_run(pathlib.Path({str(tmp_path)!r}), epochs=6)
        """
    )
    done = subprocess.run([sys.executable, "-c", child], capture_output=True, timeout=300)
    assert done.returncode == -signal.SIGKILL, done.stderr.decode()
    resumed, history = checkpointed_run(tmp_path, epochs=6, resume=True)
    assert history.epoch == list(range(1, 7))
    for (W, b), (W2, b2) in zip(straight.params, resumed.params):
        np.testing.assert_array_equal(W, W2)
        np.testing.assert_array_equal(b, b2)


def test_resume_refuses_a_mismatched_run(tmp_path):
    checkpointed_run(tmp_path, epochs=2)
    X, y = problem(n=300)
    with pytest.raises(ValueError, match="checkpoint of another network"):
        fastgd.Network([8, 7, 3], seed=0).fit(X, y, epochs=3, resume=tmp_path / "run.fgdckpt", verbose=0)
    with pytest.raises(ValueError, match="same batch_size, shuffle and clip_norm"):
        network(dropout=0.25).fit(X, y, epochs=3, batch_size=32, validation_split=0.2, resume=tmp_path / "run.fgdckpt", verbose=0)


def test_damaged_checkpoint_is_refused(tmp_path):
    checkpointed_run(tmp_path, epochs=2)
    path = tmp_path / "run.fgdckpt"
    path.write_bytes(path.read_bytes()[:-5])
    X, y = problem(n=300)
    with pytest.raises(ModelFormatError, match="truncated"):
        network(dropout=0.25).fit(X, y, epochs=3, batch_size=16, validation_split=0.2, resume=path, verbose=0)
    with pytest.raises(ModelFormatError, match="not a fastgd-model file"):
        fastgd.load(path)


def test_train_step_reports_a_batch_it_did_not_apply():
    net = fastgd.Network([3, 2], output_activation="identity", loss="mse", dtype="float64", seed=0)
    before = net.params[0][0].copy()
    X, y = np.ones((4, 3)), np.full((4, 2), 1e300)
    with pytest.raises(fastgd.TrainingDiverged, match="the batch was not applied"):
        net.train_step(X, y, fastgd.SGD(lr=0.1))
    np.testing.assert_array_equal(net.params[0][0], before)
