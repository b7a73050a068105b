"""scikit-learn estimators trained by the fastgd engine: drop-in `MLPClassifier` and `MLPRegressor`.

They take scikit-learn 1.9's parameters and run its algorithm: the same Glorot-uniform start
drawn from the same `random_state`, the same shuffling, early-stopping split, learning-rate
schedules, stopping rules and L-BFGS calls, so a float64 fit gives the weights, loss curve and
iteration count of `sklearn.neural_network`'s to rounding. Each epoch is one call into the
C++ engine (``fastgd._training.run_epoch``): its batches never come back to Python. The fitted
``network_`` is a `fastgd.Network`, ready for ``save``, ``to_onnx`` or ``predict(out=...)``.

Needs scikit-learn 1.7 or later (``pip install "fastgd[sklearn]"``).
"""

from __future__ import annotations

import contextlib
import threading
import warnings
from numbers import Integral, Real

import numpy as np
import scipy.optimize
import scipy.sparse

try:
    from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin, _fit_context, is_classifier
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.metrics import accuracy_score, r2_score
    from sklearn.model_selection import train_test_split
    from sklearn.preprocessing import LabelBinarizer
    from sklearn.utils import check_random_state, column_or_1d
    from sklearn.utils._param_validation import Interval, Options, StrOptions
    from sklearn.utils.class_weight import compute_sample_weight
    from sklearn.utils.metaestimators import available_if
    from sklearn.utils.multiclass import _check_partial_fit_first_call, type_of_target, unique_labels
    from sklearn.utils.optimize import _check_optimize_result
    from sklearn.utils.validation import _check_sample_weight, check_is_fitted, validate_data
except ImportError as exc:
    raise ImportError(f'fastgd.sklearn needs scikit-learn 1.7 or later: pip install "fastgd[sklearn]" ({exc})') from None

from . import io
from ._core import chosen_num_threads, get_num_threads, set_num_threads
from ._training import loss_and_gradients, prepare_sparse, run_epoch
from .network import Dense, Network
from .optimizers import SklearnAdam, SklearnSGD

__all__ = ["MLPClassifier", "MLPRegressor"]

# scikit-learn's names of the hidden activations -> the engine's
_HIDDEN_ACTIVATIONS = {"identity": "identity", "logistic": "sigmoid", "tanh": "tanh", "relu": "relu"}
# out_activation_ -> the engine's output activation and loss
_OUTPUTS = {
    "softmax": ("softmax", "cross_entropy"),
    "logistic": ("sigmoid", "cross_entropy"),
    "identity": ("identity", "mse"),
}
_OPTIMIZERS = {"SklearnSGD": SklearnSGD, "SklearnAdam": SklearnAdam}
_NON_FINITE_WEIGHTS = (
    "Solver produced non-finite parameter weights. The input data may contain large values and need to be preprocessed."
)


class _BaseMLP(BaseEstimator):
    """What `MLPClassifier` and `MLPRegressor` share: validation, the solvers, pickling."""

    _parameter_constraints: dict = {
        "hidden_layer_sizes": ["array-like", Interval(Integral, 1, None, closed="left")],
        "activation": [StrOptions({"identity", "logistic", "tanh", "relu"})],
        "solver": [StrOptions({"lbfgs", "sgd", "adam"})],
        "alpha": [Interval(Real, 0, None, closed="left")],
        "batch_size": [StrOptions({"auto"}), Interval(Integral, 1, None, closed="left")],
        "learning_rate": [StrOptions({"constant", "invscaling", "adaptive"})],
        "learning_rate_init": [Interval(Real, 0, None, closed="neither")],
        "power_t": [Interval(Real, 0, None, closed="left")],
        "max_iter": [Interval(Integral, 1, None, closed="left")],
        "shuffle": ["boolean"],
        "random_state": ["random_state"],
        "tol": [Interval(Real, 0, None, closed="left")],
        "verbose": ["verbose"],
        "warm_start": ["boolean"],
        "momentum": [Interval(Real, 0, 1, closed="both")],
        "nesterovs_momentum": ["boolean"],
        "early_stopping": ["boolean"],
        "validation_fraction": [Interval(Real, 0, 1, closed="left")],
        "beta_1": [Interval(Real, 0, 1, closed="left")],
        "beta_2": [Interval(Real, 0, 1, closed="left")],
        "epsilon": [Interval(Real, 0, None, closed="neither")],
        "n_iter_no_change": [Interval(Integral, 1, None, closed="left"), Options(Real, {np.inf})],
        "max_fun": [Interval(Integral, 1, None, closed="left")],
        "dropout": [Interval(Real, 0, 1, closed="left")],
        "dtype": [StrOptions({"float32", "float64"}), None],
        "n_threads": [Interval(Integral, 1, None, closed="left"), None],
    }

    # ---- fitting -------------------------------------------------------------------------

    @_fit_context(prefer_skip_nested_validation=True)
    def fit(self, X, y, sample_weight=None):
        """Fit the model to data matrix X and target(s) y.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values (class labels in classification, real numbers in regression).
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative sample weights: each sample's loss counts this many times in the
            weighted mean, so weight 2 is the sample repeated and weight 0 the sample removed.

        Returns
        -------
        self : object
            The trained model.
        """
        return self._fit(X, y, sample_weight, incremental=False)

    def _fit(self, X, y, sample_weight, incremental):
        hidden_sizes = self._hidden_sizes()
        first_pass = not hasattr(self, "coefs_") or (not self.warm_start and not incremental)
        X, y = self._validate_input(X, y, incremental, reset=first_pass)
        sample_weight = self._sample_weight(sample_weight, X, y, incremental)
        Y = self._encode_targets(y)
        self.n_outputs_ = Y.shape[1]
        self._random_state = check_random_state(self.random_state)
        if first_pass:
            self._initialize([X.shape[1], *hidden_sizes, self.n_outputs_], X.dtype)
        with self._engine_threads():
            if self.solver == "lbfgs":
                self._fit_lbfgs(X, Y, sample_weight)
            else:
                self._fit_stochastic(X, Y, sample_weight, incremental)
            self._record_training()
        if not all(np.isfinite(array).all() for array in self._param_views()):
            raise ValueError(_NON_FINITE_WEIGHTS)
        return self

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = list(sizes) if hasattr(sizes, "__iter__") else [sizes]
        if np.any(np.array(sizes) <= 0):
            raise ValueError(f"hidden_layer_sizes must be > 0, got {sizes}.")
        return [int(size) for size in sizes]

    def _input_dtype(self, reset):
        """What validate_data converts X to: the network's dtype once there is one."""
        if not reset and hasattr(self, "network_"):
            return self.network_.dtype
        if self.dtype is not None:
            return np.dtype(self.dtype)
        return (np.float64, np.float32)

    def _sample_weight(self, sample_weight, X, y, incremental):
        if sample_weight is None:
            return None
        return _check_sample_weight(sample_weight, X, ensure_non_negative=True)

    def _initialize(self, layer_units, dtype):
        """Fresh fitted state and a network holding scikit-learn's Glorot-uniform draws."""
        self.n_iter_ = 0
        self.t_ = 0
        self.n_layers_ = len(layer_units)
        self.out_activation_ = self._output_activation()
        output_activation, loss = _OUTPUTS[self.out_activation_]
        activations = [_HIDDEN_ACTIVATIONS[self.activation]] * (len(layer_units) - 2) + [output_activation]
        dropouts = [self.dropout] * (len(layer_units) - 2) + [0.0]
        layers = [Dense(*shape, *rest) for *shape, rest in zip(layer_units, layer_units[1:], zip(activations, dropouts))]
        # left at zero by the engine: scikit-learn's draws below are its initial weights
        self.network_ = Network._uninitialized(layers, loss, dtype)
        self.network_.params = [self._glorot(fan_in, fan_out) for fan_in, fan_out in zip(layer_units, layer_units[1:])]
        self._bind_params()
        self._best_coefs = [c.copy() for c in self.coefs_]
        self._best_intercepts = [b.copy() for b in self.intercepts_]
        if self.solver != "lbfgs":
            self._reset_stochastic_record()

    def _glorot(self, fan_in, fan_out):
        # Glorot & Bengio (2010): U(±√(factor / (fan_in + fan_out))), factor 2 for logistic units
        factor = 2.0 if self.activation == "logistic" else 6.0
        bound = np.sqrt(factor / (fan_in + fan_out))
        coef = self._random_state.uniform(-bound, bound, (fan_in, fan_out))
        intercept = self._random_state.uniform(-bound, bound, fan_out)
        return coef, intercept

    def _bind_params(self):
        """coefs_ and intercepts_ as views of network_'s memory, so they follow every update."""
        params = self.network_.params
        self.coefs_ = [W for W, _ in params]
        self.intercepts_ = [b for _, b in params]

    def _param_views(self):
        """The network's arrays in scikit-learn's packing order: every W, then every b."""
        params = self.network_.params
        return [W for W, _ in params] + [b for _, b in params]

    def _reset_stochastic_record(self):
        self.loss_curve_ = []
        self._no_improvement_count = 0
        if self.early_stopping:
            self.validation_scores_ = []
            self.best_validation_score_ = -np.inf
            self.best_loss_ = None
        else:
            self.best_loss_ = np.inf
            self.validation_scores_ = None
            self.best_validation_score_ = None

    @contextlib.contextmanager
    def _engine_threads(self):
        """Run the engine on n_threads threads, when given, and restore the previous setting after:
        a count set before, or (None) following OpenMP's, threadpoolctl's and joblib's limits."""
        if self.n_threads is None:
            yield
            return
        previous = chosen_num_threads()
        set_num_threads(self.n_threads)
        try:
            yield
        finally:
            set_num_threads(previous)

    def _record_training(self):
        """What the fit was, in network_.metadata (saved with the model)."""
        self.network_.metadata["training"] = {
            "estimator": type(self).__name__,
            "solver": self.solver,
            "n_iter": int(self.n_iter_),
            "loss": getattr(self, "loss_", None),
            "n_threads": get_num_threads(),
        }

    def _engine_input(self, X):
        """X as run_epoch reads it: CSR or C-contiguous, of the network's dtype."""
        if scipy.sparse.issparse(X):
            return prepare_sparse(X, self.network_.n_in, self.network_.dtype)
        return np.ascontiguousarray(X, dtype=self.network_.dtype)

    def _engine_targets(self, Y):
        return np.ascontiguousarray(Y, dtype=self.network_.dtype)

    def _loss_outputs(self):
        """k in loss_ = (loss_sum / k + penalty_sum) / n: squared error is averaged over outputs."""
        return self.n_outputs_ if self.out_activation_ == "identity" else 1

    # ---- stochastic solvers --------------------------------------------------------------

    def _fit_stochastic(self, X, Y, sample_weight, incremental):
        if not incremental or not hasattr(self, "_optimizer"):
            self._optimizer = self._new_optimizer()
        if self.early_stopping and incremental:
            raise ValueError("partial_fit does not support early_stopping=True")
        X, Y, sample_weight, validation = self._split(X, Y, sample_weight)
        X, targets, weights = self._engine_input(X), self._engine_targets(Y), _engine_weights(sample_weight)
        batch_size = self._batch_size(X.shape[0])
        order = np.arange(X.shape[0], dtype=np.int64)
        try:
            self.n_iter_ = 0
            for _ in range(self.max_iter):
                if self.shuffle:
                    order = _shuffled(order, self._random_state)
                result = self._run_epoch(X, targets, order if self.shuffle else None, batch_size, weights)
                self._end_epoch(result, X.shape[0], validation)
                if self._no_improvement_count > self.n_iter_no_change and self._stop_or_slow_down(validation):
                    break
                if incremental:
                    break
                if self.n_iter_ == self.max_iter:
                    warnings.warn(
                        f"Stochastic Optimizer: Maximum iterations ({self.max_iter}) reached and the "
                        "optimization hasn't converged yet.",
                        ConvergenceWarning,
                    )
        except KeyboardInterrupt:
            warnings.warn("Training interrupted by user.")
        if self.early_stopping:
            self.network_.params = list(zip(self._best_coefs, self._best_intercepts))

    def _new_optimizer(self):
        if self.solver == "sgd":
            return SklearnSGD(lr=float(self.learning_rate_init), momentum=self.momentum, nesterov=self.nesterovs_momentum)
        return SklearnAdam(lr=self.learning_rate_init, beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon)

    def _split(self, X, Y, sample_weight):
        """(X_train, Y_train, sample_weight_train, validation or None) as scikit-learn splits them."""
        if not self.early_stopping:
            return X, Y, sample_weight, None
        # scikit-learn stratifies only single-output classification (binary, in practice)
        stratify = Y if is_classifier(self) and self.n_outputs_ == 1 else None
        arrays = (X, Y) if sample_weight is None else (X, Y, sample_weight)
        parts = train_test_split(
            *arrays, random_state=self._random_state, test_size=self.validation_fraction, stratify=stratify
        )
        X_train, X_val, Y_train, Y_val = parts[:4]
        sample_weight_train, sample_weight_val = parts[4:] or (None, None)
        if X_val.shape[0] < 2:
            raise ValueError(
                "The validation set is too small. Increase 'validation_fraction' or the size of your dataset."
            )
        y_val = self._label_binarizer.inverse_transform(Y_val) if is_classifier(self) else Y_val
        return X_train, Y_train, sample_weight_train, (self._engine_input(X_val), y_val, sample_weight_val)

    def _batch_size(self, n_samples):
        if self.batch_size == "auto":
            return min(200, n_samples)
        if self.batch_size > n_samples:
            warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped")
        return int(np.clip(self.batch_size, 1, n_samples))

    def _run_epoch(self, X, targets, order, batch_size, sample_weight):
        """One pass over X in the engine; Ctrl-C there stops training as it does scikit-learn's."""
        state = self._optimizer._state_for(self.network_)  # picks up a changed learning rate
        dropout_seed = int(self._random_state.randint(2**63 - 1, dtype=np.int64)) if self.dropout else 0
        result = run_epoch(
            self.network_,
            state,
            X,
            targets,
            order,
            batch_size,
            sample_weight=sample_weight,
            l2=self.alpha,
            dropout_seed=dropout_seed,
            catch_interrupt=threading.current_thread() is threading.main_thread(),
        )
        if result.interrupted:
            raise KeyboardInterrupt
        if result.failed_batch >= 0:
            raise ValueError(_NON_FINITE_WEIGHTS)
        return result

    def _end_epoch(self, result, n_samples, validation):
        self.n_iter_ += 1
        self.loss_ = (result.loss_sum / self._loss_outputs() + result.penalty_sum) / n_samples
        self.t_ += n_samples
        self.loss_curve_.append(self.loss_)
        if self.verbose:
            print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
        self._update_no_improvement_count(validation)
        if self.solver == "sgd" and self.learning_rate == "invscaling":
            self._optimizer.lr = float(self.learning_rate_init) / (self.t_ + 1) ** self.power_t

    def _update_no_improvement_count(self, validation):
        if validation is None:
            if self.loss_curve_[-1] > self.best_loss_ - self.tol:
                self._no_improvement_count += 1
            else:
                self._no_improvement_count = 0
            self.best_loss_ = min(self.best_loss_, self.loss_curve_[-1])
            return
        score = self._validation_score(*validation)
        self.validation_scores_.append(score)
        if self.verbose:
            print(f"Validation score: {score:f}")
        if score < self.best_validation_score_ + self.tol:
            self._no_improvement_count += 1
        else:
            self._no_improvement_count = 0
        if score > self.best_validation_score_:
            self.best_validation_score_ = score
            self._best_coefs = [c.copy() for c in self.coefs_]
            self._best_intercepts = [b.copy() for b in self.intercepts_]

    def _validation_score(self, X, y, sample_weight):
        """Accuracy or R² on the held-out set; NaN when the predictions are not finite."""
        y_pred = self._decode(self.network_.predict(X))
        if np.issubdtype(y_pred.dtype, np.floating) and not np.isfinite(y_pred).all():
            return np.nan
        return self._score_function(y, y_pred, sample_weight=sample_weight)

    def _stop_or_slow_down(self, validation):
        """After n_iter_no_change epochs without progress: True to stop, or divide an adaptive rate by 5."""
        what = "Validation score" if validation is not None else "Training loss"
        message = f"{what} did not improve more than tol={self.tol:f} for {self.n_iter_no_change:d} consecutive epochs."
        if self.solver != "sgd" or self.learning_rate != "adaptive":
            self._say(message + " Stopping.")
            return True
        if self._optimizer.lr <= 1e-6:
            self._say(message + " Learning rate too small. Stopping.")
            return True
        self._optimizer.lr /= 5.0
        self._say(f"{message} Setting learning rate to {self._optimizer.lr:f}")
        self._no_improvement_count = 0
        return False

    def _say(self, message):
        if self.verbose:
            print(message)

    # ---- L-BFGS --------------------------------------------------------------------------

    def _fit_lbfgs(self, X, Y, sample_weight):
        X, targets, weights = self._engine_input(X), self._engine_targets(Y), _engine_weights(sample_weight)
        packed = np.concatenate([array.ravel() for array in self._param_views()])
        iprint = 1 if self.verbose is True or self.verbose >= 1 else -1
        result = scipy.optimize.minimize(
            self._lbfgs_loss_and_gradient,
            packed,
            method="L-BFGS-B",
            jac=True,
            options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol, **_iprint_option(iprint)},
            args=(X, targets, weights),
        )
        self.n_iter_ = _check_optimize_result("lbfgs", result, self.max_iter)
        self.loss_ = result.fun
        self._unpack(result.x)

    def _lbfgs_loss_and_gradient(self, packed, X, targets, sample_weight):
        self._unpack(packed)
        data_loss, penalty, grads = loss_and_gradients(self.network_, X, targets, sample_weight, l2=self.alpha)
        # Like scikit-learn's, the gradient is that of data_loss + penalty even where the
        # reported squared error is averaged over the outputs.
        gradient = np.concatenate([dW.ravel() for dW, _ in grads] + [db.ravel() for _, db in grads])
        return data_loss / self._loss_outputs() + penalty, gradient

    def _unpack(self, packed):
        """Write the L-BFGS vector (every W raveled, then every b) into the network."""
        start = 0
        for array in self._param_views():
            array[...] = packed[start : start + array.size].reshape(array.shape)
            start += array.size

    # ---- prediction ----------------------------------------------------------------------

    def _forward(self, X):
        """The network's outputs for X, checked as scikit-learn checks it.

        A 2-D array of the network's dtype, of the fitted width and fitted without feature
        names goes to the engine as it is, which checks it for NaN and Inf itself: one row then
        costs microseconds instead of validate_data's hundred. Anything else, or a value the
        engine refuses, goes through scikit-learn's checks and messages.
        """
        if _engine_ready(X, self):
            try:
                with self._engine_threads():
                    return self.network_.predict(X)
            except ValueError:
                pass
        X = validate_data(self, X, accept_sparse=["csr", "csc"], dtype=self.network_.dtype, reset=False)
        with self._engine_threads():
            return self.network_.predict(X)

    # ---- pickling ------------------------------------------------------------------------

    def __getstate__(self):
        """The estimator's state with network_ as model-file bytes (`fastgd.io.to_bytes`), never a C++ object."""
        state = dict(super().__getstate__())
        if "network_" not in state:
            return state
        network = state.pop("network_")
        del state["coefs_"], state["intercepts_"]
        state["_network_bytes"] = io.to_bytes(network)
        optimizer = state.pop("_optimizer", None)
        if optimizer is not None:
            state["_optimizer_state"] = _optimizer_state(optimizer, network)
        return state

    def __setstate__(self, state):
        """Rebuild network_ (and the optimizer's state, for partial_fit) from `__getstate__`'s."""
        state = dict(state)
        data = state.pop("_network_bytes", None)
        saved_optimizer = state.pop("_optimizer_state", None)
        super().__setstate__(state)
        if data is None:
            return
        self.network_ = io.from_bytes(data)
        self._bind_params()
        if saved_optimizer is not None:
            self._optimizer = _restore_optimizer(saved_optimizer, self.network_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        return tags


def _shuffled(order, random_state):
    """``sklearn.utils.shuffle(order, random_state=random_state)`` without its input checks, which
    cost more than the draws on small data: the same draws (a shuffle of arange(n)) applied to order."""
    positions = np.arange(len(order))
    random_state.shuffle(positions)
    return order[positions]


def _engine_ready(X, estimator):
    """Whether predict may skip validate_data: what it would pass on unchanged and without a warning."""
    return (
        type(X) is np.ndarray
        and X.ndim == 2
        and X.shape[0] > 0
        and X.shape[1] == estimator.n_features_in_
        and X.dtype == estimator.network_.dtype
        and not hasattr(estimator, "feature_names_in_")
    )


def _engine_weights(sample_weight):
    return None if sample_weight is None else np.ascontiguousarray(sample_weight, dtype=np.float64)


def _iprint_option(iprint):
    """scipy < 1.15 takes L-BFGS-B's iprint; later versions deprecate it (as scikit-learn does)."""
    try:
        from sklearn.utils.fixes import _get_additional_lbfgs_options_dict
    except ImportError:
        return {}
    return _get_additional_lbfgs_options_dict("iprint", iprint)


def _optimizer_state(optimizer, network):
    """A fastgd Sklearn* optimizer as plain data: class, hyperparameters, and its state for `network`."""
    state = {key: list(value) if isinstance(value, tuple) else value for key, value in optimizer.state(network).items()}
    return {"class": type(optimizer).__name__, "hyperparameters": optimizer._hyperparameters(), "state": state}


def _restore_optimizer(saved, network):
    optimizer = _OPTIMIZERS[saved["class"]](**saved["hyperparameters"])
    if saved["state"].get("steps", 0):
        optimizer._state_for(network).set_state(saved["state"])
    return optimizer


def _is_stochastic(estimator):
    if estimator.solver not in ("sgd", "adam"):
        raise AttributeError(
            f"partial_fit is only available for stochastic optimizers. {estimator.solver} is not stochastic."
        )
    return True


_PARAMETERS_DOC = """\
hidden_layer_sizes : array-like of shape (n_layers - 2,), default=(100,)
        The ith element represents the number of neurons in the ith hidden layer.

    activation : {'identity', 'logistic', 'tanh', 'relu'}, default='relu'
        Activation function for the hidden layers: 'identity' returns f(x) = x, 'logistic'
        f(x) = 1 / (1 + exp(-x)), 'tanh' f(x) = tanh(x) and 'relu' f(x) = max(0, x).

    solver : {'lbfgs', 'sgd', 'adam'}, default='adam'
        The solver for weight optimization: 'lbfgs' is scipy's L-BFGS-B quasi-Newton method
        on the whole data set, 'sgd' stochastic gradient descent, 'adam' the stochastic
        optimizer of Kingma and Ba. 'adam' works well on data sets of thousands of samples or
        more; 'lbfgs' often converges faster and better on small ones.

    alpha : float, default=0.0001
        Strength of the L2 regularization term, divided by the sample size when added to the
        loss.

    batch_size : int or 'auto', default='auto'
        Size of minibatches for the stochastic solvers; 'auto' is ``min(200, n_samples)``.
        Unused by 'lbfgs'.

    learning_rate : {'constant', 'invscaling', 'adaptive'}, default='constant'
        Learning rate schedule of 'sgd':

        - 'constant' keeps `learning_rate_init`;
        - 'invscaling' sets it after each epoch to
          ``learning_rate_init / (t_ + 1) ** power_t``, t_ counting the samples seen;
        - 'adaptive' keeps it while the training loss (or, with `early_stopping`, the
          validation score) improves by at least `tol`; after `n_iter_no_change` epochs that
          do not, it divides it by 5, and stops once it is at most 1e-6.

    learning_rate_init : float, default=0.001
        The initial learning rate of 'sgd' and 'adam'.

    power_t : float, default=0.5
        The exponent of 'invscaling'. Only used when solver='sgd'.

    max_iter : int, default=200
        Maximum number of iterations: epochs (passes over the data) for 'sgd' and 'adam',
        L-BFGS iterations for 'lbfgs'.

    shuffle : bool, default=True
        Whether to shuffle the samples in each epoch. Only used when solver='sgd' or 'adam'.

    random_state : int, RandomState instance or None, default=None
        Determines the weights' initialization, the early-stopping split, the shuffling and
        the dropout masks. Pass an int for reproducible results across calls. See
        :term:`Glossary <random_state>`.

    tol : float, default=1e-4
        Tolerance for the optimization: when the loss or score does not improve by at least
        `tol` for `n_iter_no_change` consecutive epochs, training stops (unless
        learning_rate='adaptive'). For 'lbfgs', the gradient tolerance ``gtol``.

    verbose : bool, default=False
        Whether to print progress messages to stdout, as scikit-learn's.

    warm_start : bool, default=False
        When True, reuse the solution of the previous call to fit as initialization;
        otherwise erase it. See :term:`the Glossary <warm_start>`.

    momentum : float, default=0.9
        Momentum for gradient descent updates, in [0, 1]. Only used when solver='sgd'.

    nesterovs_momentum : bool, default=True
        Whether to use Nesterov's momentum. Only used when solver='sgd' and momentum > 0.

    early_stopping : bool, default=False
        Whether to set aside `validation_fraction` of the training data and stop when the
        validation score does not improve by at least `tol` for `n_iter_no_change`
        consecutive epochs, keeping the weights of the best epoch. The split is stratified
        for single-output classification. Only effective when solver='sgd' or 'adam'.

    validation_fraction : float, default=0.1
        Proportion of the training data set aside for early stopping, in [0, 1).

    beta_1 : float, default=0.9
        Exponential decay rate of Adam's first moment estimates, in [0, 1).

    beta_2 : float, default=0.999
        Exponential decay rate of Adam's second moment estimates, in [0, 1).

    epsilon : float, default=1e-8
        Adam's numerical-stability term.

    n_iter_no_change : int, default=10
        Maximum number of epochs not meeting the `tol` improvement. Only effective when
        solver='sgd' or 'adam'.

    max_fun : int, default=15000
        Maximum number of loss function calls of 'lbfgs'.

    dropout : float, default=0.0
        fastgd's own: the fraction of each hidden layer's units zeroed at random in every
        training batch (inverted dropout; prediction uses every unit). The masks come from
        `random_state`. Only used when solver='sgd' or 'adam'.

    dtype : {'float32', 'float64'} or None, default=None
        fastgd's own: the precision of the network and its training. None keeps float32
        input in float32 and converts everything else to float64, as scikit-learn does.

    n_threads : int or None, default=None
        fastgd's own: engine threads for fit and predict, set with `fastgd.set_num_threads`
        for the duration of the call and restored after. None uses the engine's default,
        which follows ``OMP_NUM_THREADS``, threadpoolctl and joblib's allotment to its
        workers. The setting is process-wide: do not give different values to estimators
        fitted at the same time in threads of one process.
"""

_ATTRIBUTES_DOC = """\
loss_ : float
        The current loss computed with the loss function (for 'lbfgs', its final value).

    best_loss_ : float or None
        The minimum loss reached during fitting; None with `early_stopping` (see
        `best_validation_score_`). Only set when solver='sgd' or 'adam'.

    loss_curve_ : list of shape (n_iter_,)
        The loss at the end of each epoch. Only set when solver='sgd' or 'adam'.

    validation_scores_ : list of shape (n_iter_,) or None
        The {score} on the held-out validation set after each epoch; None without
        `early_stopping`. Only set when solver='sgd' or 'adam'.

    best_validation_score_ : float or None
        The best validation score ({score}); None without `early_stopping`. Only set when
        solver='sgd' or 'adam'.

    t_ : int
        The number of training samples seen by the solver during fitting.

    coefs_ : list of shape (n_layers - 1,)
        The ith element is the weight matrix of layer i, of shape (n_in, n_out): a view of
        ``network_``'s memory, so it follows further training.

    intercepts_ : list of shape (n_layers - 1,)
        The ith element is the bias vector of layer i + 1, a view of ``network_``'s memory.

    n_features_in_ : int
        Number of features seen during :term:`fit`.

    feature_names_in_ : ndarray of shape (n_features_in_,)
        Names of features seen during :term:`fit`. Defined only when `X` has feature names
        that are all strings.

    n_iter_ : int
        The number of iterations the solver has run (in the last call to fit).

    n_layers_ : int
        Number of layers, input and output included.

    n_outputs_ : int
        Number of outputs.

    out_activation_ : str
        Name of the output activation function.

    network_ : fastgd.Network
        The trained network, in the dtype of the fit. Its ``metadata["training"]`` records
        the estimator, solver, iterations, final loss and the engine threads the fit ran on.
"""

_NOTES_DOC = """\
The algorithm is scikit-learn 1.9's, step for step: weights drawn from the same
    `random_state` in the same order, samples shuffled and split alike, the same learning-rate
    schedules and stopping rules, the same L-BFGS-B call. A float64 fit therefore matches
    scikit-learn's coefficients, loss curve and iteration count to rounding, while every
    epoch runs in fastgd's C++ engine. Sparse X (CSR, or CSC converted once to CSR) is never
    densified.

    Pickling (and `copy.deepcopy`) stores ``network_`` as the bytes of a fastgd model file
    (`fastgd.io.to_bytes`), never a C++ object, together with the optimizer's state, so that
    `partial_fit` continues after unpickling exactly as it would have before.
"""


class MLPClassifier(ClassifierMixin, _BaseMLP):
    __doc__ = f"""Multi-layer perceptron classifier on the fastgd engine, a drop-in for scikit-learn's.

    Optimizes the log-loss with L-BFGS or stochastic gradient descent: softmax outputs for
    multiclass targets, logistic outputs for binary and multilabel ones.

    Parameters
    ----------
    {_PARAMETERS_DOC}
    class_weight : dict, 'balanced' or None, default=None
        fastgd's own: weights of the classes, ``{{class_label: weight}}``, multiplied into
        the sample weights as `sklearn.utils.class_weight.compute_sample_weight` computes
        them. 'balanced' weighs classes inversely to their frequency in y,
        ``n_samples / (n_classes * np.bincount(y))``; it is refused by `partial_fit`, which
        sees only part of the data.

    Attributes
    ----------
    classes_ : ndarray or list of ndarray of shape (n_classes,)
        Class labels for each output.

    {_ATTRIBUTES_DOC.format(score="accuracy")}
    See Also
    --------
    MLPRegressor : Multi-layer perceptron regressor on the fastgd engine.
    sklearn.neural_network.MLPClassifier : The scikit-learn estimator this one replaces.

    Notes
    -----
    {_NOTES_DOC}
    Examples
    --------
    >>> from fastgd.sklearn import MLPClassifier
    >>> from sklearn.datasets import make_classification
    >>> X, y = make_classification(n_samples=100, random_state=1)
    >>> clf = MLPClassifier(solver="lbfgs", random_state=1).fit(X, y)
    >>> clf.predict(X[:5])
    array([1, 1, 1, 0, 0])
    >>> clf.score(X, y)
    1.0
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "class_weight": [StrOptions({"balanced"}), dict, None],
    }
    _score_function = staticmethod(accuracy_score)

    def __init__(
        self,
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        class_weight=None,
        dtype=None,
        n_threads=None,
    ):
        # every argument stored verbatim, as scikit-learn's estimators do
        arguments = dict(locals())
        del arguments["self"]
        vars(self).update(arguments)

    def _output_activation(self):
        return "softmax" if self._label_binarizer.y_type_ == "multiclass" else "logistic"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self, X, y, accept_sparse=["csr", "csc"], multi_output=True, dtype=self._input_dtype(reset), reset=reset
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        if not hasattr(self, "classes_") or (not self.warm_start and not incremental):
            self._label_binarizer = LabelBinarizer().fit(y)
            self.classes_ = self._label_binarizer.classes_
        else:
            self._check_known_classes(unique_labels(y))
        return X, y

    def _check_known_classes(self, classes):
        if self.warm_start:
            if set(classes) != set(self.classes_):
                raise ValueError(
                    "warm_start can only be used where `y` has the same classes as in the previous call "
                    f"to fit. Previously got {self.classes_}, `y` has {classes}"
                )
        elif len(np.setdiff1d(classes, self.classes_, assume_unique=True)):
            raise ValueError(f"`y` has classes not in `self.classes_`. `self.classes_` has {self.classes_}. 'y' has {classes}.")

    def _encode_targets(self, y):
        # bool keeps float32 training in float32
        return self._label_binarizer.transform(y).astype(bool)

    def _sample_weight(self, sample_weight, X, y, incremental):
        sample_weight = super()._sample_weight(sample_weight, X, y, incremental)
        if self.class_weight is None:
            return sample_weight
        if incremental and isinstance(self.class_weight, str):
            raise ValueError(
                f"class_weight '{self.class_weight}' is not supported for partial_fit. To use 'balanced' weights, "
                "compute them with sklearn.utils.class_weight.compute_class_weight('balanced', classes=classes, y=y) "
                "on a large enough sample of the training targets and pass the resulting dict as class_weight."
            )
        class_weights = compute_sample_weight(self.class_weight, y)
        return class_weights if sample_weight is None else sample_weight * class_weights

    def _decode(self, output):
        if self.out_activation_ == "softmax":
            return self.classes_.take(output.argmax(axis=1))  # LabelBinarizer's multiclass inverse
        return self._label_binarizer.inverse_transform(output.ravel() if self.n_outputs_ == 1 else output)

    @available_if(_is_stochastic)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None, classes=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_classes)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.
        classes : array of shape (n_classes,), default=None
            Classes across all calls to partial_fit, for example ``np.unique(y_all)``.
            Required on the first call, optional after; y need not contain all of them.

        Returns
        -------
        self : object
            The updated model.
        """
        if _check_partial_fit_first_call(self, classes):
            self._label_binarizer = LabelBinarizer()
            self._label_binarizer.fit(y if type_of_target(y).startswith("multilabel") else classes)
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predict using the multi-layer perceptron classifier.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_classes)
            The predicted classes.
        """
        check_is_fitted(self)
        return self._decode(self._forward(X))

    def predict_proba(self, X):
        """Probability estimates.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y_prob : ndarray of shape (n_samples, n_classes)
            The probability of each class for each sample, classes ordered as in `classes_`.
        """
        check_is_fitted(self)
        output = self._forward(X)
        if self.n_outputs_ == 1:
            output = output.ravel()
            return np.vstack([1 - output, output]).T
        return output

    def predict_log_proba(self, X):
        """Logarithm of the probability estimates, ``log(predict_proba(X))``.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        log_y_prob : ndarray of shape (n_samples, n_classes)
            The log-probability of each class for each sample, classes ordered as in `classes_`.
        """
        y_prob = self.predict_proba(X)
        return np.log(y_prob, out=y_prob)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = True
        return tags


class MLPRegressor(RegressorMixin, _BaseMLP):
    __doc__ = f"""Multi-layer perceptron regressor on the fastgd engine, a drop-in for scikit-learn's.

    Optimizes the squared error with L-BFGS or stochastic gradient descent, through identity
    outputs; y may have several columns.

    Parameters
    ----------
    loss : {{'squared_error'}}, default='squared_error'
        The loss function, half the squared error averaged over outputs. scikit-learn's
        'poisson' loss is not supported: it is refused with scikit-learn's
        InvalidParameterError.

    {_PARAMETERS_DOC}
    Attributes
    ----------
    {_ATTRIBUTES_DOC.format(score="R² score")}
    See Also
    --------
    MLPClassifier : Multi-layer perceptron classifier on the fastgd engine.
    sklearn.neural_network.MLPRegressor : The scikit-learn estimator this one replaces.

    Notes
    -----
    {_NOTES_DOC}
    Examples
    --------
    >>> from fastgd.sklearn import MLPRegressor
    >>> from sklearn.datasets import make_regression
    >>> X, y = make_regression(n_samples=200, n_features=20, random_state=1)
    >>> regr = MLPRegressor(solver="lbfgs", random_state=1).fit(X, y)
    >>> regr.predict(X[:2]).shape
    (2,)
    >>> round(regr.score(X, y), 2)
    1.0
    """

    _parameter_constraints: dict = {
        **_BaseMLP._parameter_constraints,
        "loss": [StrOptions({"squared_error"})],
    }
    _score_function = staticmethod(r2_score)

    def __init__(
        self,
        loss="squared_error",
        hidden_layer_sizes=(100,),
        activation="relu",
        *,
        solver="adam",
        alpha=0.0001,
        batch_size="auto",
        learning_rate="constant",
        learning_rate_init=0.001,
        power_t=0.5,
        max_iter=200,
        shuffle=True,
        random_state=None,
        tol=1e-4,
        verbose=False,
        warm_start=False,
        momentum=0.9,
        nesterovs_momentum=True,
        early_stopping=False,
        validation_fraction=0.1,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        n_iter_no_change=10,
        max_fun=15000,
        dropout=0.0,
        dtype=None,
        n_threads=None,
    ):
        # every argument stored verbatim, as scikit-learn's estimators do
        arguments = dict(locals())
        del arguments["self"]
        vars(self).update(arguments)

    def _output_activation(self):
        return "identity"

    def _validate_input(self, X, y, incremental, reset):
        X, y = validate_data(
            self,
            X,
            y,
            accept_sparse=["csr", "csc"],
            multi_output=True,
            y_numeric=True,
            dtype=self._input_dtype(reset),
            reset=reset,
        )
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return X, y

    def _encode_targets(self, y):
        return y.reshape(-1, 1) if y.ndim == 1 else y

    def _decode(self, output):
        return output.ravel() if output.shape[1] == 1 else output

    @available_if(_is_stochastic)
    @_fit_context(prefer_skip_nested_validation=True)
    def partial_fit(self, X, y, sample_weight=None):
        """Update the model with a single epoch over the given data.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.
        y : array-like of shape (n_samples,) or (n_samples, n_outputs)
            The target values.
        sample_weight : array-like of shape (n_samples,), default=None
            Sample weights.

        Returns
        -------
        self : object
            The updated model.
        """
        return self._fit(X, y, sample_weight, incremental=True)

    def predict(self, X):
        """Predict using the multi-layer perceptron model.

        Parameters
        ----------
        X : {array-like, sparse matrix} of shape (n_samples, n_features)
            The input data.

        Returns
        -------
        y : ndarray of shape (n_samples,) or (n_samples, n_outputs)
            The predicted values.
        """
        check_is_fitted(self)
        return self._decode(self._forward(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags
