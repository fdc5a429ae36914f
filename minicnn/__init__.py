"""minicnn: a convolutional neural network from scratch in NumPy, every backward pass by hand.

Where things live (each subpackage's docstring says what it may import):

- ``minicnn.nn``: the math: layers, losses, Sequential, optimizers, the textbook and loop implementations,
  the table that picks each operation's code (``ops``), gradcheck;
- ``minicnn.engine``: the fast implementation (channels-last memory, BLAS, pooled buffers), used by default;
- ``minicnn.data``: MNIST and the IDX format, synthetic edge images, augmentation;
- ``minicnn.training``: the training loop, resumable runs, checkpoints, architectures as JSON;
- ``minicnn.edges``: classic image filters (Sobel, ...), the edge experiments, ``explain``, ``inspect``, pictures;
- ``minicnn.utils``: argument checks and file helpers shared by all of them.

Every layer class is here by its name (``from minicnn import Conv2D``): ``minicnn.nn.LAYERS`` lists them.
"""
from minicnn.nn import (
    LAYERS,
    SGD,
    Adam,
    AdamW,
    CosineLR,
    Layer,
    RMSprop,
    Sequential,
    StepLR,
    current_engine,
    mse,
    register,
    softmax,
    softmax_cross_entropy,
    use_engine,
)
from minicnn.training.loop import NonFiniteLossError, evaluate, fit, predict

globals().update(LAYERS)          # Conv2D, ReLU, MaxPool2D, ...: every layer class by its name

__version__ = "0.2.0"

__all__ = [
    *LAYERS, "Layer",
    "softmax", "softmax_cross_entropy", "mse",
    "Sequential", "SGD", "Adam", "AdamW", "RMSprop", "StepLR", "CosineLR",
    "fit", "evaluate", "predict", "NonFiniteLossError",
    "use_engine", "current_engine", "register",
]
