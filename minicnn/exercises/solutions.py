"""The library's answers to the exercises, in the exercises' own signatures (NCHW, float64, symmetric int padding).

Each mirrors a function of ``minicnn/nn/textbook.py`` (or ``minicnn/nn/im2col.py``, ``minicnn/nn/losses.py``);
``minicnn exercises solution NAME`` prints one with a pointer to the function it mirrors.
"""
import numpy as np


def conv2d_single(image, kernel):
    """(H, W), (K, K2) -> (H-K+1, W-K2+1): the course's loops, cross-correlation (no flip)."""
    K, K2 = kernel.shape
    out = np.zeros((image.shape[0] - K + 1, image.shape[1] - K2 + 1))
    for r in range(out.shape[0]):
        for c in range(out.shape[1]):
            out[r, c] = np.sum(image[r:r + K, c:c + K2] * kernel)
    return out


def im2col(x, kernel_size, stride=1, padding=0):
    """(N, C, H, W) -> (N, C*KH*KW, H_out*W_out); row c*KH*KW + i*KW + j, column y*W_out + x."""
    KH, KW = (kernel_size, kernel_size) if np.isscalar(kernel_size) else kernel_size
    xp = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    N, C, H, W = xp.shape
    H_out, W_out = (H - KH) // stride + 1, (W - KW) // stride + 1
    cols = np.empty((N, C, KH, KW, H_out, W_out), dtype=x.dtype)
    for i in range(KH):
        for j in range(KW):
            cols[:, :, i, j] = xp[:, :, i:i + stride * (H_out - 1) + 1:stride, j:j + stride * (W_out - 1) + 1:stride]
    return cols.reshape(N, C * KH * KW, H_out * W_out)


def conv2d_forward(x, W, b, stride=1, padding=0):
    """x (N, C, H, W), W (F, C, KH, KW), b (F,) -> (N, F, H_out, W_out), H_out = (H + 2*padding - KH) // stride + 1."""
    N, _, H, W_in = x.shape
    F, _, KH, KW = W.shape
    H_out, W_out = (H + 2 * padding - KH) // stride + 1, (W_in + 2 * padding - KW) // stride + 1
    cols = im2col(x, (KH, KW), stride, padding)                    # (N, C*KH*KW, H_out*W_out)
    out = W.reshape(F, -1) @ cols + b[:, None]                     # (N, F, H_out*W_out)
    return out.reshape(N, F, H_out, W_out)


def conv2d_backward(dout, x, W, b, stride=1, padding=0):
    """dout (N, F, H_out, W_out) -> dx (N, C, H, W), dW (F, C, KH, KW), db (F,)."""
    N, F = dout.shape[:2]
    _, C, KH, KW = W.shape
    cols = im2col(x, (KH, KW), stride, padding)
    d = dout.reshape(N, F, -1)                                     # (N, F, positions)
    dW = (d @ cols.transpose(0, 2, 1)).sum(axis=0).reshape(W.shape)
    db = d.sum(axis=(0, 2))
    dcols = (W.reshape(F, -1).T @ d).reshape(N, C, KH, KW, *dout.shape[2:])
    H_out, W_out = dout.shape[2:]
    dxp = np.zeros((N, C, x.shape[2] + 2 * padding, x.shape[3] + 2 * padding))
    for i in range(KH):                                            # col2im: each window offset adds back its slice
        for j in range(KW):
            dxp[:, :, i:i + stride * (H_out - 1) + 1:stride, j:j + stride * (W_out - 1) + 1:stride] += dcols[:, :, i, j]
    return dxp[:, :, padding:padding + x.shape[2], padding:padding + x.shape[3]], dW, db


def maxpool2d_forward(x, size=2, stride=2):
    """(N, C, H, W) -> (N, C, (H - size)//stride + 1, (W - size)//stride + 1)."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    return windows.max(axis=(4, 5))


def maxpool2d_backward(dout, x, size=2, stride=2):
    """dout (N, C, H_out, W_out) -> dx (N, C, H, W): each gradient to its window's first maximum."""
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    H_out, W_out = dout.shape[2:]
    first = windows.reshape(*windows.shape[:4], size * size).argmax(axis=-1)   # row-major: first maximum
    dx = np.zeros_like(x, dtype=dout.dtype)
    for i in range(size):
        for j in range(size):
            won = first == i * size + j
            dx[:, :, i:i + stride * (H_out - 1) + 1:stride, j:j + stride * (W_out - 1) + 1:stride] += dout * won
    return dx


def relu_forward(x):
    """Any shape: max(x, 0)."""
    return x * (x > 0)


def relu_backward(dout, x):
    """dout where x > 0, else 0 (the mask comes from the input x, not from dout)."""
    return dout * (x > 0)


def dense_forward(x, W, b):
    """x (N, D), W (D, K), b (K,) -> x @ W + b (N, K)."""
    return x @ W + b


def dense_backward(dout, x, W, b):
    """dout (N, K) -> dx (N, D), dW (D, K), db (K,)."""
    return dout @ W.T, x.T @ dout, dout.sum(axis=0)


def softmax_cross_entropy(logits, labels):
    """logits (N, K), labels (N,) ints -> (mean loss, dlogits (N, K)); dlogits = (softmax - onehot) / N."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    N = logits.shape[0]
    d = np.exp(log_probs)
    d[np.arange(N), labels] -= 1
    return -log_probs[np.arange(N), labels].mean(), d / N


def sgd_momentum_step(param, grad, velocity, lr, momentum):
    """PyTorch's rule: v = momentum * v + grad; param = param - lr * v.  Returns (new_param, new_velocity)."""
    velocity = momentum * velocity + grad
    return param - lr * velocity, velocity


def source(name):
    """The text of a file holding solution ``name`` with what it calls (``im2col`` for the convolutions)."""
    import inspect
    parts = [inspect.getsource(globals()[name])]
    if name.startswith("conv2d_") and name != "conv2d_single":
        parts.insert(0, inspect.getsource(im2col))
    return "import numpy as np\n\n\n" + "\n\n".join(parts)
