"""Experiment 1: a Conv2D(1, 2, 3) learns Sobel x and Sobel y from examples.

The targets are synthetic images filtered with the two Sobel kernels; the
layer starts from random weights and is trained by SGD on mean squared error.
Because the task is linear, the best weights are the Sobel kernels themselves
(up to the known target scale), so the cosine similarity between learned and
true kernels measures how far training got.

Two preprocessing steps make plain SGD converge fast, and neither changes
the answer:

- images are shifted and scaled by one global mean and standard deviation
  (measured on the clean images), which removes the large "average brightness"
  direction that otherwise dominates the gradient;
- targets are divided by their own standard deviation, so the loss starts
  near 1 whatever the kernel's scale; the learned kernel is Sobel divided by
  that factor, and we multiply it back for display and relative error.

Noise (``noise > 0``) is added to the images; by default the targets are the
Sobel responses of those noisy images, as the issue states ("the synthetic
images filtered with Sobel").  With ``clean_targets=True`` they are the
responses of the clean images instead: the layer must then also suppress
noise, and the best 3x3 kernel is a smoothed Sobel, not Sobel itself.
"""
import time

import numpy as np

from minicnn.data.synthetic import edge_images
from minicnn.edges.filters import get_kernel, kernel_similarity
from minicnn.nn import Conv2D
from minicnn.nn.losses import mse
from minicnn.nn.model import Sequential
from minicnn.nn.optim import SGD

TARGETS = ("sobel_x", "sobel_y")


def filter_valid(images, kernel):
    """Cross-correlate every image with one kernel, no padding ("valid").

    Written independently of Conv2D (sliding windows and ``einsum``) so the
    targets do not come from the code being trained.

    Shape:
        images: (N, 1, H, W),  kernel: (KH, KW)
        out:    (N, 1, H - KH + 1, W - KW + 1)
    """
    images = np.asarray(images)
    kernel = np.asarray(kernel, dtype=np.float64)
    if images.ndim != 4 or images.shape[1] != 1:
        raise ValueError(f"filter_valid expected images of shape (N, 1, H, W), got {images.shape}")
    windows = np.lib.stride_tricks.sliding_window_view(images[:, 0].astype(np.float64), kernel.shape, axis=(1, 2))
    out = np.einsum("nhwij,ij->nhw", windows, kernel)  # (N, H_out, W_out)
    return out[:, None].astype(images.dtype)


def make_data(n, size, *, rng, noise=0.0, clean_targets=False, dtype=np.float32):
    """Inputs and Sobel targets for Experiment 1.

    Parameters
    ----------
    n, size : int
        Number of images and their side in pixels.
    rng : np.random.Generator
    noise : float, default 0.0
        Standard deviation of Gaussian noise added to the images (intensity
        scale 0..1, before standardising).
    clean_targets : bool, default False
        False: the targets are the Sobel responses of the images the layer
        sees, noise included, so Sobel is still the exact answer.  True: the
        targets are the Sobel responses of the *clean* images, so the layer
        must also remove noise, and the best 3x3 kernel is a smoothed Sobel
        (see :func:`optimal_kernels`).

    Returns
    -------
    x : (N, 1, size, size) images shifted and scaled by the clean images' mean and std
    y : (N, 2, size-2, size-2) Sobel x and Sobel y responses, divided by ``target_scale``
    target_scale : float, the standard deviation the targets were divided by
    """
    clean = edge_images(n, size, rng=rng, dtype=np.float64)
    noisy = clean + rng.normal(0.0, noise, size=clean.shape) if noise > 0 else clean
    mean, std = clean.mean(), clean.std()
    x = (noisy - mean) / std
    source = (clean - mean) / std if clean_targets else x
    y = np.concatenate([filter_valid(source, get_kernel(k, np.float64)) for k in TARGETS], axis=1)
    target_scale = float(y.std())
    return x.astype(dtype), (y / target_scale).astype(dtype), target_scale


def optimal_kernels(x, y):
    """The least-squares best 3x3 kernels (with bias) for inputs x and targets y.

    What SGD on the mean squared error converges to, computed directly; with
    noisy inputs and clean targets it is the best any 3x3 filter can do.

    Shape:
        x: (N, 1, H, W),  y: (N, F, H-2, W-2)  ->  W: (F, 3, 3)
    """
    patches = np.lib.stride_tricks.sliding_window_view(x[:, 0].astype(np.float64), (3, 3), axis=(1, 2))
    A = patches.reshape(-1, 9)                                    # (N*H_out*W_out, 9)
    A = np.hstack([A, np.ones((A.shape[0], 1))])                  # bias column
    B = y.astype(np.float64).transpose(0, 2, 3, 1).reshape(-1, y.shape[1])  # (rows, F)
    solution, *_ = np.linalg.lstsq(A, B, rcond=None)              # (10, F)
    return solution[:9].T.reshape(-1, 3, 3)


def kernel_report(W, target_scale):
    """Per target: the learned kernel rescaled to Sobel units, its cosine and relative error."""
    out = {}
    for f, name in enumerate(TARGETS):
        ref = get_kernel(name, np.float64)
        learned = W[f, 0].astype(np.float64) * target_scale
        out[name] = {
            "kernel": learned,
            "cosine": kernel_similarity(learned, ref),
            "relative_error": float(np.linalg.norm(learned - ref) / np.linalg.norm(ref)),
        }
    return out


def train_sobel(*, rng, steps=2000, lr=0.2, momentum=0.9, batch_size=16, n_images=128, size=24,
                noise=0.0, clean_targets=False, target_cosine=0.9999, check_every=10, callback=None):
    """Train a Conv2D(1, 2, 3) on Sobel targets until it matches or ``steps`` run out.

    Training stops early once both kernels reach ``target_cosine`` (checked
    every ``check_every`` steps). ``callback(step, loss, cosines)`` is called
    at every check.

    Returns
    -------
    result : dict with ``cosine`` and ``relative_error`` per target, ``steps``
        taken, ``seconds``, ``converged``, the ``history`` of
        ``(step, loss, cosine_x, cosine_y)`` rows, the learned ``kernels``
        (2, 3, 3) in Sobel units, the raw ``state`` of the model, and ``target_scale``.
        With ``clean_targets`` and noise it also holds ``optimal_cosine``
        (cosine of the least-squares best kernels with Sobel, per target) and
        ``cosine_to_optimal`` (learned against those best kernels).
    """
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if not isinstance(batch_size, int) or not 1 <= batch_size <= n_images:
        raise ValueError(f"batch_size must be an int in 1..n_images={n_images}, got {batch_size!r}")
    if not isinstance(check_every, int) or check_every < 1:
        raise ValueError(f"check_every must be a positive int, got {check_every!r}")
    x, y, target_scale = make_data(n_images, size, rng=rng, noise=noise, clean_targets=clean_targets)
    model = Sequential([Conv2D(1, 2, 3, rng=rng)])
    optimizer = SGD(model, lr=lr, momentum=momentum)
    history = []
    start = time.perf_counter()
    step, converged = 0, False
    while step < steps:
        idx = rng.choice(n_images, size=batch_size, replace=False)
        loss, dpred = mse(model.forward(x[idx]), y[idx])
        model.backward(dpred)
        optimizer.step()
        step += 1
        if step % check_every == 0 or step == steps:
            report = kernel_report(model.layers[0].params["W"], target_scale)
            cosines = tuple(report[k]["cosine"] for k in TARGETS)
            history.append((step, loss) + cosines)
            if callback is not None:
                callback(step, loss, cosines)
            if min(cosines) >= target_cosine:
                converged = True
                break
    seconds = time.perf_counter() - start
    W = model.layers[0].params["W"]
    report = kernel_report(W, target_scale)
    extra = {}
    if clean_targets and noise > 0:
        best = optimal_kernels(x, y)
        extra["optimal_cosine"] = {k: kernel_similarity(best[f], get_kernel(k)) for f, k in enumerate(TARGETS)}
        extra["cosine_to_optimal"] = {k: kernel_similarity(W[f, 0], best[f]) for f, k in enumerate(TARGETS)}
    return {
        "cosine": {k: report[k]["cosine"] for k in TARGETS},
        "relative_error": {k: report[k]["relative_error"] for k in TARGETS},
        "steps": step,
        "seconds": seconds,
        "converged": converged,
        "history": history,
        "kernels": np.stack([report[k]["kernel"] for k in TARGETS]),
        "state": model.state_dict(),
        "target_scale": target_scale,
        **extra,
    }
