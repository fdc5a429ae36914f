"""Cheap data augmentation for small images: random translations and left-right flips.

A digit moved by a pixel or two is still the same digit, so showing the network
shifted copies is free extra data.  Everything random is drawn from the ``rng``
passed in, so a seeded run is reproducible to the bit.
"""
import numpy as np

from minicnn.utils.validation import check_rng


def random_shift(x, rng, max_shift=2, fill=None):
    """Move each image by its own random offset of up to ``max_shift`` pixels in each direction.

    The image content slides; the uncovered border is filled with ``fill``
    (default: the smallest value of the batch, i.e. the background of MNIST
    digits whether raw or standardised).

    Parameters
    ----------
    x : ndarray (N, C, H, W), floating
    rng : numpy.random.Generator
    max_shift : int >= 0
    fill : float, optional

    Returns
    -------
    out : ndarray (N, C, H, W), same dtype as x (a new array)

    Shape:
        x: (N, C, H, W) -> out: (N, C, H, W);  out[n, c, i, j] = x[n, c, i - dy[n], j - dx[n]]
    """
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(f"random_shift expected an array of shape (N, C, H, W), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    check_rng(rng, "random_shift's rng", allow_none=False)
    if not isinstance(max_shift, (int, np.integer)) or max_shift < 0:
        raise ValueError(f"max_shift must be an int >= 0, got {max_shift!r}")
    N, C, H, W = x.shape
    s = int(max_shift)
    if s == 0 or N == 0:
        return x.copy()
    shifts = rng.integers(-s, s + 1, size=(2, N))                       # (2, N): dy, dx
    fill = x.min() if fill is None else fill
    padded = np.full((N, C, H + 2 * s, W + 2 * s), fill, dtype=x.dtype)
    padded[:, :, s:s + H, s:s + W] = x
    rows = (s - shifts[0])[:, None] + np.arange(H)                      # (N, H)
    cols = (s - shifts[1])[:, None] + np.arange(W)                      # (N, W)
    n = np.arange(N)[:, None, None, None]
    c = np.arange(C)[None, :, None, None]
    return padded[n, c, rows[:, None, :, None], cols[:, None, None, :]]


def random_flip(x, rng, p=0.5):
    """Mirror each image left-right with probability ``p``, one coin per image.

    For pictures whose mirror image is the same class (a shoe, a shirt); never
    for digits, whose mirror images are other shapes.

    Parameters
    ----------
    x : ndarray (N, C, H, W)
    rng : numpy.random.Generator
    p : float in [0, 1]

    Returns
    -------
    out : ndarray (N, C, H, W), same dtype as x (a new array)

    Shape:
        x: (N, C, H, W) -> out: (N, C, H, W);  out[n, c, i, j] = x[n, c, i, W - 1 - j] where flipped[n]
    """
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(f"random_flip expected an array of shape (N, C, H, W), got "
                         f"{getattr(x, 'shape', type(x).__name__)}")
    check_rng(rng, "random_flip's rng", allow_none=False)
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
        raise ValueError(f"random_flip's p must be a probability in [0, 1], got {p!r}")
    flipped = rng.random(x.shape[0]) < p                                # (N,)
    out = x.copy()
    out[flipped] = x[flipped, :, :, ::-1]
    return out
