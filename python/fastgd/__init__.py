"""fastgd: dense neural networks trained by mini-batch gradient descent in C++/Eigen, with a NumPy API."""

from . import _core, callbacks, datasets, interop, io, reference
from ._core import build_info, get_num_threads, set_num_threads
from .callbacks import Callback, CosineDecay, EarlyStopping, ExponentialDecay, ReduceLROnPlateau, StepDecay
from .io import ModelFormatError, load
from .network import Dense, History, Network, TrainingDiverged
from .optimizers import SGD, Adagrad, Adam, AdamW, Optimizer, RMSprop
from .plotting import plot_history

__version__ = _core.__version__

__all__ = [
    "Callback",
    "CosineDecay",
    "EarlyStopping",
    "ExponentialDecay",
    "ReduceLROnPlateau",
    "StepDecay",
    "callbacks",
    "Dense",
    "History",
    "ModelFormatError",
    "Network",
    "Optimizer",
    "SGD",
    "Adam",
    "AdamW",
    "RMSprop",
    "Adagrad",
    "TrainingDiverged",
    "build_info",
    "datasets",
    "get_num_threads",
    "interop",
    "io",
    "load",
    "plot_history",
    "reference",
    "set_num_threads",
    "__version__",
]
