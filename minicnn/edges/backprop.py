"""The backward pass of one convolution, one number at a time: what the studio's backward stepper and
``minicnn explain --backward`` show.

The task is ``learn_sobel``'s, on one image: a 3x3 kernel W slides over an image x (stride 1, no padding),
its feature map is compared with the map Sobel x gives, and

    L = mean((x * W - x * sobel_x)**2)                       (* is the cross-correlation Conv2D computes)

``Conv2D.backward`` gives dL/dW and dL/dx.  This module writes each of their cells out as the sum it is,
with delta = dL/dmap (the mean squared error's gradient, ``losses.mse``):

    dL/dW[i, j] = sum over r, c of  delta[r, c] * x[r + i, c + j]          (x cross-correlated with delta)
    dL/dx[p, q] = sum over u, v of  delta_pad[p + u, q + v] * W_flip[u, v]
                  (delta padded with KH-1, KW-1 rings of zeros, W turned 180 degrees: a full convolution)

Every value shown comes from the library (``Conv2D.forward``, ``Conv2D.backward``, ``losses.mse``); the
products are the explanation, and the tests check that their sums are the library's numbers.
"""
from typing import NamedTuple

import numpy as np

from minicnn.edges.filters import get_kernel, kernel_similarity
from minicnn.edges.sobel_task import filter_valid
from minicnn.nn.conv import Conv2D
from minicnn.nn.losses import mse

TARGET = "sobel_x"
DIVERGED = 1e6   # SGD has diverged once the loss is this many times its first value


class Backward(NamedTuple):
    """One forward and backward pass of the Sobel task on one image (float64 throughout).

    Shape: x (H, W), kernel (3, 3); fmap, target, delta (H-2, W-2); dW (3, 3); dx (H, W)
    """

    x: np.ndarray
    kernel: np.ndarray
    fmap: np.ndarray      # the kernel's feature map, Conv2D.forward
    target: np.ndarray    # the map Sobel x gives
    loss: float
    delta: np.ndarray     # dL/dfmap, from losses.mse
    dW: np.ndarray        # Conv2D.backward's grads["W"]
    dx: np.ndarray        # Conv2D.backward's dx


class Cell(NamedTuple):
    """One cell of a gradient written out: the window read (top-left corner), its products and their sum."""

    row: int
    col: int
    top: int
    left: int
    products: np.ndarray
    total: float          # products.sum(): what the page writes, checked against the library's value


def _check(image, kernel):
    x = np.asarray(image, dtype=np.float64)
    k = np.asarray(kernel, dtype=np.float64)
    if k.shape != (3, 3):
        raise ValueError(f"the loss compares the kernel's map with Sobel x's, so the kernel must be 3x3, got "
                         f"{'x'.join(map(str, k.shape))}")
    if x.ndim != 2 or min(x.shape) < 3:
        raise ValueError(f"the image must be a grid of at least 3x3 numbers for a 3x3 kernel, got shape {x.shape}")
    if not (np.isfinite(x).all() and np.isfinite(k).all()):
        raise ValueError("the image and the kernel must hold finite numbers")
    return x, k


def _layer(kernel):
    conv = Conv2D(1, 1, 3, bias=False, rng=np.random.default_rng(0), dtype=np.float64)
    conv.params["W"][...] = kernel
    return conv


def sobel_loss(image, kernel):
    """Only the loss of ``kernel`` on ``image`` (Conv2D.forward and mse): a float."""
    x, k = _check(image, kernel)
    fmap = _layer(k).forward(x[None, None])
    return mse(fmap, filter_valid(x[None, None], get_kernel(TARGET, np.float64)))[0]


def backward(image, kernel):
    """The forward and backward pass of the Sobel task: a :class:`Backward` (numbers from Conv2D and mse)."""
    x, k = _check(image, kernel)
    conv = _layer(k)
    fmap = conv.forward(x[None, None])                        # (1, 1, H-2, W-2)
    target = filter_valid(x[None, None], get_kernel(TARGET, np.float64))
    loss, delta = mse(fmap, target)
    dx = conv.backward(delta)
    return Backward(x, k, fmap[0, 0], target[0, 0], float(loss), delta[0, 0], conv.grads["W"][0, 0].copy(),
                    dx[0, 0])


def dW_cells(b):
    """dL/dW cell by cell, row by row: cell (i, j) multiplies delta with the window of x at (i, j).

    Shape: products (H-2, W-2) per cell; 9 cells
    """
    H_out, W_out = b.delta.shape
    cells = []
    for i in range(3):
        for j in range(3):
            products = b.delta * b.x[i:i + H_out, j:j + W_out]
            cells.append(Cell(i, j, i, j, products, float(products.sum())))
    return cells


def padded_delta(b):
    """delta with 2 rings of zeros (KH-1, KW-1): the input of the full convolution.  Shape: (H+2, W+2)"""
    return np.pad(b.delta, 2)


def flipped(kernel):
    """The kernel turned 180 degrees (rows and columns reversed)."""
    return np.asarray(kernel)[::-1, ::-1]


def dx_cells(b):
    """dL/dx cell by cell, row by row: cell (p, q) multiplies the window of padded delta at (p, q) with the
    flipped kernel.  Shape: products (3, 3) per cell; H*W cells"""
    pad, flip = padded_delta(b), flipped(b.kernel)
    H, W = b.x.shape
    cells = []
    for p in range(H):
        for q in range(W):
            products = pad[p:p + 3, q:q + 3] * flip
            cells.append(Cell(p, q, p, q, products, float(products.sum())))
    return cells


def stable_lr(image):
    """The learning rates for which plain SGD on this image converges: below 2 / (the loss's largest curvature).

    The loss is quadratic in W, with Hessian (2 / cells) * A^T A, A the (cells, 9) matrix of the image's 3x3
    windows; gradient descent converges for lr < 2 / its largest eigenvalue and diverges above.
    """
    x = np.asarray(image, dtype=np.float64)
    A = np.lib.stride_tricks.sliding_window_view(x, (3, 3)).reshape(-1, 9)   # (cells, 9)
    largest = float(np.linalg.eigvalsh(2 / len(A) * A.T @ A)[-1])
    return 2 / largest if largest > 0 else float("inf")


def suggested_lr(image):
    """A round learning rate safely below :func:`stable_lr` (at most 3/4 of it): 0.1, 0.05, 0.02, 0.01, 0.005, ..."""
    limit = 0.75 * stable_lr(image)
    for exponent in range(1, 8):
        for mantissa in (5, 2, 1):
            lr = mantissa * 10.0 ** -exponent
            if lr <= limit:
                return min(lr, 0.1)
    return 1e-5


def sgd_path(image, kernel, lr, steps):
    """``steps`` steps of W <- W - lr * dL/dW from ``kernel``: ``[(kernel, loss, cosine to Sobel x)]``, steps + 1 rows.

    Raises ValueError when the loss grows DIVERGED times or stops being finite (a learning rate too large).
    """
    x, k = _check(image, kernel)
    sobel = get_kernel(TARGET, np.float64)
    path = []
    for step in range(steps + 1):
        with np.errstate(over="ignore", invalid="ignore"):   # a diverging run ends in the ValueError below
            b = backward(x, k)
        if not np.isfinite(b.loss) or (path and b.loss > DIVERGED * max(path[0][1], 1.0)):
            raise ValueError(f"the loss grew from {path[0][1]:.4g} to {b.loss:.4g} in {step} SGD steps: the learning "
                             f"rate {lr:g} is too large for this image; try a smaller one")
        path.append((k, b.loss, kernel_similarity(k, sobel)))
        if step < steps:
            k = k - lr * b.dW
    return path


def nudge(image, kernel, row, col, eps):
    """The finite-difference check of dL/dW[row, col] by hand: the loss with that weight moved by +eps and -eps.

    Returns a dict: ``loss``, ``loss_plus``, ``loss_minus``, ``delta_loss`` (the centred change
    (loss_plus - loss_minus) / 2, exact for this quadratic loss up to rounding), ``predicted``
    (eps * dL/dW[row, col] from Conv2D.backward), ``gradient``, ``eps``.
    """
    x, k = _check(image, kernel)
    if not (0 <= row < 3 and 0 <= col < 3):
        raise ValueError(f"the weight to nudge is a cell of the 3x3 kernel (row and column 0 to 2), got ({row}, {col})")
    if not (np.isfinite(eps) and eps != 0):
        raise ValueError(f"eps must be a finite number other than 0, got {eps}")
    b = backward(x, k)
    moved = k.copy()
    moved[row, col] += eps
    plus = sobel_loss(x, moved)
    moved[row, col] = k[row, col] - eps
    minus = sobel_loss(x, moved)
    g = float(b.dW[row, col])
    return {"row": row, "col": col, "eps": float(eps), "loss": b.loss, "loss_plus": plus, "loss_minus": minus,
            "delta_loss": (plus - minus) / 2, "predicted": eps * g, "gradient": g}
