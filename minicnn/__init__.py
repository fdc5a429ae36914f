"""minicnn: a convolutional neural network from scratch in NumPy, every backward pass by hand.

Where things live (each subpackage's docstring says what it may import):

- ``minicnn.nn``: the math in textbook form: layers, losses, Sequential, optimizers, reference loops, gradcheck;
- ``minicnn.engine``: the speed (channels-last memory, BLAS, reused buffers) that the layers run on by default;
- ``minicnn.data``: MNIST and the IDX format, synthetic edge images, augmentation;
- ``minicnn.training``: the training loop, resumable runs, checkpoints, architectures as JSON;
- ``minicnn.edges``: classic image filters (Sobel, ...), the edge experiments, ``explain``, ``inspect``, pictures;
- ``minicnn.utils``: argument checks and file helpers shared by all of them.
"""
from minicnn.nn import (
                        SGD,
                        AvgPool2D,
                        BatchNorm1D,
                        BatchNorm2D,
                        Conv2D,
                        CosineLR,
                        Dense,
                        Dropout,
                        Flatten,
                        GlobalAvgPool2D,
                        LeakyReLU,
                        MaxPool2D,
                        ReLU,
                        Sequential,
                        Sigmoid,
                        StepLR,
                        Tanh,
                        current_engine,
                        mse,
                        softmax,
                        softmax_cross_entropy,
                        use_engine,
)
from minicnn.nn.optim import Adam, AdamW, RMSprop
from minicnn.training.loop import NonFiniteLossError, evaluate, fit, predict

__version__ = "0.2.0"

__all__ = [
    "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense",
    "BatchNorm2D", "BatchNorm1D", "Dropout", "AvgPool2D", "GlobalAvgPool2D", "LeakyReLU", "Tanh", "Sigmoid",
    "softmax", "softmax_cross_entropy", "mse",
    "Sequential", "SGD", "Adam", "AdamW", "RMSprop", "StepLR", "CosineLR",
    "fit", "evaluate", "predict", "NonFiniteLossError",
    "use_engine", "current_engine",
]
