"""Known mistakes, each computed from the library's math: ``MISTAKES[name]`` -> [(what, fn(*args) -> output)].

A check that finds a learner's output equal to one of these says the mistake's words; it never guesses.
"""
import numpy as np

from minicnn.exercises import reference as ref


def _flip(W):
    return W[..., ::-1, ::-1]


def _conv_nobias(x, W, b, stride, padding):
    return ref.conv2d_forward(x, W, np.zeros_like(b), stride, padding)


def _per_position(k):
    def wrong(x, W, b, stride, padding):
        C, KH, KW = W.shape[1:]
        return _conv_nobias(x, W, b, stride, padding) + {"C": C, "KK": KH * KW, "CKK": C * KH * KW}[k] * b[:, None, None]
    return wrong


def _grad_every_cell(dout, x, size, stride):
    dx = np.zeros_like(x)
    H_out, W_out = dout.shape[2:]
    for i in range(size):
        for j in range(size):
            dx[:, :, i:i + stride * (H_out - 1) + 1:stride, j:j + stride * (W_out - 1) + 1:stride] += dout
    return dx


def _grad_every_max(dout, x, size, stride):
    win = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    is_max = win == win.max(axis=(4, 5), keepdims=True)
    dx = np.zeros_like(x)
    H_out, W_out = dout.shape[2:]
    for i in range(size):
        for j in range(size):
            dx[:, :, i:i + stride * (H_out - 1) + 1:stride, j:j + stride * (W_out - 1) + 1:stride] += dout * is_max[..., i, j]
    return dx


def _dw_one_image(which):
    def wrong(dout, x, W, b, stride, padding):
        n = slice(0, 1) if which == "first" else slice(-1, None)
        dx, dW, db = ref.conv2d_backward(dout, x, W, b, stride, padding)
        return dx, ref.conv2d_backward(dout[n], x[n], W, b, stride, padding)[1], db
    return wrong


def _dw_mean(dout, x, W, b, stride, padding):
    dx, dW, db = ref.conv2d_backward(dout, x, W, b, stride, padding)
    return dx, dW / len(x), db


def _sgd(rule):
    def wrong(param, grad, velocity, lr, momentum):
        if rule == "keras":                       # v = m v - lr g;  p = p + v   (Keras, CS231n)
            v = momentum * velocity - lr * grad
            return param + v, v
        if rule == "sutskever":                   # v = m v + lr g;  p = p - v
            v = momentum * velocity + lr * grad
            return param - v, v
        v = momentum * velocity + (1 - momentum) * grad      # dampened (an exponential moving average)
        return param - lr * v, v
    return wrong


STRIDE_1 = ("stride ignored: your output is what stride 1 gives", lambda x, W, b, s, p: ref.conv2d_forward(x, W, b, 1, p))
MISTAKES = {
    "conv2d_single": [("flipped: you flipped the kernel (a true convolution); deep learning's convolution is "
                       "cross-correlation, with no flip", lambda image, kernel: ref.conv2d_single(image, kernel[::-1, ::-1]))],
    "conv2d_forward": [
        ("flipped: you flipped the kernel (a true convolution); deep learning's convolution is cross-correlation, "
         "with no flip", lambda x, W, b, s, p: ref.conv2d_forward(x, _flip(W), b, s, p)),
        STRIDE_1,
        ("padding on one side only (top and left)", lambda x, W, b, s, p: ref.conv2d_forward(x, W, b, s, (p, 0, p, 0))),
        ("padding on one side only (bottom and right)", lambda x, W, b, s, p: ref.conv2d_forward(x, W, b, s, (0, p, 0, p))),
        ("padding ignored", lambda x, W, b, s, p: ref.conv2d_forward(x, W, b, s, 0)),
        ("bias missing: add b[f] to every output of filter f", _conv_nobias),
        ("bias added per position: b[f] was added once per channel, not once per output", _per_position("C")),
        ("bias added per position: b[f] was added once per kernel position, not once per output", _per_position("KK")),
        ("bias added per position: b[f] was added inside the innermost loop, not once per output", _per_position("CKK")),
        ("channels not summed: only the last channel counts", lambda x, W, b, s, p: ref.conv2d_forward(x[:, -1:], W[:, -1:], b, s, p)),
        ("channels not summed: only the first channel counts", lambda x, W, b, s, p: ref.conv2d_forward(x[:, :1], W[:, :1], b, s, p)),
    ],
    "conv2d_backward": [
        ("flipped: dx and dW of a flipped kernel (a true convolution) in the forward",
         lambda d, x, W, b, s, p: tuple(g if i != 1 else g[..., ::-1, ::-1]
                                        for i, g in enumerate(ref.conv2d_backward(d, x, _flip(W), b, s, p)))),
        ("dW not summed over the batch: it is the last image's only", _dw_one_image("last")),
        ("dW not summed over the batch: it is the first image's only", _dw_one_image("first")),
        ("dW divided by the batch size: the loss's mean already did that; dW sums over the images", _dw_mean),
        ("stride ignored", lambda d, x, W, b, s, p: ref.conv2d_backward(d, x, W, b, 1, p) if s == 1 else None),
    ],
    "maxpool2d_forward": [("stride ignored: your output is what stride 1 gives", lambda x, size, s: ref.maxpool2d_forward(x, size, 1))],
    "maxpool2d_backward": [
        ("max-pool gradient sent to every cell of the window; it goes to the maximum only", _grad_every_cell),
        ("ties: the gradient went to every maximum of a window; it goes to the first (row-major) only", _grad_every_max),
    ],
    "relu_backward": [("ReLU's mask taken from dout instead of x", lambda dout, x: dout * (dout > 0))],
    "softmax_cross_entropy": [
        ("loss not divided by the batch size", lambda z, y: tuple(v * len(z) for v in ref.softmax_cross_entropy(z, y))),
        ("dlogits not divided by the batch size", lambda z, y: (ref.softmax_cross_entropy(z, y)[0],
                                                                 ref.softmax_cross_entropy(z, y)[1] * len(z))),
    ],
    "sgd_momentum_step": [
        ("the momentum rule of another library (Keras, CS231n: v = m*v - lr*g; p = p + v); "
         "PyTorch's is v = m*v + g; p = p - lr*v", _sgd("keras")),
        ("the momentum rule of another library (Sutskever: v = m*v + lr*g; p = p - v); "
         "PyTorch's is v = m*v + g; p = p - lr*v", _sgd("sutskever")),
        ("momentum with dampening (v = m*v + (1-m)*g); PyTorch's default is v = m*v + g", _sgd("dampened")),
    ],
}
