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
INSTALL_HINT = 'reading pictures needs Pillow: pip install "minicnn-numpy[plot]"'


def read_grayscale(path):
    """The picture at ``path`` as a float64 array (H, W) in [0, 255]; ValueError for anything but a sane image."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no such image file: {path}")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes); expected a PNG or JPEG picture")
    with open(path, "rb") as f:
        return decode_grayscale(f, path)


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
JPEG_SIGNATURE = b"\xff\xd8\xff"
_JPEG_FRAMES = set(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}   # start-of-frame markers: they hold the size


def header_size(source):
    """Width and height of a PNG or JPEG read from its header, no pixel decoded: (W, H), or None for other formats.

    ``source`` is a binary file (or ``io.BytesIO``); it is left where it was.  A PNG's
    size is its first chunk (IHDR); a JPEG's is in its start-of-frame segments, read
    up to the first scan (the largest, when there are several).  Raises ValueError for
    a PNG or JPEG whose header gives no size.
    """
    start = source.tell()
    try:
        head = source.read(24)
        if head.startswith(PNG_SIGNATURE):
            if len(head) < 24 or head[12:16] != b"IHDR":
                raise ValueError("a PNG whose first chunk is not its header (IHDR)")
            return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")
        if not head.startswith(JPEG_SIGNATURE):
            return None
        source.seek(start + 2)
        W = H = 0
        byte = source.read(1)
        while byte:  # segment by segment, as Pillow reads them: stray bytes and fill bytes skipped
            code = source.read(1) if byte == b"\xff" else b""
            if byte != b"\xff" or code in (b"\xff", b"\x00"):
                byte = code if code == b"\xff" else source.read(1)
                continue
            if not code or code[0] < 0xC0 or code[0] in (0xD9, 0xDA):  # the end, the first scan, or no JPEG
                break
            if not 0xD0 <= code[0] <= 0xD8:  # every other marker starts a segment that says its length
                segment = source.read(max(0, int.from_bytes(source.read(2), "big") - 2))
                if code[0] in _JPEG_FRAMES and len(segment) >= 5:
                    H, W = max(H, int.from_bytes(segment[1:3], "big")), max(W, int.from_bytes(segment[3:5], "big"))
            byte = source.read(1)
        if W == 0 or H == 0:
            raise ValueError("a JPEG whose header gives no size (no start-of-frame segment before its first scan)")
        return W, H
    finally:
        source.seek(start)


def decode_grayscale(source, name="the picture", max_side=MAX_SIDE):
    """A PNG or JPEG from an open binary file (or ``io.BytesIO``) -> float64 (H, W) in [0, 255].

    ``name`` says in errors what was read (a path, or e.g. "the drawing").  A PNG or JPEG
    larger than ``max_side`` (at most ``MAX_SIDE``) either way is refused from its header,
    before Pillow sees it: nothing is decoded and Pillow warns of no decompression bomb.
    """
    try:
        from PIL import Image, UnidentifiedImageError
    except ImportError:
        raise ValueError(INSTALL_HINT) from None
    Image.MAX_IMAGE_PIXELS = MAX_SIDE * MAX_SIDE
    max_side = min(max_side, MAX_SIDE)
    try:
        size = header_size(source)
    except ValueError as e:
        raise ValueError(f"{name} is {e}; expected a PNG or JPEG picture") from None
    if size is not None:
        _check_size(name, size, max_side)
    try:
        with Image.open(source) as im:
            _check_size(name, im.size, max_side)  # from the header: nothing is decoded yet
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


def _check_size(name, size, max_side):
    W, H = size
    if not (1 <= W <= max_side and 1 <= H <= max_side):
        raise ValueError(f"{name} is {W}x{H} pixels; expected a picture of at most {max_side}x{max_side}")


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
