"""The math of a CNN: layers, losses, Sequential, optimizers, schedules, and the table that picks each operation's code.

- ``textbook``: every layer's forward beside its backward, and the optimizer updates, in NumPy;
- ``reference``: the same as plain loops, one window at a time (the oracle of the tests);
- ``ops``: which implementation (loops, textbook, the fast ``minicnn.engine``, or your own) runs each operation;
- ``layer``: the ``Layer`` base and ``LAYERS``, every layer class by name; the layers in ``conv``, ``dense``, ...;
- ``gradcheck``: the finite-difference checker.

May import: ``minicnn.engine`` and ``minicnn.utils`` (never training, data or edges code).
"""
from minicnn.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from minicnn.nn.conv import Conv2D
from minicnn.nn.dense import Dense
from minicnn.nn.dropout import Dropout
from minicnn.nn.flatten import Flatten
from minicnn.nn.layer import LAYERS, Layer
from minicnn.nn.losses import mse, softmax, softmax_cross_entropy
from minicnn.nn.model import Sequential
from minicnn.nn.normalization import BatchNorm1D, BatchNorm2D
from minicnn.nn.ops import current_engine, register, use_engine
from minicnn.nn.optim import SGD, Adam, AdamW, RMSprop
from minicnn.nn.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from minicnn.nn.schedules import CosineLR, StepLR

__all__ = ["Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense", "BatchNorm2D", "BatchNorm1D", "Dropout", "AvgPool2D",
           "GlobalAvgPool2D", "LeakyReLU", "Tanh", "Sigmoid", "Layer", "LAYERS", "softmax", "softmax_cross_entropy", "mse",
           "Sequential", "SGD", "Adam", "AdamW", "RMSprop", "StepLR", "CosineLR", "use_engine", "current_engine", "register"]
