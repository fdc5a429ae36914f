"""Your own picture as an MNIST digit: read with Pillow, then prepared the way MNIST's digits were made.

``digit_image(path)``: grayscale; inverted when the background is light (MNIST
is white ink on black); cropped to the ink's bounding box; scaled so the
longest side is 20 pixels; placed in a 28x28 field so that the centre of mass
of the ink is at the centre.  Returns uint8 pixels, as MNIST's files hold, so
the caller normalises them exactly as training did.
"""
from pathlib import Path

import numpy as np
from scipy import ndimage

MAX_SIDE = 4096          # refuse larger pictures before decoding them
INSTALL_HINT = 'reading pictures needs Pillow: pip install "minicnn[plot]"'


def read_grayscale(path):
    """The picture at ``path`` as a float64 array (H, W) in [0, 255]; ValueError for anything but a sane image."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such image file: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); expected a PNG or JPEG picture")
    with open(path, "rb") as f:
        return decode_grayscale(f, path)


def decode_grayscale(source, name="the picture"):
    """A PNG or JPEG from an open binary file (or ``io.BytesIO``) -> float64 (H, W) in [0, 255].

    ``name`` says in errors what was read (a path, or e.g. "the drawing").
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    Image.MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE
    try:
        with Image.open(source) as im:
            W, H = im.size  # from the header: nothing is decoded yet
            if W > MAX_SIDE or H > MAX_SIDE or W < 1 or H < 1:
                raise ValueError(f"{name} is {W}x{H} pixels; expected a picture of at most {MAX_SIDE}x{MAX_SIDE}")
            if im.format not in ("PNG", "JPEG"):
                raise ValueError(f"{name} is a {im.format} image; expected a PNG or JPEG picture")
            if "A" in im.getbands():  # transparent pixels count as the white paper they are drawn on
                background = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(background, im.convert("RGBA"))
            gray = np.asarray(im.convert("L"), dtype=np.float64)
    except UnidentifiedImageError:
        raise ValueError(f"{name} is not an image Pillow can read; expected a PNG or JPEG picture") from None
    except (OSError, Image.DecompressionBombError) as e:
        raise ValueError(f"{name} could not be decoded as a PNG or JPEG picture: {e}") from None
    return gray


def mnist_like(gray, box=20, side=28):
    """A grayscale picture (H, W) in [0, 255] -> uint8 (28, 28): white ink on black, size- and mass-centred.

    Raises ValueError when no ink is found (a blank picture).
    """
    g = np.asarray(gray, dtype=np.float64)
    border = np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]])
    if np.median(border) > 127:  # light background: dark ink on paper
        g = 255.0 - g
    g = g - np.median(np.concatenate([g[0], g[-1], g[:, 0], g[:, -1]]))
    g = np.clip(g, 0, None)
    if g.max() <= 0:
        raise ValueError("found no ink in the picture: it is one flat colour")
    ink = g > 0.25 * g.max()
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    g = g[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
    g = g / g.max()
    H, W = g.shape
    scale = box / max(H, W)
    h, w = max(1, round(H * scale)), max(1, round(W * scale))
    from PIL import Image

    small = np.asarray(Image.fromarray((g * 255).astype(np.uint8)).resize((w, h), Image.LANCZOS), dtype=np.float64)
    small = np.clip(small, 0, 255)
    field = np.zeros((side, side))
    top, left = (side - h) // 2, (side - w) // 2
    field[top:top + h, left:left + w] = small
    cy, cx = ndimage.center_of_mass(field)
    field = ndimage.shift(field, ((side - 1) / 2 - cy, (side - 1) / 2 - cx), order=1, mode="constant")
    return np.clip(field.round(), 0, 255).astype(np.uint8)


def digit_image(path):
    """``mnist_like(read_grayscale(path))``, with the file named in any error."""
    gray = read_grayscale(path)
    try:
        return mnist_like(gray)
    except ValueError as e:
        raise ValueError(f"{path}: {e}") from None
