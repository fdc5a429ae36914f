"""Cheap data augmentation for small images: random translations, left-right flips and erased rectangles.

A digit moved by a pixel or two is still the same digit, so showing the network
shifted copies is free extra data.  Everything random is drawn from the ``rng``
passed in, so a seeded run is reproducible to the bit.
"""
import numpy as np

from minicnn.utils.validation import check_rng


def _check_images(who, x):
    """``ValueError`` naming ``who`` unless x is an (N, C, H, W) array."""
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(f"{who} expected an array of shape (N, C, H, W), got {getattr(x, 'shape', type(x).__name__)}")


def _check_probability(who, p):
    """``ValueError`` naming ``who`` unless p is a number in [0, 1]."""
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p <= 1:
        raise ValueError(f"{who}'s p must be a probability in [0, 1], got {p!r}")


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
    _check_images("random_shift", x)
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
    out = np.empty_like(x)
    for n, (dy, dx) in enumerate(shifts.T.tolist()):                    # one slice copy per image: 3x faster
        out[n] = padded[n, :, s - dy:s - dy + H, s - dx:s - dx + W]      # than one gather of N*C*H*W indices
    return out


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
    _check_images("random_flip", x)
    check_rng(rng, "random_flip's rng", allow_none=False)
    _check_probability("random_flip", p)
    flipped = rng.random(x.shape[0]) < p                                # (N,)
    out = x.copy()
    out[flipped] = x[flipped, :, :, ::-1]
    return out


def random_erase(x, rng, p=0.5, area=(0.02, 0.25), fill=None):
    """Blank one random rectangle of each image with probability ``p`` (random erasing, or "cutout").

    The network can no longer lean on any one part of a picture (the collar, a heel),
    so it learns to use them all.  Each erased image draws the rectangle's share of
    the image's area uniformly from ``area``, its aspect ratio (height / width)
    log-uniformly from 1/3..3, and a position where it fits whole; the rectangle gets ``fill``
    (default: the smallest value of the batch, the background).

    Parameters
    ----------
    x : ndarray (N, C, H, W)
    rng : numpy.random.Generator
    p : float in [0, 1]
    area : (low, high), 0 < low <= high <= 1: the rectangle's share of the image
    fill : float, optional

    Returns
    -------
    out : ndarray (N, C, H, W), same dtype as x (a new array)

    Shape:
        x: (N, C, H, W) -> out: (N, C, H, W);  out[n, :, top:top+h, left:left+w] = fill where erased[n]
    """
    _check_images("random_erase", x)
    check_rng(rng, "random_erase's rng", allow_none=False)
    _check_probability("random_erase", p)
    low, high = area
    if not 0 < low <= high <= 1:
        raise ValueError(f"random_erase's area must be (low, high) with 0 < low <= high <= 1, got {area!r}")
    N, C, H, W = x.shape
    out = x.copy()
    if N == 0:
        return out
    fill = x.min() if fill is None else fill
    erased = rng.random(N) < p                                          # (N,)
    share = rng.uniform(low, high, N)                                   # (N,) of the area
    aspect = np.exp(rng.uniform(np.log(1 / 3), np.log(3), N))            # (N,) height / width
    h = np.clip(np.rint(np.sqrt(share * H * W * aspect)), 1, H).astype(int)
    w = np.clip(np.rint(np.sqrt(share * H * W / aspect)), 1, W).astype(int)
    top = (rng.random(N) * (H - h + 1)).astype(int)
    left = (rng.random(N) * (W - w + 1)).astype(int)
    for n in np.flatnonzero(erased).tolist():
        out[n, :, top[n]:top[n] + h[n], left[n]:left[n] + w[n]] = fill
    return out


def shift(x, dy, dx, fill=None):
    """Every image moved ``dy`` pixels down and ``dx`` right (negative: up, left); the border gets ``fill``.

    ``fill`` defaults to the smallest value of the batch (the background, as in ``random_shift``).

    Shape: x (N, C, H, W) -> out (N, C, H, W);  out[n, c, i, j] = x[n, c, i - dy, j - dx]
    """
    _check_images("shift", x)
    H, W = x.shape[2:]
    if abs(dy) >= H or abs(dx) >= W:
        raise ValueError(f"shift by ({dy}, {dx}) moves a {H}x{W} image out of its frame")
    fill = (x.min() if x.size else 0) if fill is None else fill
    out = np.full_like(x, fill)
    out[:, :, max(dy, 0):H + min(dy, 0), max(dx, 0):W + min(dx, 0)] = \
        x[:, :, max(-dy, 0):H + min(-dy, 0), max(-dx, 0):W + min(-dx, 0)]
    return out


# Test-time augmentation: the copies of each test image whose predictions are averaged.
TEST_TIME = {
    "none": "the images as they are",
    "shifts": "the image and its 8 copies moved by one pixel (across, up and down, and diagonally)",
    "flips": "the image and its left-right mirror",
    "flips+shifts": "the image and its left-right mirror, and each moved by one pixel across and up and down (10 copies)",
}


def test_time_copies(x, kind):
    """The copies of a batch that test-time augmentation ``kind`` (a key of ``TEST_TIME``) averages over.

    Shape: x (N, C, H, W) -> list of arrays (N, C, H, W), the batch itself first
    """
    if kind not in TEST_TIME:
        raise ValueError(f"test-time augmentation must be one of {', '.join(TEST_TIME)}, got {kind!r}")
    if kind == "shifts":
        return [x] + [shift(x, dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx]
    if kind == "flips":
        return [x, x[:, :, :, ::-1]]
    if kind == "flips+shifts":
        mirror = x[:, :, :, ::-1]
        return [x, mirror] + [shift(b, dy, dx) for b in (x, mirror) for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0))]
    return [x]
