"""Synthetic grayscale images full of edges at every orientation.

Two generators, both seeded through ``rng`` (a ``np.random.Generator``) so the
same seed gives the same images, to the bit:

- :func:`edge_images`: a scene per image made of a smooth background ramp and
  a few shapes (step edges at random angles, rotated rectangles, discs, convex
  polygons) filled with a flat or ramped intensity; used to learn Sobel.
- :func:`orientation_dataset`: one long straight edge per image at one of
  four orientations (0, 45, 90, 135 degrees) with a label; used to show edge
  detectors emerge in a classifier.

Shapes are drawn with one-pixel anti-aliasing: each shape has a signed
distance ``d`` (pixels, positive inside) and covers a pixel by
``clip(d + 0.5, 0, 1)``. Work is vectorised over the pixels of an image;
Python loops only run over images and over the few shapes in each.
Intensities lie in [0, 1] before the optional Gaussian noise is added
(noise is not clipped).

Coordinates follow the kernels' convention: x = column (rightwards),
y = row (downwards), angles from +x towards +y.
"""
import numpy as np

from minicnn.utils.validation import check_rng

SHAPES = ("step", "rectangle", "disc", "polygon")


def _check_common(n, height, width, noise):
    for label, v in (("n", n), ("height", height), ("width", width)):
        if not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{label} must be a positive integer, got {v!r}")
    if not np.isfinite(noise) or noise < 0:
        raise ValueError(f"noise must be a standard deviation >= 0, got {noise!r}")


def _grid(height, width):
    """Pixel-centre coordinates, each of shape (H, W)."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    return x, y


def _unit(angle):
    return np.cos(angle), np.sin(angle)


def _coverage(distance):
    """Anti-aliased coverage in [0, 1] from a signed distance in pixels."""
    return np.clip(distance + 0.5, 0.0, 1.0)


def _shape_distance(kind, x, y, rng):
    """Signed distance (pixels, positive inside) of one random shape."""
    H, W = x.shape
    size = min(H, W)
    cx, cy = rng.uniform(0, W - 1), rng.uniform(0, H - 1)
    if kind == "step":  # half-plane through (cx, cy), any normal direction
        nx, ny = _unit(rng.uniform(0, 2 * np.pi))
        return (x - cx) * nx + (y - cy) * ny
    if kind == "disc":
        r = rng.uniform(0.1, 0.35) * size
        return r - np.hypot(x - cx, y - cy)
    if kind == "rectangle":  # rotated by a random angle
        ux, uy = _unit(rng.uniform(0, np.pi))
        a, b = rng.uniform(0.08, 0.35, size=2) * size
        u = (x - cx) * ux + (y - cy) * uy
        v = -(x - cx) * uy + (y - cy) * ux
        return np.minimum(a - np.abs(u), b - np.abs(v))
    if kind == "polygon":  # convex: vertices at sorted angles on a circle
        k = rng.integers(3, 7)
        theta = np.sort(rng.uniform(0, 2 * np.pi, size=k))
        r = rng.uniform(0.15, 0.4) * size
        vx, vy = cx + r * np.cos(theta), cy + r * np.sin(theta)
        d = np.full(x.shape, np.inf)
        for i in range(k):  # inside = on the inner side of every edge
            ex, ey = vx[(i + 1) % k] - vx[i], vy[(i + 1) % k] - vy[i]
            length = np.hypot(ex, ey)
            if length < 1e-9:
                continue
            # vertices go counter-clockwise in (x, y), so the inner normal is (-ey, ex)
            d = np.minimum(d, ((x - vx[i]) * -ey + (y - vy[i]) * ex) / length)
        return d
    raise ValueError(f"unknown shape {kind!r}; expected one of {SHAPES}")


def _fill(x, y, rng):
    """A flat intensity or, half the time, a smooth ramp between two levels."""
    lo, hi = rng.uniform(0, 1, size=2)
    if rng.random() < 0.5:
        return lo
    ux, uy = _unit(rng.uniform(0, 2 * np.pi))
    t = x * ux + y * uy
    t = (t - t.min()) / max(np.ptp(t), 1e-9)  # 0..1 across the image
    return lo + (hi - lo) * t


def edge_images(n, height=32, width=None, *, rng, noise=0.0, shapes=(2, 6), dtype=np.float32):
    """Images of shapes whose edges run at every orientation.

    Each image starts from a smooth ramp between two random levels at a random
    angle, then ``shapes[0]..shapes[1]`` shapes (kinds drawn uniformly from
    ``SHAPES``) are painted over it, each with a random flat or ramped fill.

    Parameters
    ----------
    n : int
        Number of images.
    height, width : int
        Image size in pixels; ``width`` defaults to ``height``.
    rng : np.random.Generator
    noise : float, default 0.0
        Standard deviation of Gaussian noise added to every pixel.
    shapes : (int, int), default (2, 6)
        Inclusive range of the number of shapes per image.
    dtype : numpy dtype, default float32

    Returns
    -------
    images : ndarray

    Shape:
        images: (N, 1, H, W), intensities in [0, 1] before noise
    """
    width = height if width is None else width
    _check_common(n, height, width, noise)
    check_rng(rng, allow_none=False)
    lo, hi = shapes
    if not (0 <= lo <= hi):
        raise ValueError(f"shapes must be a range (min, max) with 0 <= min <= max, got {shapes!r}")
    x, y = _grid(height, width)
    out = np.empty((n, 1, height, width), dtype=np.float64)
    for i in range(n):
        img = np.broadcast_to(_fill(x, y, rng), x.shape).astype(np.float64)
        for _ in range(rng.integers(lo, hi + 1)):
            kind = SHAPES[rng.integers(len(SHAPES))]
            alpha = _coverage(_shape_distance(kind, x, y, rng))
            img = img * (1 - alpha) + _fill(x, y, rng) * alpha
        out[i, 0] = img
    if noise > 0:
        out += rng.normal(0.0, noise, size=out.shape)
    return out.astype(dtype)


def orientation_dataset(n, size=16, *, rng, noise=0.1, jitter=10.0, min_contrast=0.3, classes=4,
                        dtype=np.float32):
    """One straight step edge per image, labelled by its orientation.

    The edge's gradient (the direction in which the image gets brighter)
    points at ``45 * label`` degrees plus a uniform jitter of +-``jitter``
    degrees, in the kernels' convention.  With ``classes=4`` the polarity is
    random (brighter on either side), so labels 0..3 mean orientations 0, 45,
    90, 135 degrees mod 180 and match ``kernels.best_match(...).angle // 45``;
    with ``classes=8`` labels 0..7 are directions 0, 45, ..., 315 degrees.
    The edge passes within a quarter of the image side from the centre, and
    the dark and bright levels are random but at least ``min_contrast`` apart.

    Parameters
    ----------
    n, size : int
        Number of images and their side in pixels.
    rng : np.random.Generator
    noise : float, default 0.1
    jitter : float, default 10.0
        Orientation jitter in degrees (must be below 22.5 to keep classes apart).
    min_contrast : float, default 0.3
    classes : {4, 8}, default 4
    dtype : numpy dtype, default float32

    Returns
    -------
    images : ndarray, shape (N, 1, size, size)
    labels : ndarray of int64, shape (N,)
    """
    _check_common(n, size, size, noise)
    check_rng(rng, allow_none=False)
    if classes not in (4, 8):
        raise ValueError(f"classes must be 4 (orientation, either polarity) or 8 (direction), got {classes!r}")
    if not 0 <= jitter < 22.5:
        raise ValueError(f"jitter must be in [0, 22.5) degrees, got {jitter!r}")
    if not 0 <= min_contrast <= 1:
        raise ValueError(f"min_contrast must be in [0, 1], got {min_contrast!r}")
    x, y = _grid(size, size)
    labels = rng.integers(0, classes, size=n)
    angle = np.deg2rad(45.0 * labels + rng.uniform(-jitter, jitter, size=n))
    if classes == 4:
        angle = angle + np.pi * rng.integers(0, 2, size=n)  # random polarity
    centre = (size - 1) / 2 + rng.uniform(-size / 4, size / 4, size=(n, 2))
    dark = rng.uniform(0, 1 - min_contrast, size=n)
    bright = rng.uniform(dark + min_contrast, 1.0)
    # (N, H, W) signed distance to each image's edge line, all images at once
    d = ((x[None] - centre[:, 0, None, None]) * np.cos(angle)[:, None, None]
         + (y[None] - centre[:, 1, None, None]) * np.sin(angle)[:, None, None])
    images = dark[:, None, None] + (bright - dark)[:, None, None] * _coverage(d)
    images = images[:, None]  # (N, 1, H, W)
    if noise > 0:
        images = images + rng.normal(0.0, noise, size=images.shape)
    return images.astype(dtype), labels.astype(np.int64)
