"""fastgd.plot_history and plot_confusion_matrix: the images they write, and their errors."""

import sys

import numpy as np
import pytest

import fastgd
from fastgd.plotting import plot_confusion_matrix, plot_history

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def history():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((120, 4))
    y = (X[:, 0] > 0).astype(np.int64)
    net = fastgd.Network([4, 8, 2], seed=0)
    return net.fit(X, y, epochs=3, batch_size=16, optimizer=fastgd.SGD(lr=0.1), validation_split=0.25, seed=0, verbose=0)


def test_plot_history_writes_a_png(history, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    plot_history(history, path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_plot_history_takes_the_history_dict_and_a_str_path(history, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.png"
    plot_history(history.history, str(path))
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_plot_history_draws_loss_alone_when_there_is_no_accuracy(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "loss.png"
    plot_history({"loss": [1.0, 0.5, 0.25]}, path)
    assert path.read_bytes().startswith(PNG_SIGNATURE)


def test_plot_history_picks_the_format_from_the_suffix(history, tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "curves.svg"
    plot_history(history, path)
    assert b"<svg" in path.read_bytes()[:1000]


def test_plot_confusion_matrix_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "confusion.png"
    plot_confusion_matrix([[5, 1, 0], [0, 7, 2], [1, 0, 9]], path, class_names=["cat", "dog", "owl"])
    assert path.read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.parametrize(
    "history, error, message",
    [
        ({}, ValueError, "history holds no epochs: there is no 'loss' to plot"),
        ({"loss": []}, ValueError, "history holds no epochs: there is no 'loss' to plot"),
        ({"loss": [1.0, 0.5], "val_loss": [1.0]}, ValueError, "history['val_loss'] has 1 values for 2 epochs"),
        ([1.0, 0.5], TypeError, "history must be a fastgd.History or its history dict, got list"),
    ],
)
def test_plot_history_rejects_what_it_cannot_draw(history, error, message, tmp_path):
    with pytest.raises(error) as raised:
        plot_history(history, tmp_path / "curves.png")
    assert str(raised.value) == message
    assert not (tmp_path / "curves.png").exists()


@pytest.mark.parametrize(
    "matrix, names, message",
    [
        ([[1, 2, 3]], None, "a confusion matrix must be square and non-empty, got shape (1, 3)"),
        (np.zeros((0, 0)), None, "a confusion matrix must be square and non-empty, got shape (0, 0)"),
        ([[1, 0], [0, 1]], ["a"], "class_names has 1 names for 2 classes"),
    ],
)
def test_plot_confusion_matrix_rejects_bad_matrices(matrix, names, message, tmp_path):
    with pytest.raises(ValueError) as raised:
        plot_confusion_matrix(matrix, tmp_path / "confusion.png", class_names=names)
    assert str(raised.value) == message


@pytest.fixture
def without_matplotlib(monkeypatch):
    """Make every import of matplotlib fail, as when it is not installed."""
    for name in [name for name in sys.modules if name == "matplotlib" or name.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)


def test_plot_history_without_matplotlib_says_how_to_install_it(without_matplotlib, history, tmp_path):
    with pytest.raises(ImportError) as raised:
        plot_history(history, tmp_path / "curves.png")
    assert str(raised.value) == 'plot_history needs matplotlib: pip install "fastgd[plot]"'
    assert not (tmp_path / "curves.png").exists()


def test_plot_confusion_matrix_without_matplotlib_says_how_to_install_it(without_matplotlib, tmp_path):
    with pytest.raises(ImportError) as raised:
        plot_confusion_matrix([[1, 0], [0, 1]], tmp_path / "confusion.png")
    assert str(raised.value) == 'plot_confusion_matrix needs matplotlib: pip install "fastgd[plot]"'
