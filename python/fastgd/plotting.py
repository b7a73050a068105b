"""Pictures of training: learning curves and confusion matrices, drawn with matplotlib.

matplotlib is optional (``pip install "fastgd[plot]"``) and imported only when a function
here is called. Figures are drawn on the Agg canvas, so no display is needed and pyplot's
global state is left alone.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["plot_history", "plot_confusion_matrix"]


def _import_matplotlib(function_name):
    """matplotlib's Figure and Agg canvas, or an ImportError saying how to install them."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as error:
        raise ImportError(f'{function_name} needs matplotlib: pip install "fastgd[plot]"') from error
    return Figure, FigureCanvasAgg


def _save(figure, canvas_class, path):
    canvas_class(figure)
    # The format follows the file's suffix; without a suffix matplotlib writes PNG.
    figure.savefig(os.fspath(path), dpi=100)


def plot_history(history, path):
    """Draw learning curves: loss and val_loss, and accuracy and val_accuracy when present.

    Parameters
    ----------
    history : fastgd.History or dict
        What ``fit`` returns, or its ``history`` dict (metric name -> one value per epoch).
    path : str or os.PathLike
        The image to write; its suffix picks the format (``.png``, ``.svg``, ``.pdf``, ...).

    Raises
    ------
    ImportError
        When matplotlib is not installed.
    ValueError
        When `history` holds no epochs or no ``loss``.
    """
    metrics = getattr(history, "history", history)
    if not isinstance(metrics, dict):
        raise TypeError(f"history must be a fastgd.History or its history dict, got {type(history).__name__}")
    if not metrics.get("loss"):
        raise ValueError("history holds no epochs: there is no 'loss' to plot")
    epochs = list(getattr(history, "epoch", None) or range(1, len(metrics["loss"]) + 1))
    for name, values in metrics.items():
        if len(values) != len(epochs):
            raise ValueError(f"history[{name!r}] has {len(values)} values for {len(epochs)} epochs")
    panels = [("loss", "loss")]
    if "accuracy" in metrics or "val_accuracy" in metrics:
        panels.append(("accuracy", "accuracy"))

    Figure, canvas_class = _import_matplotlib("plot_history")
    figure = Figure(figsize=(5.5 * len(panels), 4), layout="constrained")
    for position, (metric, title) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, len(panels), position)
        for key, label, style, color in ((metric, "training", "-o", "C0"), (f"val_{metric}", "validation", "-s", "C1")):
            if key in metrics:
                values = np.array([np.nan if value is None else value for value in metrics[key]], dtype=float)
                axes.plot(epochs, values, style, color=color, markersize=3, label=label)
        axes.set_title(title)
        axes.set_xlabel("epoch")
        axes.grid(alpha=0.3)
        axes.legend()
        axes.xaxis.get_major_locator().set_params(integer=True)
    _save(figure, canvas_class, path)


def plot_confusion_matrix(matrix, path, class_names=None):
    """Draw a confusion matrix as a heat map with its counts; rows are true classes, columns predicted.

    Parameters
    ----------
    matrix : array-like of shape (n_classes, n_classes)
        ``matrix[i, j]`` counts the samples of class i predicted as class j.
    path : str or os.PathLike
        The image to write; its suffix picks the format (``.png``, ``.svg``, ``.pdf``, ...).
    class_names : sequence of str, optional
        Tick labels; the class numbers by default.

    Raises
    ------
    ImportError
        When matplotlib is not installed.
    ValueError
        When `matrix` is not square or `class_names` has the wrong length.
    """
    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1] or matrix.shape[0] == 0:
        raise ValueError(f"a confusion matrix must be square and non-empty, got shape {matrix.shape}")
    n_classes = len(matrix)
    names = [str(index) for index in range(n_classes)] if class_names is None else [str(n) for n in class_names]
    if len(names) != n_classes:
        raise ValueError(f"class_names has {len(names)} names for {n_classes} classes")

    Figure, canvas_class = _import_matplotlib("plot_confusion_matrix")
    side = min(4 + 0.45 * n_classes, 16)
    figure = Figure(figsize=(side + 1, side), layout="constrained")
    axes = figure.add_subplot()
    image = axes.imshow(matrix, cmap="Blues")
    figure.colorbar(image, ax=axes, label="samples")
    axes.set_xticks(range(n_classes), names)
    axes.set_yticks(range(n_classes), names)
    axes.set_xlabel("predicted class")
    axes.set_ylabel("true class")
    total = matrix.sum()
    accuracy = np.trace(matrix) / total if total else float("nan")
    axes.set_title(f"confusion matrix: {int(total):,} samples, accuracy {accuracy:.2%}")
    if n_classes <= 30:
        threshold = matrix.max() / 2
        for row in range(n_classes):
            for column in range(n_classes):
                count = matrix[row, column]
                axes.text(
                    column, row, f"{count:g}", ha="center", va="center", fontsize=8,
                    color="white" if count > threshold else "black",
                )
    _save(figure, canvas_class, path)
