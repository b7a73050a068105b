"""The fastgd command (python -m fastgd): train, evaluate, predict, info, and its errors.

Most tests run the command in a subprocess, as a user would, with this process's environment.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastgd
from fastgd.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
EPOCH_LINE = re.compile(r"^epoch (\d+)/(\d+) - loss: [\d.]+ - val_loss: [\d.]+ - val_accuracy: ([\d.]+) - [\d.]+s$")
RESULT_LINE = re.compile(r"^held-out loss ([\d.]+), accuracy ([\d.]+)% on ([\d,]+) samples after (\d+) epochs? \([\d.]+s\)")


def fastgd_command(*args, cwd=None, timeout=120):
    """Run ``python -m fastgd args`` and return the CompletedProcess (text output)."""
    return subprocess.run(
        [sys.executable, "-m", "fastgd", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, env=os.environ.copy(), timeout=timeout,
    )


def assert_fails(result, status, message):
    """The command failed with `status` and one line on stderr containing `message`, no traceback."""
    assert "Traceback" not in result.stderr, result.stderr
    assert result.returncode == status, (result.returncode, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("fastgd"), lines[0]
    assert message in lines[0], lines[0]


def held_out_accuracy(stdout):
    match = RESULT_LINE.match(stdout.splitlines()[-1])
    assert match, stdout
    return float(match.group(2)) / 100


@pytest.fixture(scope="module")
def builtin():
    return fastgd.datasets.load_builtin()


@pytest.fixture(scope="module")
def files(tmp_path_factory, builtin):
    """Small data files cut from the built-in set, and some broken ones."""
    folder = tmp_path_factory.mktemp("cli_data")
    (X_train, y_train), (X_test, _) = builtin
    np.savez(folder / "digits.npz", X=X_train[:600], y=y_train[:600])
    np.save(folder / "images.npy", X_test[:25])
    np.savetxt(folder / "images.csv", X_test[:25], delimiter=",", fmt="%.9g")
    np.savez(folder / "twenty_features.npz", X=X_train[:50, :20], y=y_train[:50])
    np.savez(folder / "labels_to_12.npz", X=X_train[:50], y=np.arange(50) % 13)
    X_nan = X_train[:50].copy()
    X_nan[7, 300] = np.nan
    np.savez(folder / "nan.npz", X=X_nan, y=y_train[:50])
    (folder / "bad_row.csv").write_text("a,b,label\n0.5,0.25,1\n0.5,oops,0\n")
    (folder / "notes.txt").write_text("not data\n")
    (folder / "text.npy").write_text("not an array\n")
    np.save(folder / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (folder / "out").mkdir()
    return folder


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A model trained by ``fastgd train --epochs 1 --save``, and that command's result."""
    folder = tmp_path_factory.mktemp("cli_model")
    result = fastgd_command("train", "--epochs", 1, "--save", folder / "model.fgd")
    assert result.returncode == 0, result.stderr
    return folder / "model.fgd", result


# ---------------------------------------------------------------------------------------------
# train


def test_default_train_runs_offline_and_reaches_90_percent(tmp_path):
    started = time.perf_counter()
    result = fastgd_command("train", cwd=tmp_path)
    seconds = time.perf_counter() - started
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("data: the built-in MNIST subset, 8,000 images for training, its 2,000 test images")
    assert lines[1].startswith("network: 784-100-10, relu hidden layers, softmax output, cross_entropy loss, float32, seed 0")
    assert lines[2].startswith("training: Adam(lr=0.001")
    epochs = [EPOCH_LINE.match(line) for line in lines[3:-1]]
    assert all(epochs) and [int(m.group(1)) for m in epochs] == [1, 2, 3, 4, 5], lines
    assert held_out_accuracy(result.stdout) > 0.90
    assert RESULT_LINE.match(lines[-1]).group(3) == "2,000"
    assert seconds < 60
    assert list(tmp_path.iterdir()) == []


def test_train_one_epoch_saves_and_reports_plausible_accuracy(trained):
    path, result = trained
    assert 0.85 < held_out_accuracy(result.stdout) < 1.0
    assert result.stdout.splitlines()[-1].endswith(f"; model saved to {path}")
    net = fastgd.load(path)
    assert net.sizes == [784, 100, 10]
    assert net.metadata["dataset"] == "builtin"
    assert net.metadata["command"] == f"fastgd train --epochs 1 --save {path}"
    assert net.metadata["held_out"]["samples"] == 2000


def test_train_on_an_npz_file_holds_out_a_fifth(files, tmp_path):
    result = fastgd_command(
        "train", "--dataset", files / "digits.npz", "--layers", "784,32,10", "--optimizer", "sgd", "--lr", 0.1,
        "--momentum", 0.5, "--batch-size", 16, "--epochs", 2, "--dropout", 0.1, "--dtype", "float64",
        "--threads", 1, "--save", tmp_path / "m.fgd",
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"data: {files / 'digits.npz'}, 480 rows for training, a random 120 held out; 784 features, 10 classes")
    assert "784-32-10" in lines[1] and "dropout 0.1" in lines[1] and "float64" in lines[1]
    assert "SGD(lr=0.1, momentum=0.5" in lines[2] and lines[2].endswith("batches of 16, 2 epochs, 1 thread")
    assert RESULT_LINE.match(lines[-1]).group(3) == "120"
    net = fastgd.load(tmp_path / "m.fgd")
    assert net.dtype == np.float64 and [layer.dropout for layer in net.layers] == [0.1, 0.0]


def test_train_on_a_csv_file(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((200, 3))
    y = (X[:, 0] + X[:, 1] > 0).astype(int)
    rows = "\n".join(",".join(f"{v:.6f}" for v in x) + f",{label}" for x, label in zip(X, y))
    (tmp_path / "points.csv").write_text("x0,x1,x2,class\n" + rows + "\n")
    result = fastgd_command("train", "--dataset", tmp_path / "points.csv", "--epochs", 20, "--lr", 0.01, "--quiet")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert held_out_accuracy(result.stdout) > 0.8


def test_quiet_prints_only_the_result_line(files):
    result = fastgd_command("train", "--dataset", files / "digits.npz", "--epochs", 2, "--quiet")
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1 and RESULT_LINE.match(result.stdout)
    assert result.stderr == ""


def test_json_prints_one_object_per_epoch_then_the_result(files, tmp_path):
    result = fastgd_command(
        "train", "--dataset", files / "digits.npz", "--epochs", 3, "--json", "--save", tmp_path / "m.fgd"
    )
    assert result.returncode == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) == 4
    for epoch, document in enumerate(documents[:3], start=1):
        assert set(document) == {"epoch", "loss", "val_loss", "val_accuracy", "seconds"}
        assert document["epoch"] == epoch and 0 <= document["val_accuracy"] <= 1
    final = documents[-1]
    assert final["test_samples"] == 120 and final["epochs"] == 3 and final["interrupted"] is False
    assert final["test_accuracy"] == documents[2]["val_accuracy"]
    assert final["saved"] == str(tmp_path / "m.fgd")


def test_plot_writes_learning_curves(files, tmp_path):
    pytest.importorskip("matplotlib")
    result = fastgd_command("train", "--dataset", files / "digits.npz", "--epochs", 2, "--plot", tmp_path / "curves.png")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "curves.png").read_bytes().startswith(PNG_SIGNATURE)


def test_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(files, tmp_path):
    common = ("train", "--dataset", files / "digits.npz", "--dropout", 0.2, "--threads", 1)
    full = fastgd_command(*common, "--epochs", 4, "--save", tmp_path / "full.fgd", "--quiet")
    first = fastgd_command(*common, "--epochs", 2, "--checkpoint", tmp_path / "run.ckpt", "--quiet")
    assert full.returncode == 0 and first.returncode == 0, full.stderr + first.stderr
    resumed = fastgd_command(
        *common, "--epochs", 4, "--resume", tmp_path / "run.ckpt", "--checkpoint", tmp_path / "run.ckpt",
        "--save", tmp_path / "resumed.fgd",
    )
    assert resumed.returncode == 0, resumed.stderr
    assert f"resuming from {tmp_path / 'run.ckpt'} after epoch 2" in resumed.stdout
    epochs = [int(m.group(1)) for m in map(EPOCH_LINE.match, resumed.stdout.splitlines()) if m]
    assert epochs == [3, 4]
    for (W, b), (W_resumed, b_resumed) in zip(fastgd.load(tmp_path / "full.fgd").params, fastgd.load(tmp_path / "resumed.fgd").params):
        np.testing.assert_array_equal(W, W_resumed)
        np.testing.assert_array_equal(b, b_resumed)


def test_ctrl_c_stops_training_saves_the_model_and_exits_130(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-m", "fastgd", "train", "--epochs", "1000", "--json", "--save", str(tmp_path / "m.fgd")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy(),
    )
    try:
        first_epoch = json.loads(process.stdout.readline())
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert "fastgd train: training interrupted during epoch" in stderr
    final = json.loads(stdout.splitlines()[-1])
    assert final["interrupted"] is True and final["epochs"] >= first_epoch["epoch"]
    assert fastgd.load(tmp_path / "m.fgd").metadata["interrupted"] is True


# ---------------------------------------------------------------------------------------------
# evaluate, predict, info


def test_evaluate_prints_loss_accuracy_and_confusion_matrix(trained):
    path, training = trained
    result = fastgd_command("evaluate", path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"{path} on the 2,000 test images of the built-in MNIST subset"
    accuracy = held_out_accuracy(training.stdout)
    assert lines[1].startswith("loss ") and f"accuracy {accuracy:.2%}" in lines[1]
    assert lines[3] == "confusion matrix (rows: true class, columns: predicted class)"
    assert lines[4].split() == ["true", *map(str, range(10)), "right"]
    rows = [list(map(int, line.split()[1:11])) for line in lines[5:15]]
    assert np.sum(rows) == 2000
    assert np.trace(rows) == round(accuracy * 2000)


def test_evaluate_json_and_plot(trained, files, tmp_path):
    pytest.importorskip("matplotlib")
    path, _ = trained
    result = fastgd_command("evaluate", path, "--dataset", files / "digits.npz", "--json", "--plot", tmp_path / "confusion.png")
    assert result.returncode == 0, result.stderr
    (document,) = [json.loads(line) for line in result.stdout.splitlines()]
    assert document["samples"] == 600 and np.sum(document["confusion_matrix"]) == 600
    X, y = fastgd.datasets.load_npz(files / "digits.npz")
    assert document["accuracy"] == pytest.approx(fastgd.load(path).evaluate(X, y)["accuracy"])
    assert (tmp_path / "confusion.png").read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize("source, output", [("images.npy", "out.npy"), ("images.csv", "out.csv")])
def test_predict_writes_the_model_outputs(trained, files, tmp_path, source, output):
    path, _ = trained
    result = fastgd_command("predict", path, files / source, "-o", tmp_path / output)
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"wrote 25 x 10 outputs to {tmp_path / output}\n"
    written = np.load(tmp_path / output) if output.endswith(".npy") else np.loadtxt(tmp_path / output, delimiter=",")
    assert written.shape == (25, 10)
    expected = fastgd.load(path).predict(np.load(files / "images.npy"))
    np.testing.assert_allclose(written, expected, rtol=1e-6, atol=1e-9)


def test_predict_classes(trained, files, tmp_path):
    path, _ = trained
    result = fastgd_command("predict", path, files / "images.npy", "-o", tmp_path / "digits.npy", "--classes")
    assert result.returncode == 0, result.stderr
    written = np.load(tmp_path / "digits.npy")
    assert written.shape == (25,) and written.dtype == np.int64
    np.testing.assert_array_equal(written, fastgd.load(path).predict(np.load(files / "images.npy")).argmax(axis=1))


def test_info_shows_architecture_and_training_record(trained):
    path, _ = trained
    result = fastgd_command("info", path)
    assert result.returncode == 0, result.stderr
    text = result.stdout
    assert text.startswith(f"{path}: a 784-100-10 network, float32, loss cross_entropy\nparameters: 79,510 (310.6 KiB)\n")
    assert re.search(r"^ +1 +784 +100 +relu +- +78,500$", text, re.M)
    assert re.search(r"^ +2 +100 +10 +softmax +- +1,010$", text, re.M)
    assert "  dataset: builtin\n" in text and f"  command: fastgd train --epochs 1 --save {path}\n" in text
    assert "    epochs: 1\n" in text and "fastgd_version: " in text
    document = json.loads(fastgd_command("info", path, "--json").stdout)
    assert document["sizes"] == [784, 100, 10] and document["parameters"] == 79510
    assert document["metadata"]["training"]["epochs"] == 1


def test_main_returns_the_exit_status_in_process(trained, capsys):
    path, _ = trained
    assert main(["info", str(path)]) == 0
    assert "784-100-10" in capsys.readouterr().out
    assert main(["train", "--epochs", "0"]) == 2
    assert capsys.readouterr().err == "fastgd train: error: argument --epochs: must be at least 1, got 0 (see 'fastgd train --help')\n"
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == f"fastgd {fastgd.__version__}\n"


def test_info_escapes_metadata_that_could_drive_the_terminal(tmp_path, capsys):
    net = fastgd.Network([2, 2], seed=0)
    net.save(tmp_path / "m.fgd", metadata={"note": "\x1b[2Jcleared", "nested": {"line": "one\ntwo"}})
    assert main(["info", str(tmp_path / "m.fgd")]) == 0
    text = capsys.readouterr().out
    assert "\x1b" not in text
    assert '  note: "\\u001b[2Jcleared"\n' in text and '    line: "one\\ntwo"\n' in text


def test_resuming_a_checkpoint_written_from_python_says_so(files, tmp_path):
    X, y = fastgd.datasets.load_npz(files / "digits.npz")
    fastgd.Network([784, 100, 10], seed=0).fit(X, y, epochs=1, checkpoint=tmp_path / "run.ckpt", verbose=0)
    result = fastgd_command("train", "--dataset", files / "digits.npz", "--resume", tmp_path / "run.ckpt")
    assert_fails(result, 1, f"{tmp_path / 'run.ckpt'} was not written by fastgd train --checkpoint (its callbacks are [])")


@pytest.mark.parametrize("command", [[], ["train"], ["evaluate"], ["predict"], ["info"]])
def test_help(command, capsys):
    assert main([*command, "--help"]) == 0
    text = capsys.readouterr().out
    assert text.startswith(f"usage: {' '.join(['fastgd', *command])} ")
    assert "--help" in text


def test_console_script_when_installed():
    executable = shutil.which("fastgd")
    if executable is None:
        pytest.skip("the fastgd console script is not installed (pip install .)")
    result = subprocess.run([executable, "--version"], capture_output=True, text=True, env=os.environ.copy())
    assert result.returncode == 0 and result.stdout == f"fastgd {fastgd.__version__}\n"


# ---------------------------------------------------------------------------------------------
# errors: one line on stderr, status 2 for usage errors, 1 for failures while running


# {data}: the folder of the `files` fixture; {model}: the trained model; {tmp}: the test's tmp_path
USAGE_ERRORS = {
    "no command": ("", "fastgd: error: the following arguments are required: COMMAND (see 'fastgd --help')"),
    "unknown command": ("fit", "argument COMMAND: invalid choice: 'fit'"),
    "negative lr": ("train --lr -1", "fastgd train: error: argument --lr: must be positive, got -1"),
    "nan lr": ("train --lr nan", "argument --lr: expected a finite number, got 'nan'"),
    "epochs not a number": ("train --epochs two", "argument --epochs: expected an integer, got 'two'"),
    "dropout 1": ("train --dropout 1", "argument --dropout: must be below 1.0, got 1"),
    "layers not numbers": ("train --layers 784,x,10", "argument --layers: expected comma-separated layer sizes"),
    "one layer size": ("train --layers 784", "argument --layers: give at least an input and an output size"),
    "unknown optimizer": ("train --optimizer lbfgs", "argument --optimizer: invalid choice: 'lbfgs'"),
    "softmax hidden": ("train --activation softmax", "argument --activation: invalid choice: 'softmax'"),
    "quiet and json": ("train --quiet --json", "argument --json: not allowed with argument --quiet"),
    "momentum with adam": ("train --momentum 0.9", "--momentum goes with --optimizer sgd or rmsprop, not adam"),
    "data-dir without mnist": ("train --data-dir {tmp}", "--data-dir goes with --dataset mnist, not --dataset builtin"),
    "no mnist folder": ("train --dataset mnist --data-dir {tmp}/nowhere", "--data-dir {tmp}/nowhere: no such folder"),
    "no dataset file": ("train --dataset {tmp}/missing.npz", "--dataset {tmp}/missing.npz: no such file"),
    "dataset of unknown kind": ("train --dataset {data}/notes.txt", "expected builtin, mnist, or a .npz or .csv file"),
    "layers in != features": (
        "train --dataset {data}/twenty_features.npz --layers 784,100,10",
        "--layers starts with 784 inputs, but {data}/twenty_features.npz has 20 features per sample",
    ),
    "layers out != classes": (
        "train --dataset {data}/digits.npz --layers 784,100,5",
        "--layers ends with 5 outputs, but {data}/digits.npz has 10 classes (labels 0..9)",
    ),
    "cross_entropy on relu": (
        "train --dataset {data}/digits.npz --output-activation relu",
        "cross_entropy needs a softmax or sigmoid output layer, got 'relu'",
    ),
    "save into no folder": ("train --save {tmp}/nowhere/m.fgd", "the folder {tmp}/nowhere does not exist"),
    "save onto a folder": ("train --save {data}/out", "--save {data}/out: is a folder; give a file name"),
    "plot of unknown kind": ("train --plot {tmp}/curves.jpg", "expected a file ending in .png, .svg, .pdf"),
    "no checkpoint": ("train --resume {tmp}/run.ckpt", "--resume {tmp}/run.ckpt: no such file"),
    "no model": ("evaluate {tmp}/missing.fgd", "fastgd evaluate: error: MODEL {tmp}/missing.fgd: no such file"),
    "predict from npz": ("predict {model} {data}/digits.npz -o {tmp}/p.npy", "expected a .npy or .csv file"),
    "predict into txt": ("predict {model} {data}/images.npy -o {tmp}/p.txt", "expected a file ending in .npy, .csv"),
    "predict without -o": ("predict {model} {data}/images.npy", "the following arguments are required: -o/--output"),
}

FAILURES = {
    "truncated model": ("evaluate {tmp}/damaged.fgd", "fastgd evaluate: error: {tmp}/damaged.fgd: truncated"),
    "not a model": ("info {data}/images.npy", "fastgd info: error: {data}/images.npy: not a fastgd-model file"),
    "model as checkpoint": ("train --resume {model}", "{model}: not a fastgd-checkpoint file"),
    "csv with a bad cell": (
        "train --dataset {data}/bad_row.csv", "{data}/bad_row.csv, line 3: column 2 ('b'): 'oops' is not a number"
    ),
    "nan feature": ("train --dataset {data}/nan.npz", "{data}/nan.npz: sample 7 (counting from 0) holds nan in column 300"),
    "label beyond the outputs": (
        "evaluate {model} --dataset {data}/labels_to_12.npz",
        "{data}/labels_to_12.npz has label 10 at sample 10 (counting from 0), but {model} has 10 outputs (classes 0..9)",
    ),
    "features != model inputs": (
        "evaluate {model} --dataset {data}/twenty_features.npz",
        "{data}/twenty_features.npz has 20 features per sample, but {model} takes 784",
    ),
    "object array": (
        "predict {model} {data}/objects.npy -o {tmp}/p.npy",
        "objects.npy: holds Python objects; reading them would need pickle, which fastgd never uses",
    ),
    "text as npy": (
        "predict {model} {data}/text.npy -o {tmp}/p.npy", "text.npy: not a NumPy .npy file (no .npy signature at its start)"
    ),
    "diverged": (
        "train --dataset {data}/digits.npz --optimizer sgd --lr 1e30 --epochs 3 --quiet",
        "fastgd train: error: training diverged: the loss or the weights became NaN or Inf at epoch 1",
    ),
}


def fill(template, files, trained, tmp_path):
    return template.format(data=files, model=trained[0], tmp=tmp_path)


@pytest.mark.parametrize("args, message", USAGE_ERRORS.values(), ids=USAGE_ERRORS.keys())
def test_usage_error(args, message, files, trained, tmp_path):
    result = fastgd_command(*fill(args, files, trained, tmp_path).split())
    assert_fails(result, 2, fill(message, files, trained, tmp_path))
    assert result.stderr.endswith("--help')\n")
    assert result.stdout == ""


@pytest.mark.parametrize("args, message", FAILURES.values(), ids=FAILURES.keys())
def test_failure_while_running(args, message, files, trained, tmp_path):
    (tmp_path / "damaged.fgd").write_bytes(trained[0].read_bytes()[:-100])
    result = fastgd_command(*fill(args, files, trained, tmp_path).split())
    assert_fails(result, 1, fill(message, files, trained, tmp_path))
    assert not (tmp_path / "p.npy").exists()


def test_resuming_with_other_options_fails(files, tmp_path):
    first = fastgd_command("train", "--dataset", files / "digits.npz", "--epochs", 1, "--checkpoint", tmp_path / "run.ckpt", "--quiet")
    assert first.returncode == 0, first.stderr
    result = fastgd_command(
        "train", "--dataset", files / "digits.npz", "--epochs", 2, "--resume", tmp_path / "run.ckpt", "--layers", "784,50,10"
    )
    assert_fails(result, 1, "holds a checkpoint of another network")


@pytest.mark.parametrize("command", ["train", "evaluate"])
def test_plot_without_matplotlib_says_how_to_install_it(trained, tmp_path, command):
    model, _ = trained
    hide_matplotlib = "import sys; sys.modules['matplotlib'] = None; from fastgd.cli import main; sys.exit(main(sys.argv[1:]))"
    args = ["train", "--epochs", "1"] if command == "train" else ["evaluate", str(model)]
    result = subprocess.run(
        [sys.executable, "-c", hide_matplotlib, *args, "--plot", str(tmp_path / "picture.png")],
        capture_output=True, text=True, env=os.environ.copy(),
    )
    assert_fails(result, 1, f'fastgd {command}: error: --plot needs matplotlib: pip install "fastgd[plot]"')
    assert result.stdout == "" and not (tmp_path / "picture.png").exists()
