"""The ``fastgd`` command: train, evaluate, predict with and inspect networks from the shell.

``main(argv)`` runs one command and returns its exit status:

- 0: done;
- 1: a failure found while running: a damaged model file, bad data contents, labels or
  features that do not fit the model, training that diverged, matplotlib missing for ``--plot``;
- 2: a usage error: an unknown option, a bad option value, a path on the command line that
  does not exist;
- 130: stopped by Ctrl-C (``train`` still evaluates and saves what it has).

Every error is one line on stderr, ``fastgd <command>: error: <what and where>``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import sys
import textwrap
import time
from pathlib import Path

import numpy as np

from . import datasets, plotting
from ._core import __version__, get_num_threads, set_num_threads
from ._validation import ACTIVATIONS, LOSSES
from .callbacks import Callback
from .io import _finite_json, write_atomically
from .io import load as load_model
from .io import load_checkpoint
from .network import Network, TrainingDiverged
from .optimizers import SGD, Adagrad, Adam, AdamW, RMSprop

__all__ = ["main", "build_parser"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130

DEFAULT_HIDDEN = 100
DEFAULT_EPOCHS = 5
DEFAULT_BATCH_SIZE = 32
DEFAULT_SEED = 0
TEST_FRACTION = 0.2
PLOT_SUFFIXES = (".png", ".svg", ".pdf")
NPY_SIGNATURE = b"\x93NUMPY"

# The class and default learning rate of each --optimizer. SGD also gets momentum 0.9 unless
# told otherwise, and RMSprop 0.001 rather than its class's 0.01, which overshoots on MNIST
# (93.3 % against 94.5 % after the default 5 epochs on the built-in set).
OPTIMIZERS = {
    "sgd": (SGD, 0.05),
    "adam": (Adam, 1e-3),
    "adamw": (AdamW, 1e-3),
    "rmsprop": (RMSprop, 1e-3),
    "adagrad": (Adagrad, 1e-2),
}
DEFAULT_OPTIMIZER = "adam"
DEFAULT_SGD_MOMENTUM = 0.9


class CommandError(Exception):
    """A problem to report in one line; `status` is the exit status (1 failure, 2 usage)."""

    def __init__(self, message, status=EXIT_FAILURE):
        super().__init__(message)
        self.status = status


def _usage_error(message):
    return CommandError(message, EXIT_USAGE)


# ---------------------------------------------------------------------------------------------
# Command-line parsing


class _Parser(argparse.ArgumentParser):
    """An ArgumentParser that reports a usage error in one line instead of the usage text."""

    def error(self, message):
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _HelpFormatter(argparse.HelpFormatter):
    """Wraps descriptions paragraph by paragraph, and keeps paragraphs with indented lines (examples) as written."""

    def __init__(self, prog):
        super().__init__(prog, max_help_position=30)

    def _fill_text(self, text, width, indent):
        paragraphs = []
        for paragraph in text.split("\n\n"):
            lines = paragraph.splitlines()
            if any(line.startswith(" ") for line in lines):
                paragraphs.append("\n".join(indent + line for line in lines))
            else:
                paragraphs.append(textwrap.fill(" ".join(paragraph.split()), width, initial_indent=indent, subsequent_indent=indent))
        return "\n\n".join(paragraphs)


def _number_type(kind, minimum=None, below=None, strictly_positive=False):
    """An argparse type: a `kind` (int or float) number within the bounds, or a one-line reason."""

    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from None
        if kind is float and not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
        if strictly_positive and value <= 0:
            raise argparse.ArgumentTypeError(f"must be positive, got {text}")
        if minimum is not None and value < minimum:
            raise argparse.ArgumentTypeError(f"must be at least {minimum}, got {text}")
        if below is not None and value >= below:
            raise argparse.ArgumentTypeError(f"must be below {below}, got {text}")
        return value

    return parse


def _layer_sizes_type(text):
    sizes = []
    for part in text.split(","):
        try:
            size = int(part)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected comma-separated layer sizes such as 784,100,10, got {text!r}"
            ) from None
        if size < 1:
            raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {size} in {text!r}")
        sizes.append(size)
    if len(sizes) < 2:
        raise argparse.ArgumentTypeError(f"give at least an input and an output size, such as 784,10; got {text!r}")
    return sizes


def _add_dataset_options(parser, what):
    parser = parser.add_argument_group("data")
    parser.add_argument(
        "--dataset", default="builtin", metavar="NAME|PATH",
        help=f"{what}: 'builtin' (the MNIST test images shipped with fastgd, split 8,000 / 2,000; "
        "the default), 'mnist' (the 60,000 / 10,000 MNIST files, see --data-dir) "
        "or a .npz file (arrays X and y) or .csv file (label in the last column)",
    )
    parser.add_argument(
        "--data-dir", type=Path, metavar="DIR",
        help="folder of the four MNIST IDX files for --dataset mnist "
        "(default: $FASTGD_DATA/mnist, else fastgd/mnist in the user's cache folder, ~/.cache)",
    )
    parser.add_argument(
        "--download", action="store_true", help="with --dataset mnist: fetch the MNIST files into that folder when missing"
    )


def _add_threads_option(parser):
    parser.add_argument(
        "--threads", type=_number_type(int, minimum=1), metavar="N",
        help="threads for the matrix products (default: $OMP_NUM_THREADS or every core)",
    )


def build_parser():
    """The argument parser of the ``fastgd`` command and its subcommands."""
    parser = _Parser(
        prog="fastgd",
        formatter_class=_HelpFormatter,
        description="Train, evaluate and use dense neural networks (fastgd: C++/Eigen under a NumPy API).",
        epilog="Run 'fastgd COMMAND --help' for a command's options.\n\n"
        "examples:\n"
        "  fastgd train --save mnist.fgd          # about 95 % on the built-in MNIST subset, offline\n"
        "  fastgd evaluate mnist.fgd\n"
        "  fastgd predict mnist.fgd images.npy -o probabilities.npy\n"
        "  fastgd info mnist.fgd",
    )
    parser.add_argument("--version", action="version", version=f"fastgd {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    train = commands.add_parser(
        "train", formatter_class=_HelpFormatter, help="train a network and save it",
        description="Train a network on a dataset, report its loss and accuracy on the held-out part "
        "after every epoch and at the end, and optionally save it. Without options it trains "
        f"a 784-{DEFAULT_HIDDEN}-10 ReLU network with softmax and cross-entropy on the built-in MNIST subset "
        f"(Adam, lr 0.001, batches of {DEFAULT_BATCH_SIZE}, {DEFAULT_EPOCHS} epochs, seed {DEFAULT_SEED}), offline.",
        epilog="The held-out part is the dataset's test split for builtin (2,000 images) and mnist "
        f"(10,000); for a .npz or .csv file it is a random {TEST_FRACTION:.0%} of the rows, drawn from "
        "--seed. It is evaluated after every epoch (val_loss, val_accuracy) and at the end.\n\n"
        "examples:\n"
        "  fastgd train --save mnist.fgd --plot curves.png\n"
        "  fastgd train --dataset mnist --data-dir ~/data/mnist --layers 784,256,256,10 --dropout 0.2 --epochs 20\n"
        "  fastgd train --dataset iris.csv --layers 4,16,3 --optimizer sgd --lr 0.1 --epochs 50\n"
        "  fastgd train --epochs 20 --checkpoint run.ckpt    # after Ctrl-C: the same command plus --resume run.ckpt",
    )
    train.set_defaults(run=_train)
    _add_dataset_options(train, "the data to train on")
    model = train.add_argument_group("network")
    model.add_argument(
        "--layers", type=_layer_sizes_type, metavar="SIZES",
        help="layer sizes from input to output, such as 784,100,10; the first must equal the data's "
        f"feature count, the last its number of classes (default: those two around a hidden layer of {DEFAULT_HIDDEN})",
    )
    hidden_activations = [name for name in ACTIVATIONS if name != "softmax"]
    model.add_argument("--activation", default="relu", choices=hidden_activations, help="hidden layers' activation (default: relu)")
    model.add_argument("--output-activation", default="softmax", choices=ACTIVATIONS, help="output layer's activation (default: softmax)")
    model.add_argument("--loss", default="cross_entropy", choices=LOSSES, help="loss (default: cross_entropy)")
    model.add_argument(
        "--dropout", type=_number_type(float, minimum=0.0, below=1.0), default=0.0, metavar="RATE",
        help="dropout rate of every hidden layer, in [0, 1) (default: 0)",
    )
    model.add_argument(
        "--dtype", default="float32", choices=("float32", "float64"), help="precision of the weights and arithmetic (default: float32)"
    )
    training = train.add_argument_group("training")
    training.add_argument(
        "--optimizer", default=DEFAULT_OPTIMIZER, choices=tuple(OPTIMIZERS), help=f"(default: {DEFAULT_OPTIMIZER})"
    )
    training.add_argument(
        "--lr", type=_number_type(float, strictly_positive=True), metavar="LR",
        help="learning rate (default: " + ", ".join(f"{name} {lr:g}" for name, (_, lr) in OPTIMIZERS.items()) + ")",
    )
    training.add_argument(
        "--momentum", type=_number_type(float, minimum=0.0), metavar="M",
        help=f"momentum of sgd (default: {DEFAULT_SGD_MOMENTUM}) and rmsprop (default: 0)",
    )
    training.add_argument(
        "--weight-decay", type=_number_type(float, minimum=0.0), metavar="L2",
        help="L2 penalty on the weights, decoupled for adamw (default: 0; adamw: 0.01)",
    )
    training.add_argument(
        "--batch-size", type=_number_type(int, minimum=1), default=DEFAULT_BATCH_SIZE, metavar="N",
        help=f"samples per update (default: {DEFAULT_BATCH_SIZE})",
    )
    training.add_argument(
        "--epochs", type=_number_type(int, minimum=1), default=DEFAULT_EPOCHS, metavar="N",
        help=f"epochs to train; with --resume, counting those already done (default: {DEFAULT_EPOCHS})",
    )
    training.add_argument(
        "--seed", type=_number_type(int, minimum=0), default=DEFAULT_SEED, metavar="N",
        help=f"seed of the initial weights, the shuffling, the dropout masks and the held-out split (default: {DEFAULT_SEED})",
    )
    _add_threads_option(training)
    files = train.add_argument_group("files")
    files.add_argument("--save", type=Path, metavar="MODEL", help="save the trained model there (also after Ctrl-C)")
    files.add_argument(
        "--checkpoint", type=Path, metavar="FILE", help="write a checkpoint there after every epoch"
    )
    files.add_argument(
        "--resume", type=Path, metavar="FILE",
        help="continue from a checkpoint written by --checkpoint; give the same options as that run",
    )
    files.add_argument(
        "--plot", type=Path, metavar="IMAGE",
        help='draw the learning curves into a .png, .svg or .pdf (needs pip install "fastgd[plot]")',
    )
    output = train.add_argument_group("output").add_mutually_exclusive_group()
    output.add_argument("--quiet", "-q", action="store_true", help="print only the final result line")
    output.add_argument(
        "--json", action="store_true",
        help="print one JSON object per epoch and a final one with the held-out metrics, nothing else",
    )

    evaluate = commands.add_parser(
        "evaluate", formatter_class=_HelpFormatter, help="loss, accuracy and confusion matrix of a model",
        description="Print a saved model's loss and accuracy on a dataset and its confusion matrix "
        "(rows: true class, columns: predicted class, with the share of each class predicted right). "
        "builtin and mnist are evaluated on their test images (2,000 and 10,000), a .npz or .csv file whole.",
        epilog="examples:\n  fastgd evaluate mnist.fgd\n  fastgd evaluate mnist.fgd --dataset mnist --plot confusion.png",
    )
    evaluate.set_defaults(run=_evaluate)
    evaluate.add_argument("model", type=Path, metavar="MODEL", help="a model file written by fastgd train --save or Network.save")
    _add_dataset_options(evaluate, "the data to evaluate on")
    evaluate.add_argument(
        "--plot", type=Path, metavar="IMAGE",
        help='draw the confusion matrix into a .png, .svg or .pdf (needs pip install "fastgd[plot]")',
    )
    evaluate.add_argument("--json", action="store_true", help="print the results as one JSON object")
    _add_threads_option(evaluate)

    predict = commands.add_parser(
        "predict", formatter_class=_HelpFormatter, help="write a model's outputs for the samples in a file",
        description="Run a saved model on the samples of a .npy file (one sample per row) or a .csv file "
        "(features only, no label column) and write its outputs, one row per sample, to a .npy or .csv file.",
        epilog="examples:\n  fastgd predict mnist.fgd images.npy -o probabilities.npy\n"
        "  fastgd predict mnist.fgd images.csv -o digits.csv --classes",
    )
    predict.set_defaults(run=_predict)
    predict.add_argument("model", type=Path, metavar="MODEL", help="a model file")
    predict.add_argument("input", type=Path, metavar="INPUT", help="the samples: a .npy or .csv file")
    predict.add_argument("-o", "--output", type=Path, required=True, metavar="OUT", help="where to write the outputs: a .npy or .csv file")
    predict.add_argument(
        "--classes", action="store_true", help="write each sample's predicted class instead of the model's outputs"
    )
    _add_threads_option(predict)

    info = commands.add_parser(
        "info", formatter_class=_HelpFormatter, help="show a model's architecture and training record",
        description="Show a saved model's layers, parameter count, dtype and loss, and the metadata stored with "
        "it: fastgd version, save date, training epochs and metrics, dataset and command line.",
    )
    info.set_defaults(run=_info)
    info.add_argument("model", type=Path, metavar="MODEL", help="a model file")
    info.add_argument("--json", action="store_true", help="print it all as one JSON object")
    return parser


# ---------------------------------------------------------------------------------------------
# Entry point


def main(argv=None):
    """Run the ``fastgd`` command with `argv` (default: ``sys.argv[1:]``) and return its exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:
        return stop.code
    prog = f"fastgd {args.command}"
    try:
        return args.run(args, argv)
    except CommandError as error:
        return _report(prog, error, error.status)
    except BrokenPipeError:
        # The reader of stdout went away (fastgd info ... | head): stop quietly.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_FAILURE
    except FileNotFoundError as error:
        return _report(prog, error, EXIT_USAGE)
    # ValueError covers fastgd.ModelFormatError and datasets.DatasetError.
    except (TrainingDiverged, ValueError, OSError, MemoryError) as error:
        return _report(prog, error, EXIT_FAILURE)
    except KeyboardInterrupt:
        print(f"{prog}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


def _report(prog, error, status):
    message = " ".join(str(error).split()) or type(error).__name__
    if isinstance(error, OSError) and error.filename is not None and str(error.filename) not in message:
        message = f"{error.filename}: {message}"
    hint = f" (see '{prog} --help')" if status == EXIT_USAGE else ""
    print(f"{prog}: error: {message}{hint}", file=sys.stderr)
    return status


def _count(number, noun):
    return f"{number:,} {noun}" if number == 1 else f"{number:,} {noun}s"


def _say(*lines):
    for line in lines:
        print(line, flush=True)


def _json_line(document):
    print(json.dumps(_finite_json(document), allow_nan=False), flush=True)


# ---------------------------------------------------------------------------------------------
# Checks of paths on the command line


def _existing_file(path, option):
    if not path.exists():
        raise _usage_error(f"{option} {path}: no such file")
    if path.is_dir():
        raise _usage_error(f"{option} {path}: is a folder, not a file")
    return path


def _writable_target(path, option, suffixes=None):
    """Check before any work that `path` can be written: its folder exists and it is no folder."""
    if suffixes is not None and path.suffix.lower() not in suffixes:
        raise _usage_error(f"{option} {path}: expected a file ending in {', '.join(suffixes)}")
    if path.is_dir():
        raise _usage_error(f"{option} {path}: is a folder; give a file name")
    folder = path.parent
    if not folder.is_dir():
        raise _usage_error(f"{option} {path}: the folder {folder} does not exist")
    return path


def _check_plot_target(path, option="--plot"):
    _writable_target(path, option, PLOT_SUFFIXES)
    try:
        plotting._import_matplotlib(option)
    except ImportError as error:
        raise CommandError(str(error)) from None


def _set_threads(args):
    if args.threads is not None:
        set_num_threads(args.threads)


# ---------------------------------------------------------------------------------------------
# Data


class _Data:
    """Samples read for a command; `name` (builtin, mnist or the file's path) goes into messages."""

    def __init__(self, name, X, y):
        self.name, self.X, self.y = name, X, y


def _dataset_kind(args):
    """'builtin', 'mnist' or 'file', checking the options that go with each."""
    kind = args.dataset if args.dataset in ("builtin", "mnist") else "file"
    if kind != "mnist" and (args.data_dir is not None or args.download):
        option = "--data-dir" if args.data_dir is not None else "--download"
        raise _usage_error(f"{option} goes with --dataset mnist, not --dataset {args.dataset}")
    if kind == "mnist" and args.data_dir is not None and not args.download and not args.data_dir.is_dir():
        raise _usage_error(f"--data-dir {args.data_dir}: no such folder")
    if kind == "file":
        path = _existing_file(Path(args.dataset), "--dataset")
        if path.suffix.lower() not in (".npz", ".csv"):
            raise _usage_error(f"--dataset {path}: expected builtin, mnist, or a .npz or .csv file")
    return kind


def _read_splits(args, kind):
    """((X_train, y_train), (X_test, y_test)) of builtin or mnist."""
    if kind == "builtin":
        return datasets.load_builtin()
    return datasets.load_mnist(args.data_dir, download=args.download)


def _read_file(path):
    """(X, y) of a .npz or .csv dataset, checked: 2-D finite features, integer labels from 0."""
    if path.suffix.lower() == ".npz":
        X, y = datasets.load_npz(path)
    else:
        X, y = datasets.load_csv(path)
    return _checked_features(X, path), _checked_labels(y, path)


def _checked_features(X, source):
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise CommandError(f"{source}: the features have dtype {X.dtype}; expected numbers")
    if X.ndim != 2 or X.shape[0] == 0:
        raise CommandError(f"{source}: expected a 2-D array of features, one sample per row; got shape {X.shape}")
    if X.dtype.kind == "f":
        bad = np.argwhere(~np.isfinite(X))
        if len(bad):
            row, column = bad[0]
            raise CommandError(f"{source}: sample {row} (counting from 0) holds {X[row, column]} in column {column}")
    return X


def _checked_labels(y, source):
    y = np.asarray(y)
    if y.ndim != 1:
        raise CommandError(f"{source}: expected one class label per sample (1-D), got labels of shape {y.shape}")
    if y.dtype.kind not in "biuf":
        raise CommandError(f"{source}: the labels have dtype {y.dtype}; expected class numbers 0, 1, 2, ...")
    bad = np.flatnonzero(~np.isfinite(y) | (y != np.round(y)) | (y < 0)) if y.dtype.kind == "f" else np.flatnonzero(y < 0)
    if len(bad):
        row = int(bad[0])
        raise CommandError(f"{source}: label {y[row]} of sample {row} (counting from 0) is not a class number 0, 1, 2, ...")
    return y.astype(np.int64)


_SPLIT_NAMES = {"builtin": "the built-in MNIST subset", "mnist": "MNIST"}


def _training_data(args):
    """(training _Data, held-out _Data, a line saying what they are) for train."""
    kind = _dataset_kind(args)
    if kind == "file":
        path = Path(args.dataset)
        X, y = _read_file(path)
        if len(X) < 2:
            raise CommandError(f"{path}: {len(X)} sample; training and a held-out part need at least 2")
        X_train, X_test, y_train, y_test = datasets.train_test_split(X, y, test_size=TEST_FRACTION, seed=args.seed)
        summary = f"{path}, {len(X_train):,} rows for training, a random {len(X_test):,} held out"
        return _Data(str(path), X_train, y_train), _Data(str(path), X_test, y_test), summary
    (X_train, y_train), (X_test, y_test) = _read_splits(args, kind)
    summary = f"{_SPLIT_NAMES[kind]}, {len(X_train):,} images for training, its {len(X_test):,} test images held out"
    return _Data(kind, X_train, y_train), _Data(kind, X_test, y_test), summary


def _evaluation_data(args):
    """(_Data, a line saying what it is) for evaluate."""
    kind = _dataset_kind(args)
    if kind == "file":
        path = Path(args.dataset)
        X, y = _read_file(path)
        return _Data(str(path), X, y), f"{path} ({len(X):,} rows)"
    _, (X, y) = _read_splits(args, kind)
    return _Data(kind, X, y), f"the {len(X):,} test images of {_SPLIT_NAMES[kind]}"


def _check_fits_model(net, data, model_name):
    """Raise a CommandError when the data's features or labels do not fit `net`."""
    if data.X.shape[1] != net.n_in:
        raise CommandError(f"{data.name} has {data.X.shape[1]} features per sample, but {model_name} takes {net.n_in}")
    if data.y is not None and len(data.y):
        n_classes = max(net.n_out, 2)
        beyond = np.flatnonzero(data.y >= n_classes)
        if len(beyond):
            row = int(beyond[0])
            raise CommandError(
                f"{data.name} has label {data.y[row]} at sample {row} (counting from 0), but {model_name} has "
                f"{net.n_out} outputs (classes 0..{n_classes - 1})"
            )


# ---------------------------------------------------------------------------------------------
# train


class EpochReport(Callback):
    """Prints one JSON line per epoch when asked to; always passed to fit, so checkpoints match."""

    def __init__(self, json_lines):
        self.json_lines = json_lines

    def on_epoch_begin(self, epoch):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs):
        if self.json_lines:
            _json_line({"epoch": epoch, **logs, "seconds": round(time.perf_counter() - self._started, 4)})
        return False


def _make_optimizer(args):
    optimizer_class, default_lr = OPTIMIZERS[args.optimizer]
    options = {"lr": default_lr if args.lr is None else args.lr}
    if args.momentum is not None:
        if args.optimizer not in ("sgd", "rmsprop"):
            raise _usage_error(f"--momentum goes with --optimizer sgd or rmsprop, not {args.optimizer}")
        options["momentum"] = args.momentum
    elif args.optimizer == "sgd":
        options["momentum"] = DEFAULT_SGD_MOMENTUM
    if args.weight_decay is not None:
        options["weight_decay"] = args.weight_decay
    return optimizer_class(**options)


def _network_sizes(args, train, n_classes):
    n_features = train.X.shape[1]
    if args.layers is None:
        if n_classes < 2:
            raise CommandError(f"{train.name}: every label is 0; classification needs at least two classes")
        return [n_features, DEFAULT_HIDDEN, n_classes]
    sizes = args.layers
    if sizes[0] != n_features:
        raise _usage_error(
            f"--layers starts with {sizes[0]} inputs, but {train.name} has {n_features} features per sample"
        )
    binary_output = sizes[-1] == 1 and n_classes <= 2 and args.output_activation == "sigmoid"
    if sizes[-1] != n_classes and not binary_output:
        raise _usage_error(
            f"--layers ends with {sizes[-1]} outputs, but {train.name} has {n_classes} classes (labels 0..{n_classes - 1})"
        )
    return sizes


def _train(args, argv):
    json_lines, quiet = args.json, args.quiet or args.json
    optimizer = _make_optimizer(args)
    resumed_epoch = None
    if args.resume is not None:
        resumed_epoch = _checkpoint_epoch(_existing_file(args.resume, "--resume"))
    if args.save is not None:
        _writable_target(args.save, "--save")
    if args.checkpoint is not None:
        _writable_target(args.checkpoint, "--checkpoint")
    if args.plot is not None:
        _check_plot_target(args.plot)
    _set_threads(args)
    train, test, summary = _training_data(args)
    n_classes = int(max(train.y.max(), test.y.max())) + 1
    if n_classes > len(train.y) + len(test.y):
        raise CommandError(
            f"{train.name}: the labels go up to {n_classes - 1}, more classes than there are samples; "
            "fastgd train needs class numbers 0, 1, 2, ..."
        )
    sizes = _network_sizes(args, train, n_classes)
    if args.dropout and len(sizes) < 3:
        raise _usage_error(f"--dropout applies to hidden layers, and --layers {','.join(map(str, sizes))} has none")
    try:
        net = Network(
            sizes, activation=args.activation, output_activation=args.output_activation, loss=args.loss,
            dtype=args.dtype, seed=args.seed, dropout=args.dropout,
        )
    except ValueError as error:
        raise _usage_error(str(error)) from None

    if not quiet:
        hidden = f"{args.activation} hidden layers, " if len(sizes) > 2 else ""
        dropout = f", dropout {args.dropout:g}" if args.dropout else ""
        _say(
            f"data: {summary}; {sizes[0]} features, {n_classes} classes",
            f"network: {'-'.join(map(str, sizes))}, {hidden}{args.output_activation} output, {args.loss} loss"
            f"{dropout}, {args.dtype}, seed {args.seed}",
            f"training: {optimizer!r}, batches of {args.batch_size}, {_count(args.epochs, 'epoch')}, "
            f"{_count(get_num_threads(), 'thread')}",
        )
        if resumed_epoch is not None:
            _say(f"resuming from {args.resume} after epoch {resumed_epoch}")

    started = time.perf_counter()
    history = net.fit(
        train.X.astype(net.dtype, copy=False), train.y, epochs=args.epochs, batch_size=args.batch_size,
        optimizer=optimizer, validation_data=(test.X.astype(net.dtype, copy=False), test.y), seed=args.seed,
        verbose=0 if quiet else 1, callbacks=[EpochReport(json_lines)],
        checkpoint=args.checkpoint, resume=args.resume,
    )
    seconds = time.perf_counter() - started
    last_epoch = history.epoch[-1] if history.epoch else 0
    if history.interrupted:
        hint = ""
        if args.checkpoint is not None and last_epoch:
            hint = f"; {args.checkpoint} holds epoch {last_epoch}: add --resume {args.checkpoint} to continue"
        print(f"fastgd train: training interrupted during epoch {last_epoch + 1}{hint}", file=sys.stderr)

    scores = net.evaluate(test.X.astype(net.dtype, copy=False), test.y)
    if args.save is not None:
        net.save(
            args.save,
            metadata={
                "dataset": train.name,
                "command": shlex.join(["fastgd", *argv]),
                "held_out": {"samples": len(test.X), **scores},
                **({"interrupted": True} if history.interrupted else {}),
            },
        )
    if args.plot is not None:
        if history.epoch:
            plotting.plot_history(history, args.plot)
        else:
            print(f"fastgd train: no epoch completed, so no learning curves drawn into {args.plot}", file=sys.stderr)

    if json_lines:
        _json_line(
            {
                "test_loss": scores["loss"],
                "test_accuracy": scores.get("accuracy"),
                "test_samples": len(test.X),
                "epochs": last_epoch,
                "seconds": round(seconds, 3),
                "saved": None if args.save is None else str(args.save),
                "interrupted": history.interrupted,
            }
        )
    else:
        accuracy = f", accuracy {scores['accuracy']:.2%}" if "accuracy" in scores else ""
        saved = f"; model saved to {args.save}" if args.save is not None else ""
        _say(
            f"held-out loss {scores['loss']:.4f}{accuracy} on {len(test.X):,} samples after "
            f"{_count(last_epoch, 'epoch')} ({seconds:.1f}s){saved}"
        )
    return EXIT_INTERRUPTED if history.interrupted else EXIT_OK


def _checkpoint_epoch(path):
    """The epoch a checkpoint was written after, checking first that fastgd train wrote it."""
    document, _ = load_checkpoint(path)
    entries = document.get("callbacks")
    callbacks = [entry.get("class") for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else None
    if callbacks != [EpochReport.__name__]:
        raise CommandError(
            f"{path} was not written by fastgd train --checkpoint (its callbacks are {callbacks}); "
            "resume it from Python with the same fit arguments"
        )
    epoch = document.get("epoch")
    if isinstance(epoch, bool) or not isinstance(epoch, int):
        raise CommandError(f"{path}: the checkpoint records no epoch")
    return epoch


# ---------------------------------------------------------------------------------------------
# evaluate, predict, info


def _evaluate(args, argv):
    _existing_file(args.model, "MODEL")
    if args.plot is not None:
        _check_plot_target(args.plot)
    _set_threads(args)
    net = load_model(args.model)
    data, summary = _evaluation_data(args)
    _check_fits_model(net, data, args.model)
    X = data.X.astype(net.dtype, copy=False)
    scores = net.evaluate(X, data.y)
    n_classes = max(net.n_out, 2)
    confusion = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(confusion, (data.y, _predicted_classes(net.predict(X))), 1)
    correct = int(np.trace(confusion))
    if args.plot is not None:
        plotting.plot_confusion_matrix(confusion, args.plot)

    if args.json:
        _json_line(
            {
                "model": str(args.model),
                "dataset": data.name,
                "samples": len(X),
                "loss": scores["loss"],
                "accuracy": correct / len(X),
                "confusion_matrix": confusion.tolist(),
            }
        )
        return EXIT_OK
    _say(
        f"{args.model} on {summary}",
        f"loss {scores['loss']:.4f}, accuracy {correct / len(X):.2%} ({correct:,} of {len(X):,} right)",
        "",
        "confusion matrix (rows: true class, columns: predicted class)",
        *_confusion_lines(confusion),
    )
    return EXIT_OK


def _predicted_classes(outputs):
    """The class each row of outputs names: the largest output, or output > 0.5 for a single one."""
    return outputs.argmax(axis=1) if outputs.shape[1] > 1 else (outputs[:, 0] > 0.5).astype(np.int64)


def _confusion_lines(confusion):
    width = max(len(f"{confusion.max():d}"), len(str(len(confusion) - 1)), 4) + 1
    lines = ["true".rjust(5) + "".join(str(c).rjust(width) for c in range(len(confusion))) + "   right"]
    for label, row in enumerate(confusion):
        total = row.sum()
        right = f"{row[label] / total:7.1%}" if total else "      -"
        lines.append(str(label).rjust(5) + "".join(f"{count:d}".rjust(width) for count in row) + " " + right)
    return lines


def _predict(args, argv):
    _existing_file(args.model, "MODEL")
    _existing_file(args.input, "INPUT")
    suffix = args.input.suffix.lower()
    if suffix not in (".npy", ".csv"):
        raise _usage_error(f"INPUT {args.input}: expected a .npy or .csv file")
    _writable_target(args.output, "-o", (".npy", ".csv"))
    _set_threads(args)
    net = load_model(args.model)
    X = _read_npy(args.input) if suffix == ".npy" else datasets.load_csv(args.input, label=None)[0]
    if X.ndim == 1:
        X = X.reshape(1, -1)
    X = _checked_features(X, args.input)
    if X.shape[1] != net.n_in:
        raise CommandError(f"{args.input} has {X.shape[1]} features per sample, but {args.model} takes {net.n_in}")
    outputs = net.predict(X.astype(net.dtype, copy=False))
    if args.classes:
        outputs = _predicted_classes(outputs)

    def write(file):
        if args.output.suffix.lower() == ".npy":
            np.save(file, outputs, allow_pickle=False)
        else:
            np.savetxt(file, outputs, delimiter=",", fmt="%d" if args.classes else "%.9g")

    write_atomically(args.output, write)
    what = "class labels" if args.classes else f"x {outputs.shape[1]} outputs"
    _say(f"wrote {len(outputs):,} {what} to {args.output}")
    return EXIT_OK


def _read_npy(path):
    """The array in a .npy file, read without pickle."""
    with open(path, "rb") as file:
        signature = file.read(len(NPY_SIGNATURE))
    if signature != NPY_SIGNATURE:
        if signature.startswith(b"PK"):
            raise CommandError(f"{path}: an .npz archive, not a single .npy array")
        raise CommandError(f"{path}: not a NumPy .npy file (no .npy signature at its start)")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as error:
        if "allow_pickle" in str(error):
            raise CommandError(f"{path}: holds Python objects; reading them would need pickle, which fastgd never uses") from None
        raise CommandError(f"{path}: damaged .npy file: {error}") from None
    except EOFError as error:
        raise CommandError(f"{path}: truncated .npy file: {error}") from None


def _info(args, argv):
    net = load_model(_existing_file(args.model, "MODEL"))
    layers = [
        {
            "inputs": layer.n_in,
            "outputs": layer.n_out,
            "activation": layer.activation,
            "dropout": layer.dropout,
            "parameters": (layer.n_in + 1) * layer.n_out,
        }
        for layer in net.layers
    ]
    n_parameters = sum(layer["parameters"] for layer in layers)
    if args.json:
        _json_line(
            {
                "path": str(args.model),
                "sizes": net.sizes,
                "layers": layers,
                "parameters": n_parameters,
                "dtype": net.dtype.name,
                "loss": net.loss,
                "metadata": net.metadata,
            }
        )
        return EXIT_OK
    size = n_parameters * net.dtype.itemsize
    lines = [
        f"{args.model}: a {'-'.join(map(str, net.sizes))} network, {net.dtype.name}, loss {net.loss}",
        f"parameters: {n_parameters:,} ({_bytes(size)})",
        "",
        "layer  inputs  outputs  activation   dropout  parameters",
    ]
    for index, layer in enumerate(layers, start=1):
        dropout = f"{layer['dropout']:g}" if layer["dropout"] else "-"
        lines.append(
            f"{index:>5}  {layer['inputs']:>6}  {layer['outputs']:>7}  {layer['activation']:<11}  {dropout:>7}  "
            f"{layer['parameters']:>10,}"
        )
    if net.metadata:
        lines += ["", "metadata:", *_metadata_lines(net.metadata, indent=2)]
    _say(*lines)
    return EXIT_OK


def _bytes(size):
    for unit in ("bytes", "KiB", "MiB"):
        if size < 1024 or unit == "MiB":
            return f"{size:,} {unit}" if unit == "bytes" else f"{size:,.1f} {unit}"
        size /= 1024


def _metadata_lines(metadata, indent):
    """The metadata as 'key: value' lines, nested dicts indented; text that could drive the terminal escaped."""
    lines = []
    for key, value in metadata.items():
        key = _printable(str(key))
        if isinstance(value, dict) and value:
            lines.append(f"{' ' * indent}{key}:")
            lines += _metadata_lines(value, indent + 2)
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            lines.append(f"{' ' * indent}{key}: {_printable(text)}")
    return lines


def _printable(text):
    return text if text.isprintable() else json.dumps(text)
