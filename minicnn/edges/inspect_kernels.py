"""``python -m minicnn inspect CHECKPOINT``: a model's first-layer kernels against the Sobel family.

The checkpoint is an ``.npz`` of plain arrays (read with
``allow_pickle=False``; nothing in it is executed).  The first-layer
convolution weights are the first 4-D array whose key ends in ``W``, by layer
index: keys look like ``"0.W"`` (a ``Sequential.state_dict()``) or carry a
prefix such as ``"model/0.W"``.  Other arrays are ignored, and so are
optimizer buffers (keys containing ``velocity`` or starting with
``optim``).

Each kernel is printed as a grid of numbers beside its best oriented edge
match (``minicnn.edges.filters.best_match``) with the similarity; a figure is
written when matplotlib is installed.
"""
import argparse
import re
from pathlib import Path

import numpy as np

from minicnn.data.npz import NpzReader
from minicnn.edges.filters import FAMILIES, best_match, get_kernel
from minicnn.edges.viz import kernel_vs_reference, plot_kernel_matches, plot_kernels
from minicnn.utils.cli import command


def _layer_index(key):
    """The layer index in keys like '0.W' or 'model/3.W'; None when there is none."""
    match = re.search(r"(?:^|[/.])(\d+)\.W$", key)
    return int(match.group(1)) if match else None


MAX_KERNELS = 4096        # filters x channels shown; a first layer has tens, not millions
MAX_KERNEL_SIDE = 64


def first_conv_key(shapes):
    """The key of the first-layer conv weights in a mapping of name -> shape (or array)."""
    candidates = []
    for order, key in enumerate(shapes):
        if not key.endswith("W") or "velocity" in key or key.startswith("optim"):
            continue
        if len(np.shape(shapes[key]) if not isinstance(shapes[key], tuple) else shapes[key]) != 4:
            continue
        index = _layer_index(key)
        candidates.append((index is None, index if index is not None else 0, order, key))
    if not candidates:
        def shape(k):
            return shapes[k] if isinstance(shapes[k], tuple) else tuple(np.shape(shapes[k]))
        shown = ", ".join(f"{k} {shape(k)}" for k in list(shapes)[:10]) or "none"
        raise ValueError(f"found no convolution weights (a 4-D array whose key ends in 'W', e.g. '0.W'); "
                         f"arrays in the file: {shown}")
    return min(candidates)[3]


def first_conv_weights(arrays):
    """Pick the first-layer conv weights from a mapping of name -> array.

    Returns
    -------
    key : str
    W : ndarray of shape (F, C, KH, KW)
    """
    key = first_conv_key(arrays)
    return key, np.asarray(arrays[key])


def check_kernels(W, key, path):
    """Refuse weights that cannot be shown: no kernels at all, absurdly many, or not all finite numbers.

    Shape: W (F, C, KH, KW); a shape tuple is checked alone (before the data is read).
    """
    shape = W if isinstance(W, tuple) else W.shape
    F, C, KH, KW = shape
    if 0 in shape:
        raise ValueError(f"{path}: '{key}' has shape {shape}: no kernels to show (expected (F, C, KH, KW), all >= 1)")
    if F * C > MAX_KERNELS or max(KH, KW) > MAX_KERNEL_SIDE:
        raise ValueError(f"{path}: '{key}' declares shape {shape}: {F * C} kernels of {KH}x{KW}, more than "
                         f"the {MAX_KERNELS} kernels of at most {MAX_KERNEL_SIDE}x{MAX_KERNEL_SIDE} this tool "
                         f"shows; refusing to read it")
    if isinstance(W, tuple):
        return
    if W.dtype.kind not in "fiu":
        raise ValueError(f"{path}: '{key}' must hold real numbers, got dtype {W.dtype}")
    bad = W.size - int(np.count_nonzero(np.isfinite(W)))
    if bad:
        raise ValueError(f"{path}: '{key}' holds {bad} NaN or infinite values out of {W.size}; "
                         f"the run that wrote it diverged (try a smaller learning rate)")


def load_checkpoint_arrays(path):
    """Read every array of an .npz file into a dict, refusing pickles; ValueError on bad files.

    The archive's declared sizes are checked before anything is decompressed (see ``minicnn.npz``).
    """
    try:
        with NpzReader(path) as npz:
            return npz.read_all()
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None


def read_first_conv(path):
    """(key, W) of the first-layer conv weights in the .npz at ``path``; only that array is decompressed."""
    try:
        npz = NpzReader(path)
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None
    with npz:
        key = first_conv_key(npz.shapes)
        check_kernels(npz.shapes[key], key, path)
        W = npz.read(key)
    check_kernels(W, key, path)
    return key, W


def figure_path(checkpoint, out):
    """Where the figure goes: ``out``, or ``out/kernels.png`` when ``out`` is a directory, or
    ``<checkpoint stem>_kernels.png`` beside the checkpoint."""
    if out is None:
        return Path(checkpoint).with_name(Path(checkpoint).stem + "_kernels.png")
    out = Path(out)
    return out / "kernels.png" if out.is_dir() else out


def describe_kernels(W, family="sobel"):
    """Text for every kernel against its best match, and the list of matches (None for non-3x3 kernels).

    Shape: W (F, C, KH, KW)
    """
    F, C, KH, KW = W.shape
    blocks, matches = [], []
    for f in range(F):
        for c in range(C):
            label = f"filter {f}" + (f", channel {c}" if C > 1 else "")
            kernel = W[f, c]
            if (KH, KW) != (3, 3):
                from minicnn.edges.viz import format_kernel
                blocks.append(label + f" ({KH}x{KW}: matching needs 3x3 kernels)\n" + "\n".join(format_kernel(kernel)))
                matches.append(None)
                continue
            m = best_match(kernel, family)
            sign = "" if m.polarity > 0 else "-"
            ref = m.polarity * get_kernel(m.name, np.float64)
            blocks.append(f"{label}: best match {sign}{m.name} ({m.angle} degrees, polarity {m.polarity:+d})\n"
                          + kernel_vs_reference(kernel, ref, label, f"{sign}{m.name}", similarity=m.similarity))
            matches.append(m)
    return "\n\n".join(blocks), matches


@command("inspect")
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minicnn inspect", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="an .npz file of arrays, e.g. a saved state_dict")
    p.add_argument("--out", default=None, help="figure path; an existing directory means DIR/kernels.png "
                                              "(default: <checkpoint>_kernels.png next to it)")
    p.add_argument("--family", choices=FAMILIES, default="sobel", help="edge family to match against (default: sobel)")
    args = p.parse_args(argv)
    key, W = read_first_conv(args.checkpoint)
    print(f"{args.checkpoint}: first-layer kernels '{key}', shape {W.shape} (filters, channels, height, width)\n")
    text, matches = describe_kernels(W, args.family)
    print(text)
    found = [m for m in matches if m is not None]
    if found:
        sims = np.abs([m.similarity for m in found])
        counts = {a: sum(m.angle == a for m in found) for a in (0, 45, 90, 135)}
        print(f"\nmedian |similarity| to the nearest {args.family} edge detector: {np.median(sims):.3f} "
              f"over {len(found)} kernels; orientations: "
              + ", ".join(f"{a} deg x{n}" for a, n in counts.items()))
    out = figure_path(args.checkpoint, args.out)
    F, C = W.shape[:2]
    if found and len(found) == F * C:
        kernels = W.reshape(F * C, 3, 3)
        refs = np.stack([m.polarity * get_kernel(m.name, np.float64) for m in found])
        titles = [f"{i}: {m.name} {m.similarity:+.2f}" for i, m in enumerate(found)]
        written = plot_kernel_matches(kernels, refs, titles, out)
    else:
        written = plot_kernels(W.reshape(F * C, *W.shape[2:]), out)
    if written:
        print(f"\nfigure: {written}")
    return 0
