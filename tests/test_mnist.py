"""The textbook's MNIST results, reproduced on the real data (run alone with ``-m mnist``)."""

import numpy as np
import pytest

import fastgd

pytestmark = pytest.mark.mnist


def test_textbook_sigmoid_quadratic_cost_784_30_10(mnist):
    # Nielsen, "Neural Networks and Deep Learning", ch. 1: 784-30-10 sigmoid network, quadratic
    # cost, mini-batches of 10, lr 3.0, trained on the first 50,000 images; 95.42 % at best.
    (X, y), (X_test, y_test) = mnist
    net = fastgd.Network([784, 30, 10], activation="sigmoid", output_activation="sigmoid", loss="mse", seed=0)
    history = net.fit(
        X[:50000], y[:50000], epochs=30, batch_size=10, optimizer=fastgd.SGD(lr=3.0),
        validation_data=(X_test, y_test), seed=0, verbose=0,
    )
    accuracy = history.history["val_accuracy"]
    print(f"best test accuracy {max(accuracy):.4f} at epoch {int(np.argmax(accuracy)) + 1}")
    assert max(accuracy) >= 0.945
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_softmax_cross_entropy_100_hidden(mnist):
    (X, y), (X_test, y_test) = mnist
    net = fastgd.Network([784, 100, 10], activation="relu", output_activation="softmax", loss="cross_entropy", seed=0)
    history = net.fit(
        X[:50000], y[:50000], epochs=15, batch_size=32, optimizer=fastgd.SGD(lr=0.05, momentum=0.9),
        validation_data=(X_test, y_test), seed=0, verbose=0,
    )
    accuracy = history.history["val_accuracy"]
    print(f"best test accuracy {max(accuracy):.4f} at epoch {int(np.argmax(accuracy)) + 1}")
    assert max(accuracy) >= 0.975
    final = net.evaluate(X_test, y_test)
    assert final["accuracy"] == pytest.approx(accuracy[-1])


def test_engine_matches_twin_on_real_images(mnist):
    (X, y), _ = mnist
    args = dict(activation="sigmoid", output_activation="sigmoid", loss="mse", dtype="float64", seed=3)
    cpp, twin = fastgd.Network([784, 30, 10], **args), fastgd.reference.Network([784, 30, 10], **args)
    for net in (cpp, twin):
        net.fit(X[:1000], y[:1000], epochs=1, batch_size=10, optimizer=fastgd.SGD(lr=3.0), seed=1, verbose=0)
    for (W, b), (tW, tb) in zip(cpp.params, twin.params):
        np.testing.assert_allclose(W, tW, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(b, tb, rtol=1e-9, atol=1e-12)

