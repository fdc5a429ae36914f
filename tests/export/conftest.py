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
