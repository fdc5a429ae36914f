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


# One of every minicnn layer type (input (3, 12, 10)); test_every_layer_type_is_in_the_model keeps it complete.
EVERY_LAYER = [
    {"type": "Conv2D", "in_channels": 3, "out_channels": 6, "kernel_size": [3, 2], "stride": [1, 2], "padding": [1, 1]},
    {"type": "BatchNorm2D", "num_features": 6, "affine": False}, {"type": "LeakyReLU", "negative_slope": 0.1},
    {"type": "AvgPool2D", "kernel_size": 3, "stride": 1, "padding": 1},
    {"type": "Conv2D", "in_channels": 6, "out_channels": 8, "kernel_size": 3, "padding": "same"}, {"type": "Tanh"},
    {"type": "MaxPool2D", "kernel_size": 2}, {"type": "Conv2D", "in_channels": 8, "out_channels": 12, "kernel_size": 1},
    {"type": "Sigmoid"}, {"type": "GlobalAvgPool2D"}, {"type": "BatchNorm1D", "num_features": 12},
    {"type": "Dropout", "p": 0.5}, {"type": "Dense", "in_features": 12, "out_features": 7}, {"type": "ReLU"},
    {"type": "Flatten"}, {"type": "Dense", "in_features": 7, "out_features": 5},
]


def make_every_layer_model():
    """``EVERY_LAYER`` with random weights and running statistics, in eval mode."""
    rng = np.random.default_rng(4)
    return _with_statistics(randomized(build_model(EVERY_LAYER, rng=rng), rng), rng).eval()
