"""Networks to export: the default MNIST CNN with trained-looking weights (random, but not zero biases)."""
import numpy as np
import pytest

from minicnn.training.architectures import build_model, mnist_cnn


def randomized(model, rng):
    """Give every parameter random values (biases included), so that an export that drops one is caught."""
    for _, param, _ in model.parameters():
        param[...] = rng.standard_normal(param.shape).astype(param.dtype) * (0.3 if param.ndim > 1 else 0.1)
    return model


@pytest.fixture
def mnist_model():
    rng = np.random.default_rng(0)
    return randomized(build_model(mnist_cnn(), rng=rng), rng)


def _with_statistics(model, rng):
    """Random running statistics in every BatchNorm, so that an export using batch statistics (or none) is caught."""
    for layer in model.layers:
        if hasattr(layer, "buffers") and "running_var" in getattr(layer, "buffers", {}):
            layer.buffers["running_mean"][...] = rng.standard_normal(layer.num_features) * 0.5
            layer.buffers["running_var"][...] = rng.uniform(0.5, 2.0, layer.num_features)
    return model


@pytest.fixture
def bn_model():
    return make_bn_model()


@pytest.fixture
def every_layer_model():
    return make_every_layer_model()


def make_bn_model():
    """conv-BN-ReLU-pool twice, then dense-BN1D-ReLU-dropout-dense: the batch-norm network, in eval mode."""
    from minicnn import BatchNorm1D, BatchNorm2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential
    rng = np.random.default_rng(3)
    model = Sequential([Conv2D(1, 8, 3, padding=1, bias=False, rng=rng), BatchNorm2D(8), ReLU(), MaxPool2D(2),
                        Conv2D(8, 16, 3, padding=1, bias=False, rng=rng), BatchNorm2D(16), ReLU(), MaxPool2D(2),
                        Flatten(), Dense(16 * 7 * 7, 32, rng=rng), BatchNorm1D(32), ReLU(), Dropout(0.3, rng=rng),
                        Dense(32, 10, rng=rng)])
    return _with_statistics(randomized(model, rng), rng).eval()


def make_every_layer_model():
    """One of every minicnn layer type, in eval mode (input (3, 12, 10))."""
    from minicnn import (
        AvgPool2D,
        BatchNorm1D,
        BatchNorm2D,
        Conv2D,
        Dense,
        Dropout,
        Flatten,
        GlobalAvgPool2D,
        LeakyReLU,
        MaxPool2D,
        ReLU,
        Sequential,
        Sigmoid,
        Tanh,
    )
    rng = np.random.default_rng(4)
    model = Sequential([Conv2D(3, 6, (3, 2), stride=(1, 2), padding=(1, 1), rng=rng), BatchNorm2D(6, affine=False),
                        LeakyReLU(0.1), AvgPool2D(3, stride=1, padding=1), Conv2D(6, 8, 3, padding="same", rng=rng),
                        Tanh(), MaxPool2D(2), Conv2D(8, 12, 1, rng=rng), Sigmoid(), GlobalAvgPool2D(),
                        BatchNorm1D(12), Dropout(0.5, rng=rng), Dense(12, 7, rng=rng), ReLU(), Flatten(),
                        Dense(7, 5, rng=rng)])
    return _with_statistics(randomized(model, rng), rng).eval()
