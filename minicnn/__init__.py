"""minicnn: a convolutional neural network from scratch in NumPy, every backward pass by hand."""
from minicnn.layers import Conv2D, Dense, Flatten, MaxPool2D, ReLU
from minicnn.losses import mse, softmax, softmax_cross_entropy
from minicnn.model import Sequential
from minicnn.optim import SGD, CosineLR, StepLR
from minicnn.train import NonFiniteLossError, evaluate, fit, predict

__version__ = "0.1.0"

__all__ = [
    "Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense",
    "softmax", "softmax_cross_entropy", "mse",
    "Sequential", "SGD", "StepLR", "CosineLR",
    "fit", "evaluate", "predict", "NonFiniteLossError",
]
