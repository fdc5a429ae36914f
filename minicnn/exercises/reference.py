"""The library's own math in the exercises' signatures: what a check compares with.

Calls ``minicnn.nn.textbook``, ``minicnn.nn.im2col`` and ``minicnn.nn.losses`` (not ``solutions``), so a check
measures a learner against the code that trains the networks.
"""
import numpy as np

from minicnn.nn import textbook
from minicnn.nn.im2col import im2col as _im2col
from minicnn.nn.losses import softmax_cross_entropy as _sce


def _pad(p):
    return p if isinstance(p, tuple) else (p, p, p, p)


def conv2d_single(image, kernel):
    return textbook.conv2d_forward(image[None, None], kernel[None, None], None, (1, 1), (0, 0, 0, 0))[0][0, 0]


def im2col(x, kernel_size, stride=1, padding=0):
    ks = (kernel_size, kernel_size) if np.isscalar(kernel_size) else tuple(kernel_size)
    return _im2col(x, ks, (stride, stride), _pad(padding))


def conv2d_forward(x, W, b, stride=1, padding=0):
    """``padding`` may also be (top, bottom, left, right), for the one-sided diagnosis."""
    return textbook.conv2d_forward(x, W, b, (stride, stride), _pad(padding))[0]


def conv2d_backward(dout, x, W, b, stride=1, padding=0):
    _, cache = textbook.conv2d_forward(x, W, b, (stride, stride), _pad(padding))
    return textbook.conv2d_backward(dout, cache, True)


def maxpool2d_forward(x, size=2, stride=2):
    return textbook.maxpool2d_forward(x, (size, size), (stride, stride))[0]


def maxpool2d_backward(dout, x, size=2, stride=2):
    _, cache = textbook.maxpool2d_forward(x, (size, size), (stride, stride))
    return textbook.maxpool2d_backward(dout, cache)


def relu_forward(x):
    return textbook.relu_forward(x)[0]


def relu_backward(dout, x):
    return textbook.relu_backward(dout, textbook.relu_forward(x)[1])


def dense_forward(x, W, b):
    return textbook.dense_forward(x, W, b)[0]


def dense_backward(dout, x, W, b):
    return textbook.dense_backward(dout, textbook.dense_forward(x, W, b)[1], True)


def softmax_cross_entropy(logits, labels):
    return _sce(logits, labels)


def sgd_momentum_step(param, grad, velocity, lr, momentum):
    p, state = param.copy(), {"velocity": velocity.copy()}
    textbook.sgd_update(p, grad, state, lr=lr, momentum=momentum, nesterov=False, weight_decay=0.0)
    return p, state["velocity"]
