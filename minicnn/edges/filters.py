"""Classic 3x3 image kernels and ways to compare a learned kernel with them.

Conv2D computes cross-correlation (no flip), so every kernel here is written
the way it is applied: ``out[i, j] = sum(patch * kernel)`` where ``patch`` is
the 3x3 window whose top-left corner is ``(i, j)``.

Orientation convention
----------------------
An edge detector is named by the direction of the brightness *gradient* it
responds to, in image coordinates: x points right (columns grow), y points
down (rows grow), and angles go from +x towards +y, i.e. clockwise on screen.

    angle   kernel       positive response where the image gets brighter ...
    0       sobel_x      ... to the right            (a vertical edge)
    45      sobel_45     ... towards the bottom-right
    90      sobel_y      ... downwards               (a horizontal edge)
    135     sobel_135    ... towards the bottom-left

The same kernel negated (polarity -1) responds to the opposite gradient, so
0 and 180 degrees are one orientation with two polarities.
"""
from typing import NamedTuple

import numpy as np

_TABLE = {
    # oriented first-derivative (edge) detectors
    "sobel_x": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "sobel_45": [[-2, -1, 0], [-1, 0, 1], [0, 1, 2]],
    "sobel_y": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "sobel_135": [[0, -1, -2], [1, 0, -1], [2, 1, 0]],
    "scharr_x": [[-3, 0, 3], [-10, 0, 10], [-3, 0, 3]],
    "scharr_45": [[-10, -3, 0], [-3, 0, 3], [0, 3, 10]],
    "scharr_y": [[-3, -10, -3], [0, 0, 0], [3, 10, 3]],
    "scharr_135": [[0, -3, -10], [3, 0, -3], [10, 3, 0]],
    "prewitt_x": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "prewitt_45": [[-1, -1, 0], [-1, 0, 1], [0, 1, 1]],
    "prewitt_y": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    "prewitt_135": [[0, -1, -1], [1, 0, -1], [1, 1, 0]],
    # the "simple" edge kernels of many tutorials (edge_vertical equals prewitt_x)
    "edge_vertical": [[-1, 0, 1], [-1, 0, 1], [-1, 0, 1]],
    "edge_horizontal": [[-1, -1, -1], [0, 0, 0], [1, 1, 1]],
    # smoothing and sharpening
    "box_blur": [[1 / 9] * 3] * 3,
    "gaussian": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
}

KERNEL_NAMES = tuple(_TABLE)
FAMILIES = ("sobel", "scharr", "prewitt")
ANGLES = (0, 45, 90, 135)
_SUFFIX = {0: "x", 45: "45", 90: "y", 135: "135"}


def get_kernel(name, dtype=np.float32):
    """Return a fresh copy of the named kernel.

    Parameters
    ----------
    name : str
        One of ``KERNEL_NAMES`` (case-insensitive), e.g. ``"sobel_x"``.
    dtype : numpy dtype, default float32

    Returns
    -------
    kernel : ndarray of shape (3, 3)
    """
    key = str(name).lower()
    if key not in _TABLE:
        raise ValueError(f"unknown kernel {name!r}; expected one of: {', '.join(KERNEL_NAMES)}")
    return np.array(_TABLE[key], dtype=dtype)


def edge_family(family="sobel", dtype=np.float32):
    """The four oriented edge detectors of one family, as ``{angle: (name, kernel)}``.

    ``family`` is one of ``FAMILIES``; angles are 0, 45, 90, 135 degrees (see
    the module docstring for the convention).
    """
    if family not in FAMILIES:
        raise ValueError(f"unknown edge family {family!r}; expected one of: {', '.join(FAMILIES)}")
    names = {angle: f"{family}_{_SUFFIX[angle]}" for angle in ANGLES}
    return {angle: (name, get_kernel(name, dtype)) for angle, name in names.items()}


def kernel_similarity(learned, reference):
    """Signed cosine similarity of two kernels after removing each one's mean.

    Removing the mean makes the measure blind to a constant offset (which a
    bias can absorb); the cosine makes it blind to scale. The sign is kept:
    ``-1`` means the same detector with inverted polarity.

    A constant kernel (all entries equal, e.g. all zeros) has no pattern left
    after removing its mean, so its similarity with anything is defined as
    ``0.0``; "constant" means the centred norm is below ``1e-6`` times the
    kernel's norm (or the kernel is exactly zero). Note that ``box_blur`` is
    constant in this sense.

    Parameters
    ----------
    learned, reference : array_like of the same shape, e.g. (KH, KW)

    Returns
    -------
    similarity : float in [-1, 1]
    """
    a = np.asarray(learned, dtype=np.float64)
    b = np.asarray(reference, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"kernel_similarity expected two kernels of the same shape, got {a.shape} and {b.shape}")
    if a.size == 0 or not (np.all(np.isfinite(a)) and np.all(np.isfinite(b))):
        raise ValueError("kernel_similarity expected non-empty, finite kernels")
    a_c, b_c = a - a.mean(), b - b.mean()
    na, nb = np.linalg.norm(a_c), np.linalg.norm(b_c)
    if na <= 1e-6 * np.linalg.norm(a) or nb <= 1e-6 * np.linalg.norm(b) or na == 0 or nb == 0:
        return 0.0
    return float(np.clip(np.dot(a_c.ravel(), b_c.ravel()) / (na * nb), -1.0, 1.0))


class Match(NamedTuple):
    """Result of :func:`best_match`."""

    name: str          # e.g. "sobel_45"
    angle: int         # 0, 45, 90 or 135 degrees
    polarity: int      # +1 (as named) or -1 (inverted)
    similarity: float  # signed cosine; abs(similarity) chose the match


def best_match(kernel, family="sobel"):
    """The oriented edge detector a kernel is closest to.

    Every detector of ``family`` (0, 45, 90, 135 degrees) is compared with
    :func:`kernel_similarity`; the largest *absolute* similarity wins (ties go
    to the smaller angle), and its sign is reported as the polarity.

    Parameters
    ----------
    kernel : array_like of shape (3, 3)
    family : {"sobel", "scharr", "prewitt"}

    Returns
    -------
    Match(name, angle, polarity, similarity)
    """
    k = np.asarray(kernel)
    if k.shape != (3, 3):
        raise ValueError(f"best_match expected a 3x3 kernel, got shape {k.shape}")
    best = None
    for angle, (name, ref) in edge_family(family).items():
        s = kernel_similarity(k, ref)
        if best is None or abs(s) > abs(best.similarity):
            best = Match(name, angle, 1 if s >= 0 else -1, s)
    return best


def rotate45(kernel):
    """Rotate a 3x3 kernel's outer ring one step clockwise (45 degrees on screen).

    Turns an edge detector for angle ``a`` into the one for ``a + 45`` in this
    module's convention, e.g. ``rotate45(sobel_x) == sobel_45``.
    """
    k = np.asarray(kernel)
    if k.shape != (3, 3):
        raise ValueError(f"rotate45 expected a 3x3 kernel, got shape {k.shape}")
    ring = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0)]  # clockwise
    out = k.copy()
    for i, pos in enumerate(ring):
        out[ring[(i + 1) % 8]] = k[pos]
    return out


class KernelMatch(NamedTuple):
    """Result of :func:`match_kernel`: a kernel's best oriented edge detector, discrete and continuous."""

    name: str          # the detector's name as in the table, e.g. "sobel_y"
    angle: int         # its angle: 0, 45, 90 or 135 degrees
    polarity: int      # +1: the kernel matches the detector as named; -1: its negation
    similarity: float  # cosine (mean removed) with the matched kernel, polarity * detector: >= 0
    orientation: float           # degrees in [0, 360): the best detector at any angle, see match_kernel
    orientation_similarity: float  # cosine with that detector: >= similarity for 0/90/180/270 matches

    @property
    def label(self):
        """The matched kernel's name with its sign: ``"sobel_x"`` or ``"-sobel_y"``."""
        return self.name if self.polarity > 0 else f"-{self.name}"

    def reference(self, dtype=np.float64):
        """The matched kernel itself: ``polarity * get_kernel(name)``."""
        return self.polarity * get_kernel(self.name, dtype)


def edge_orientation(kernel, family="sobel"):
    """The angle of the best edge detector at *any* angle, ``cos t * <family>_x + sin t * <family>_y``.

    After removing the kernel's mean, project it on the family's x and y
    kernels (which are orthogonal and of equal norm, so every ``t`` gives a
    detector of the same norm): ``t = atan2(p_y, p_x)`` maximises the cosine,
    which is ``hypot(p_x, p_y) / (|kernel - mean| * |x kernel|)``.  The angle
    follows the module's convention (0 = brighter to the right, 90 = brighter
    downwards) over the full circle, so the polarity is part of it: -sobel_x
    is 180 degrees.

    Returns
    -------
    (degrees in [0, 360), similarity in [0, 1]); (0.0, 0.0) for a constant kernel.
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.shape != (3, 3):
        raise ValueError(f"edge_orientation expected a 3x3 kernel, got shape {k.shape}")
    angles = edge_family(family, np.float64)
    x, y = angles[0][1], angles[90][1]
    centred = k - k.mean()
    norm = np.linalg.norm(centred)
    if norm <= 1e-6 * np.linalg.norm(k) or norm == 0:
        return 0.0, 0.0
    px, py = float(np.sum(centred * x)), float(np.sum(centred * y))
    degrees = float(np.degrees(np.arctan2(py, px)) % 360.0)
    return degrees, float(min(np.hypot(px, py) / (norm * np.linalg.norm(x)), 1.0))


def match_kernel(kernel, family="sobel"):
    """The one matching every kernel report uses: :func:`best_match` plus :func:`edge_orientation`.

    Unlike ``best_match``, whose similarity is signed (to the detector as
    named), ``similarity`` here is with the kernel that matched, the detector
    times its polarity, so a kernel close to -sobel_y reports -sobel_y with
    +0.90, never with -0.90.

    Returns
    -------
    KernelMatch(name, angle, polarity, similarity, orientation, orientation_similarity)
    """
    m = best_match(kernel, family)
    orientation, orientation_similarity = edge_orientation(kernel, family)
    return KernelMatch(m.name, m.angle, m.polarity, m.polarity * m.similarity, orientation, orientation_similarity)
