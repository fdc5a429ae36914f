"""The math of a CNN, in textbook form: layers (forward beside backward), losses, Sequential, optimizers, schedules.

Also the loop versions every fast path is tested against (``reference``) and the
finite-difference checker (``gradcheck``).  The speed lives in ``minicnn.engine``;
``use_engine("textbook")`` runs the code here instead.
May import: ``minicnn.engine`` and ``minicnn.utils`` (never training, data or edges code).
"""
from minicnn.nn.activations import LeakyReLU, ReLU, Sigmoid, Tanh
from minicnn.nn.conv import Conv2D
from minicnn.nn.dense import Dense
from minicnn.nn.dropout import Dropout
from minicnn.nn.engines import current_engine, use_engine
from minicnn.nn.flatten import Flatten
from minicnn.nn.losses import mse, softmax, softmax_cross_entropy
from minicnn.nn.model import Sequential
from minicnn.nn.normalization import BatchNorm1D, BatchNorm2D
from minicnn.nn.optim import SGD
from minicnn.nn.pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from minicnn.nn.schedules import CosineLR, StepLR

__all__ = ["Conv2D", "ReLU", "MaxPool2D", "Flatten", "Dense",
           "BatchNorm2D", "BatchNorm1D", "Dropout", "AvgPool2D", "GlobalAvgPool2D", "LeakyReLU", "Tanh", "Sigmoid",
           "softmax", "softmax_cross_entropy", "mse",
           "Sequential", "SGD", "StepLR", "CosineLR", "use_engine", "current_engine"]
