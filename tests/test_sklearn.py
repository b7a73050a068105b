"""fastgd.sklearn: scikit-learn's estimator checks, parity with scikit-learn's own MLP, inputs,
sample and class weights, pickling, errors, and model selection in joblib and dask workers."""

import copy
import doctest
import os
import pickle
import pickletools
import re
import warnings

import numpy as np
import pytest

pytest.importorskip("sklearn")

import joblib
import scipy.sparse as sp
from numpy.testing import assert_allclose, assert_array_equal
from sklearn import datasets
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.neural_network import MLPClassifier as SkMLPClassifier
from sklearn.neural_network import MLPRegressor as SkMLPRegressor
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.class_weight import compute_sample_weight
from sklearn.utils.estimator_checks import parametrize_with_checks

import fastgd
import fastgd.sklearn
from fastgd.sklearn import MLPClassifier, MLPRegressor

ignore_convergence = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


@pytest.fixture(scope="module")
def digits():
    X, y = datasets.load_digits(return_X_y=True)
    return X / 16, y


@pytest.fixture(scope="module")
def cancer():
    X, y = datasets.load_breast_cancer(return_X_y=True)
    return StandardScaler().fit_transform(X), y


@pytest.fixture(scope="module")
def diabetes():
    X, y = datasets.load_diabetes(return_X_y=True)
    return X, (y - y.mean()) / y.std()


@pytest.fixture(scope="module")
def diabetes2(diabetes):
    X, y = diabetes
    return X, np.column_stack([y, y**2 - 1])


def fitted_attributes(model):
    names = ["n_iter_", "loss_", "best_loss_", "loss_curve_", "validation_scores_", "best_validation_score_", "t_"]
    return {name: getattr(model, name) for name in names if hasattr(model, name)}


def assert_same_model(ours, theirs, rtol=1e-7):
    assert ours.n_iter_ == theirs.n_iter_
    assert ours.out_activation_ == theirs.out_activation_ and ours.n_layers_ == theirs.n_layers_
    for mine, reference in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert mine.dtype == reference.dtype
        assert_allclose(mine, reference, rtol=rtol)
    expected = fitted_attributes(theirs)
    assert set(fitted_attributes(ours)) == set(expected)
    for name, value in expected.items():
        if value is None:
            assert getattr(ours, name) is None, name
        else:
            assert_allclose(getattr(ours, name), value, rtol=rtol, err_msg=name)


def warnings_of(call, *args):
    """The messages of the warnings `call(*args)` emits."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call(*args)
    return [f"{w.category.__name__}: {w.message}" for w in caught]


def both(kind, **params):
    """(fastgd's estimator, scikit-learn's), built with the same parameters."""
    if kind == "classifier":
        return MLPClassifier(**params), SkMLPClassifier(**params)
    return MLPRegressor(**params), SkMLPRegressor(**params)


# ---- scikit-learn's estimator checks ------------------------------------------------------


@ignore_convergence
@parametrize_with_checks([MLPClassifier(max_iter=100), MLPRegressor(max_iter=100)])
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


# ---- parity with scikit-learn's MLP in float64 ---------------------------------------------

SOLVERS = {
    "sgd-nesterov": dict(solver="sgd", learning_rate_init=0.02),
    "sgd-momentum": dict(solver="sgd", learning_rate_init=0.02, nesterovs_momentum=False),
    "sgd-plain": dict(solver="sgd", learning_rate_init=0.05, momentum=0.0),
    "sgd-invscaling": dict(solver="sgd", learning_rate="invscaling", learning_rate_init=0.1, power_t=0.25),
    "sgd-adaptive": dict(solver="sgd", learning_rate="adaptive", learning_rate_init=0.05, tol=0.02, n_iter_no_change=2),
    "adam": dict(solver="adam", learning_rate_init=0.003, alpha=1e-3),
}
PROBLEMS = {"digits": "classifier", "cancer": "classifier", "diabetes": "regressor", "diabetes2": "regressor"}


@ignore_convergence
@pytest.mark.parametrize("early_stopping", [False, True], ids=["no-es", "early-stopping"])
@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("problem", PROBLEMS)
def test_stochastic_solvers_match_scikit_learn(request, problem, solver, early_stopping):
    X, y = request.getfixturevalue(problem)
    stopping = dict(n_iter_no_change=3, tol=1e-3) if early_stopping else {}
    params = dict(hidden_layer_sizes=(24, 12), max_iter=15, random_state=0, early_stopping=early_stopping)
    params.update({**stopping, **SOLVERS[solver]})
    ours, theirs = both(PROBLEMS[problem], **params)
    ours.fit(X, y)
    theirs.fit(X, y)
    assert_same_model(ours, theirs)
    assert_allclose(ours._optimizer.lr, theirs._optimizer.learning_rate_init if solver == "adam" else theirs._optimizer.learning_rate)
    if solver in ("sgd-adaptive", "sgd-invscaling"):
        assert ours._optimizer.lr < params["learning_rate_init"]  # the schedule did run


@ignore_convergence
def test_early_stopping_restores_the_best_epoch_and_stops_as_scikit_learn(digits):
    X, y = digits
    params = dict(hidden_layer_sizes=(16,), solver="sgd", learning_rate_init=0.3, max_iter=40, random_state=3,
                  early_stopping=True, n_iter_no_change=2, tol=0.0)
    ours, theirs = both("classifier", **params)
    ours.fit(X, y)
    theirs.fit(X, y)
    assert ours.n_iter_ < 40 and np.argmax(ours.validation_scores_) < ours.n_iter_ - 1
    assert_same_model(ours, theirs)
    assert_array_equal(ours.predict(X), theirs.predict(X))


@pytest.mark.parametrize("problem", ["digits", "cancer", "diabetes", "diabetes2"])
def test_lbfgs_matches_scikit_learn(request, problem):
    X, y = request.getfixturevalue(problem)
    params = dict(hidden_layer_sizes=(16,), solver="lbfgs", max_iter=30, random_state=0, alpha=1e-3)
    ours, theirs = both(PROBLEMS[problem], **params)
    assert warnings_of(ours.fit, X, y) == warnings_of(theirs.fit, X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert_allclose(ours.loss_, theirs.loss_, rtol=1e-6)
    for mine, reference in zip(ours.coefs_ + ours.intercepts_, theirs.coefs_ + theirs.intercepts_):
        assert_allclose(mine, reference, rtol=1e-4, atol=1e-6)
    assert not hasattr(ours, "loss_curve_") and not hasattr(theirs, "loss_curve_")


def test_lbfgs_stops_on_max_fun_as_scikit_learn(diabetes):
    X, y = diabetes
    ours, theirs = both("regressor", hidden_layer_sizes=(8,), solver="lbfgs", max_fun=7, random_state=0)
    with pytest.warns(ConvergenceWarning, match="STOP: TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT"):
        ours.fit(X, y)
    with pytest.warns(ConvergenceWarning):
        theirs.fit(X, y)
    assert ours.n_iter_ == theirs.n_iter_
    assert_allclose(ours.loss_, theirs.loss_, rtol=1e-10)


@ignore_convergence
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_partial_fit_and_warm_start_match_scikit_learn(digits, kind):
    X, y = digits
    y = y if kind == "classifier" else y / 9.0
    extra = {"classes": np.arange(10)} if kind == "classifier" else {}
    ours, theirs = both(kind, hidden_layer_sizes=(16,), solver="sgd", learning_rate="invscaling",
                        learning_rate_init=0.2, random_state=0)
    for part in range(3):
        rows = slice(part * 500, (part + 1) * 500)
        ours.partial_fit(X[rows], y[rows], **extra)
        theirs.partial_fit(X[rows], y[rows], **extra)
    assert_same_model(ours, theirs)
    assert ours.t_ == 1500
    ours.set_params(warm_start=True, max_iter=3)
    theirs.set_params(warm_start=True, max_iter=3)
    ours.fit(X, y)
    theirs.fit(X, y)
    assert_same_model(ours, theirs)


def test_convergence_warning_and_verbose_output_are_scikit_learn_s(digits, capsys):
    X, y = digits
    params = dict(hidden_layer_sizes=(8,), solver="sgd", learning_rate="adaptive", learning_rate_init=0.1,
                  tol=0.2, n_iter_no_change=1, max_iter=6, random_state=0, verbose=True, early_stopping=True)
    ours, theirs = both("classifier", **params)
    ours_warned = warnings_of(ours.fit, X, y)
    ours_printed = capsys.readouterr().out
    assert ours_warned == warnings_of(theirs.fit, X, y)
    assert "Setting learning rate to" in ours_printed
    assert ours_printed == capsys.readouterr().out


def test_ctrl_c_stops_training_as_scikit_learn_does(digits, monkeypatch):
    real_run_epoch, epochs = fastgd.sklearn.run_epoch, []

    def interrupted_in_the_third_epoch(*args, **kwargs):
        epochs.append(1)
        result = real_run_epoch(*args, **kwargs)
        return result._replace(interrupted=len(epochs) == 3)

    monkeypatch.setattr(fastgd.sklearn, "run_epoch", interrupted_in_the_third_epoch)
    X, y = digits
    with pytest.warns(UserWarning, match="Training interrupted by user."):
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=10, random_state=0).fit(X, y)
    assert clf.n_iter_ == 2 and len(clf.loss_curve_) == 2 and clf.predict(X).shape == y.shape


# ---- inputs --------------------------------------------------------------------------------


@ignore_convergence
def test_dataframes_lists_and_sparse_inputs_give_the_model_of_a_dense_array(digits):
    pd = pytest.importorskip("pandas")
    pl = pytest.importorskip("polars")
    X, y = digits[0][:300], digits[1][:300]
    model = MLPClassifier(hidden_layer_sizes=(10,), max_iter=5, random_state=0)
    reference = clone(model).fit(X, y)
    frame = pd.DataFrame(X, columns=[f"pixel{i}" for i in range(64)])
    for data in (frame, pl.from_pandas(frame), X.tolist()):
        fitted = clone(model).fit(data, y)
        for mine, expected in zip(fitted.coefs_ + fitted.intercepts_, reference.coefs_ + reference.intercepts_):
            assert_array_equal(mine, expected)
        assert_array_equal(fitted.predict_proba(data), reference.predict_proba(X))
    assert_array_equal(clone(model).fit(frame, y).feature_names_in_, frame.columns)
    for container in (sp.csr_matrix, sp.csc_matrix, sp.csr_array, sp.coo_matrix):
        fitted = clone(model).fit(container(X), y)
        for mine, expected in zip(fitted.coefs_, reference.coefs_):
            assert_allclose(mine, expected, rtol=1e-12, atol=1e-15)
        assert_allclose(fitted.predict_proba(container(X)), reference.predict_proba(X), rtol=1e-12, atol=1e-15)


@ignore_convergence
def test_sparse_input_reaches_the_engine_as_csr(digits, monkeypatch):
    seen = []
    real_run_epoch = fastgd.sklearn.run_epoch

    def spy(network, state, X, *args, **kwargs):
        seen.append(type(X))
        return real_run_epoch(network, state, X, *args, **kwargs)

    monkeypatch.setattr(fastgd.sklearn, "run_epoch", spy)
    X, y = digits
    MLPClassifier(hidden_layer_sizes=(4,), max_iter=2, random_state=0, n_iter_no_change=1, tol=10).fit(sp.csc_matrix(X), y)
    assert seen == [sp.csr_matrix] * 2


@pytest.mark.parametrize("dtype", [np.int64, np.uint8, np.float16, bool])
def test_every_real_dtype_trains_as_float64(dtype):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (60, 5)).astype(dtype)
    y = rng.integers(0, 3, 60)
    model = MLPClassifier(hidden_layer_sizes=(6,), solver="lbfgs", max_iter=5, random_state=0)
    with pytest.warns(ConvergenceWarning):
        fitted = clone(model).fit(X, y)
    with pytest.warns(ConvergenceWarning):
        reference = clone(model).fit(X.astype(np.float64), y)
    assert fitted.network_.dtype == np.float64
    assert_array_equal(fitted.coefs_[0], reference.coefs_[0])


@ignore_convergence
def test_dtype_float32_input_stays_float32_unless_asked(digits):
    X, y = digits
    X32 = X.astype(np.float32)
    model = MLPClassifier(hidden_layer_sizes=(8,), max_iter=3, random_state=0)
    assert clone(model).fit(X32, y).network_.dtype == np.float32
    assert clone(model).fit(X32, y).predict_proba(X32).dtype == np.float32
    assert clone(model).fit(X32, y).coefs_[0].dtype == np.float32
    assert clone(model).set_params(dtype="float64").fit(X32, y).network_.dtype == np.float64
    single = clone(model).set_params(dtype="float32").fit(X, y)
    assert single.network_.dtype == np.float32
    assert_allclose(single.predict_proba(X), clone(model).fit(X32, y).predict_proba(X32))


@ignore_convergence
def test_string_labels_multilabel_and_multioutput(digits):
    X, y = digits
    names = np.array(["zero", "one", "two"], dtype=object)[y % 3]
    clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0).fit(X, names)
    assert list(clf.classes_) == ["one", "two", "zero"] and set(clf.predict(X)) <= set(names)
    X_ml, Y_ml = datasets.make_multilabel_classification(n_samples=150, n_classes=4, random_state=0)
    ours, theirs = both("classifier", hidden_layer_sizes=(8,), max_iter=10, random_state=0)
    ours.fit(X_ml, Y_ml)
    theirs.fit(X_ml, Y_ml)
    assert ours.out_activation_ == "logistic" and ours.predict(X_ml).shape == Y_ml.shape
    assert_same_model(ours, theirs)
    assert_allclose(ours.predict_proba(X_ml), theirs.predict_proba(X_ml), rtol=1e-7)


# ---- sample and class weights ----------------------------------------------------------------


@ignore_convergence
@pytest.mark.parametrize("kind", ["classifier", "regressor"])
def test_sample_weight_matches_scikit_learn(digits, kind):
    X, y = digits
    y = y if kind == "classifier" else y / 9.0
    weights = np.random.default_rng(0).uniform(0, 3, len(y))
    ours, theirs = both(kind, hidden_layer_sizes=(12,), max_iter=8, random_state=0, early_stopping=True)
    ours.fit(X, y, sample_weight=weights)
    theirs.fit(X, y, sample_weight=weights)
    assert_same_model(ours, theirs)
    assert_allclose(ours.score(X, y, sample_weight=weights), theirs.score(X, y, sample_weight=weights), rtol=1e-7)


@ignore_convergence
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_integer_sample_weights_equal_repeated_rows(digits, solver):
    X, y = digits[0][:60], digits[1][:60]
    weights = np.random.default_rng(1).integers(0, 4, 60)
    # 60 rows, 90 repeated ones: one batch each ("auto" is min(200, n_samples))
    model = MLPClassifier(hidden_layer_sizes=(10,), solver=solver, max_iter=20, random_state=0)
    weighted = clone(model).fit(X, y, sample_weight=weights)
    repeated = clone(model).fit(np.repeat(X, weights, axis=0), np.repeat(y, weights))
    assert_allclose(weighted.predict_proba(X), repeated.predict_proba(X), rtol=1e-7, atol=1e-12)


@ignore_convergence
def test_class_weight_multiplies_into_sample_weight(digits):
    X, y = digits[0][:400], digits[1][:400] % 3
    model = MLPClassifier(hidden_layer_sizes=(10,), max_iter=5, random_state=0)
    weights = np.random.default_rng(0).uniform(0.5, 2, len(y))
    for class_weight in ("balanced", {0: 1.0, 1: 3.0, 2: 0.5}):
        expected = compute_sample_weight(class_weight, y)
        balanced = clone(model).set_params(class_weight=class_weight).fit(X, y, sample_weight=weights)
        explicit = clone(model).fit(X, y, sample_weight=weights * expected)
        assert_array_equal(balanced.coefs_[0], explicit.coefs_[0])
    unweighted = clone(model).fit(X, y)
    assert not np.array_equal(unweighted.coefs_[0], explicit.coefs_[0])
    with pytest.raises(ValueError, match="class_weight 'balanced' is not supported for partial_fit"):
        clone(model).set_params(class_weight="balanced").partial_fit(X, y, classes=[0, 1, 2])


# ---- the fitted network, pickling -------------------------------------------------------------


@ignore_convergence
def test_coefs_are_views_of_the_network_through_partial_fit_and_early_stopping(digits, tmp_path):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver="sgd", random_state=0)
    for _ in range(3):
        clf.partial_fit(X, y, classes=np.arange(10))
        for (W, b), coef, intercept in zip(clf.network_.params, clf.coefs_, clf.intercepts_):
            assert np.shares_memory(W, coef) and np.shares_memory(b, intercept)
    stopped = MLPClassifier(hidden_layer_sizes=(8,), max_iter=5, random_state=0, early_stopping=True).fit(X, y)
    assert_array_equal(stopped.network_.params[0][0], stopped._best_coefs[0])
    assert_array_equal(stopped.network_.predict(X), stopped.predict_proba(X))
    stopped.network_.save(tmp_path / "digits.fgd")
    loaded = fastgd.load(tmp_path / "digits.fgd")
    assert_array_equal(loaded.predict(X), stopped.predict_proba(X))
    assert loaded.metadata["training"]["estimator"] == "MLPClassifier"


def pickled_globals(data):
    """The module of every class or function a pickle refers to."""
    modules, strings = set(), []
    for opcode, argument, _ in pickletools.genops(data):
        if opcode.name in ("SHORT_BINUNICODE", "BINUNICODE", "UNICODE"):
            strings.append(argument)
        elif opcode.name == "STACK_GLOBAL":
            modules.add(strings[-2])
        elif opcode.name == "GLOBAL":
            modules.add(argument.split(" ")[0])
    return modules


@ignore_convergence
@pytest.mark.parametrize("solver", ["adam", "sgd", "lbfgs"])
def test_pickle_deepcopy_and_clone_round_trips(digits, solver):
    X, y = digits
    clf = MLPClassifier(hidden_layer_sizes=(8,), solver=solver, max_iter=4, random_state=0).fit(X, y)
    data = pickle.dumps(clf)
    assert not any(module.startswith("fastgd.") and module != "fastgd.sklearn" for module in pickled_globals(data))
    for copied in (pickle.loads(data), copy.deepcopy(clf)):
        assert copied.network_ is not clf.network_
        assert_array_equal(copied.predict_proba(X), clf.predict_proba(X))
        assert fitted_attributes(copied).keys() == fitted_attributes(clf).keys()
    assert clone(clf).get_params() == clf.get_params() and not hasattr(clone(clf), "network_")
    if solver != "lbfgs":
        # the optimizer's state travels too: partial_fit continues exactly
        copied = pickle.loads(data)
        clf.partial_fit(X, y)
        copied.partial_fit(X, y)
        for mine, expected in zip(copied.coefs_ + copied.intercepts_, clf.coefs_ + clf.intercepts_):
            assert_array_equal(mine, expected)
    unfitted = pickle.loads(pickle.dumps(MLPRegressor(alpha=0.5)))
    assert unfitted.alpha == 0.5 and not hasattr(unfitted, "network_")


@ignore_convergence
def test_dropout_is_applied_and_reproducible(digits):
    X, y = digits
    model = MLPClassifier(hidden_layer_sizes=(16,), max_iter=3, random_state=0, dropout=0.3)
    first, second = clone(model).fit(X, y), clone(model).fit(X, y)
    assert [layer.dropout for layer in first.network_.layers] == [0.3, 0.0]
    assert_array_equal(first.coefs_[0], second.coefs_[0])
    plain = clone(model).set_params(dropout=0.0).fit(X, y)
    assert not np.allclose(first.coefs_[0], plain.coefs_[0])


# ---- errors as scikit-learn's -------------------------------------------------------------------


def raised(model, method, *args, **kwargs):
    """The type and message of the exception a call raises; sets in the message sorted (their
    order is Python's, not scikit-learn's)."""
    with pytest.raises(Exception) as info:
        getattr(model, method)(*args, **kwargs)
    message = re.sub(r"\{([^{}]*)\}", lambda match: "{" + ", ".join(sorted(match.group(1).split(", "))) + "}", str(info.value))
    return type(info.value), message


ERRORS = {
    "not fitted": ("classifier", {}, lambda X, y: [("predict", X)]),
    "n_features": ("classifier", {"max_iter": 1}, lambda X, y: [("fit", X, y), ("predict", X[:, :3])]),
    "continuous target": ("classifier", {}, lambda X, y: [("fit", X, y + 0.5)]),
    "NaN in X": ("regressor", {}, lambda X, y: [("fit", np.where(X == X.max(), np.nan, X), y)]),
    "Inf in X": ("classifier", {}, lambda X, y: [("fit", np.where(X == X.max(), np.inf, X), y)]),
    "unknown activation": ("classifier", {"activation": "gelu"}, lambda X, y: [("fit", X, y)]),
    "negative alpha": ("regressor", {"alpha": -1.0}, lambda X, y: [("fit", X, y)]),
    "hidden size 0": ("regressor", {"hidden_layer_sizes": (4, 0)}, lambda X, y: [("fit", X, y)]),
    "validation too small": ("classifier", {"early_stopping": True, "validation_fraction": 0.01},
                             lambda X, y: [("fit", X[:50], y[:50])]),
    "partial_fit with early stopping": ("regressor", {"early_stopping": True}, lambda X, y: [("partial_fit", X, y)]),
    "partial_fit without classes": ("classifier", {}, lambda X, y: [("partial_fit", X, y)]),
    "unseen class": ("classifier", {"max_iter": 1}, lambda X, y: [("partial_fit", X, y % 5, None, [0, 1, 2, 3, 4]),
                                                                  ("partial_fit", X, y)]),
    "partial_fit of lbfgs": ("classifier", {"solver": "lbfgs"}, lambda X, y: [("partial_fit", X, y)]),
    "sample_weight of wrong shape": ("classifier", {}, lambda X, y: [("fit", X, y, np.ones(3))]),
}


@ignore_convergence
@pytest.mark.parametrize("case", ERRORS)
def test_errors_are_scikit_learn_s(digits, case):
    X, y = digits[0][:200], digits[1][:200]
    kind, params, calls = ERRORS[case]
    ours, theirs = both(kind, **{"hidden_layer_sizes": (4,), "random_state": 0, **params})
    *setup, (method, *args) = calls(X, y)
    for model in (ours, theirs):
        for name, *setup_args in setup:
            getattr(model, name)(*setup_args)
    expected = raised(theirs, method, *args)
    assert raised(ours, method, *args) == expected
    assert issubclass(expected[0], (ValueError, TypeError, AttributeError, NotFittedError, InvalidParameterError))


def test_error_messages_name_what_is_wrong(digits):
    X, y = digits
    with pytest.raises(NotFittedError):
        MLPRegressor().predict(X)
    with pytest.raises(InvalidParameterError, match=r"The 'solver' parameter of MLPClassifier must be a str among"):
        MLPClassifier(solver="newton").fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"The 'dropout' parameter of MLPClassifier must be a float in the range \[0.0, 1.0\)"):
        MLPClassifier(dropout=1.0).fit(X, y)
    with pytest.raises(InvalidParameterError, match=r"The 'loss' parameter of MLPRegressor must be a str among \{'squared_error'\}"):
        MLPRegressor(loss="poisson").fit(X, y)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        fitted = MLPClassifier(max_iter=1).fit(X[:20], y[:20])
    with pytest.raises(ValueError, match="X has 3 features, but MLPClassifier is expecting 64 features as input"):
        fitted.predict(X[:, :3])
    assert not hasattr(MLPClassifier(solver="lbfgs"), "partial_fit")
    with pytest.raises(ValueError, match="Solver produced non-finite parameter weights"):
        MLPRegressor(solver="sgd", learning_rate_init=10.0, momentum=0.0, max_iter=50).fit(X, y * 1e150)


# ---- threads, model selection in joblib and dask workers ----------------------------------------


def engine_threads_of_fit(estimator, X, y):
    """A scorer reading, inside the worker, how many engine threads the fit ran on."""
    return estimator[-1].network_.metadata["training"]["n_threads"]


def small_search(n_jobs):
    pipeline = make_pipeline(StandardScaler(), MLPClassifier(hidden_layer_sizes=(8,), max_iter=20, random_state=0))
    scoring = {"accuracy": "accuracy", "threads": engine_threads_of_fit}
    return GridSearchCV(pipeline, {"mlpclassifier__alpha": [1e-4, 1e-1]}, cv=2, n_jobs=n_jobs, scoring=scoring, refit="accuracy")


def test_n_threads_is_set_for_the_call_and_restored(digits):
    X, y = digits
    before = fastgd.get_num_threads()
    assert fastgd._core.chosen_num_threads() is None  # the engine follows OpenMP's count
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        clf = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, n_threads=1, random_state=0).fit(X, y)
        default = MLPClassifier(hidden_layer_sizes=(8,), max_iter=2, random_state=0).fit(X, y)
    assert clf.network_.metadata["training"]["n_threads"] == 1
    assert default.network_.metadata["training"]["n_threads"] == before
    threadpoolctl = pytest.importorskip("threadpoolctl")
    with threadpoolctl.threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        limited = MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, random_state=0).fit(X, y)
    assert limited.network_.metadata["training"]["n_threads"] == 1
    assert fastgd.get_num_threads() == before and fastgd._core.chosen_num_threads() is None
    fastgd.set_num_threads(1)
    try:
        clf.set_params(n_threads=2).predict(X)
        assert fastgd._core.chosen_num_threads() == 1
    finally:
        fastgd.set_num_threads(None)
    assert_allclose(clf.predict_proba(X), default.predict_proba(X), rtol=1e-12)


@ignore_convergence
def test_grid_search_in_joblib_workers_gives_each_worker_its_share_of_cores(digits):
    X, y = digits
    parallel = small_search(n_jobs=2).fit(X, y)
    sequential = small_search(n_jobs=1).fit(X, y)
    assert_allclose(parallel.cv_results_["mean_test_accuracy"], sequential.cv_results_["mean_test_accuracy"])
    assert list(sequential.cv_results_["mean_test_threads"]) == [fastgd.get_num_threads()] * 2
    # joblib's allotment to each of its 2 workers, which a fastgd fit there must follow
    share = int(os.environ.get("OMP_NUM_THREADS", max(1, joblib.cpu_count() // 2)))
    assert list(parallel.cv_results_["mean_test_threads"]) == [share] * 2
    assert parallel.best_params_ == sequential.best_params_


@ignore_convergence
def test_grid_search_on_a_dask_cluster(digits):
    pytest.importorskip("dask")
    distributed = pytest.importorskip("dask.distributed")
    X, y = digits
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster), joblib.parallel_config(backend="dask"):
        search = small_search(n_jobs=2).fit(X, y)
    sequential = small_search(n_jobs=1).fit(X, y)
    assert_allclose(search.cv_results_["mean_test_accuracy"], sequential.cv_results_["mean_test_accuracy"])
    assert list(search.cv_results_["mean_test_threads"]) == [1, 1]


# ---- documentation --------------------------------------------------------------------------------


def test_docstring_examples_run():
    result = doctest.testmod(fastgd.sklearn, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 8 and result.failed == 0
