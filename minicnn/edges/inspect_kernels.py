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
import sys
import zipfile
from pathlib import Path

import numpy as np

from minicnn.edges.filters import FAMILIES, best_match, get_kernel
from minicnn.edges.viz import kernel_vs_reference, plot_kernel_matches, plot_kernels


def _layer_index(key):
    """The layer index in keys like '0.W' or 'model/3.W'; None when there is none."""
    match = re.search(r"(?:^|[/.])(\d+)\.W$", key)
    return int(match.group(1)) if match else None


def first_conv_weights(arrays):
    """Pick the first-layer conv weights from a mapping of name -> array.

    Returns
    -------
    key : str
    W : ndarray of shape (F, C, KH, KW)
    """
    candidates = []
    for order, key in enumerate(arrays):
        if not key.endswith("W") or "velocity" in key or key.startswith("optim"):
            continue
        value = arrays[key]
        if getattr(value, "ndim", 0) != 4:
            continue
        index = _layer_index(key)
        candidates.append((index is None, index if index is not None else 0, order, key))
    if not candidates:
        shown = ", ".join(f"{k} {tuple(np.shape(arrays[k]))}" for k in list(arrays)[:10]) or "none"
        raise ValueError(f"found no convolution weights (a 4-D array whose key ends in 'W', e.g. '0.W'); "
                         f"arrays in the file: {shown}")
    key = min(candidates)[3]
    return key, np.asarray(arrays[key])


def load_checkpoint_arrays(path):
    """Read every array of an .npz file into a dict, refusing pickles; ValueError on bad files."""
    path = Path(path)
    if not path.exists():
        raise ValueError(f"no such file: {path}")
    if path.is_dir():
        raise ValueError(f"expected an .npz checkpoint file, got a directory: {path}")
    with open(path, "rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        raise ValueError(f"expected an .npz checkpoint (several named arrays), got a single .npy array: {path}")
    if not magic.startswith(b"PK"):
        raise ValueError(f"expected an .npz checkpoint (a zip of .npy arrays, as np.savez writes), "
                         f"but {path} is not a zip file (it starts with {magic!r})")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, zipfile.BadZipFile, OSError, EOFError) as err:
        raise ValueError(f"expected an .npz checkpoint of plain arrays, could not read {path}: {err}") from None
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise ValueError(f"expected an .npz checkpoint (several named arrays), got a single .npy array: {path}")
    with data:
        try:
            return {key: data[key] for key in data.files}
        except ValueError as err:  # e.g. an object array, which would need pickle
            raise ValueError(f"{path} holds an array that is not plain numbers: {err}") from None


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


def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minicnn inspect", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="an .npz file of arrays, e.g. a saved state_dict")
    p.add_argument("--out", default=None, help="figure path (default: <checkpoint>_kernels.png next to it)")
    p.add_argument("--family", choices=FAMILIES, default="sobel", help="edge family to match against (default: sobel)")
    args = p.parse_args(argv)
    try:
        arrays = load_checkpoint_arrays(args.checkpoint)
        key, W = first_conv_weights(arrays)
    except ValueError as err:
        print(f"minicnn inspect: {err}", file=sys.stderr)
        return 2
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
    out = Path(args.out) if args.out else Path(args.checkpoint).with_name(Path(args.checkpoint).stem + "_kernels.png")
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
