"""``python -m minicnn inspect CHECKPOINT``: a model's first-layer kernels against the Sobel family.

The checkpoint is an ``.npz`` of plain arrays (read with
``allow_pickle=False``; nothing in it is executed).  A minicnn checkpoint goes
through the one checkpoint reader (``minicnn.training.checkpoint``), with all
its checks; any other ``.npz`` (a saved ``state_dict``) is read for its one
array.  The first-layer
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
from minicnn.edges.evolution import evolution_text, plot_evolution, read_snapshots
from minicnn.edges.filters import ANGLES, FAMILIES, match_kernel
from minicnn.edges.viz import format_kernel, kernel_vs_reference, plot_kernel_matches, plot_kernels, side_by_side
from minicnn.training.checkpoint import load_checkpoint
from minicnn.utils import plotting
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
    """(key, W) of the first-layer conv weights in the .npz at ``path``.

    A minicnn checkpoint is read by ``load_checkpoint`` (every check, the weights kept); of any other .npz
    only that array is decompressed.
    """
    try:
        npz = NpzReader(path)
    except FileNotFoundError:
        raise ValueError(f"no such file: {path}") from None
    with npz:
        is_checkpoint = "minicnn/format" in npz.shapes
        if not is_checkpoint:
            key = first_conv_key(npz.shapes)
            check_kernels(npz.shapes[key], key, path)
            W = npz.read(key)
    if is_checkpoint:   # every check of the one checkpoint reader, then the first convolution of its network
        weights = {f"model/{name}": value for name, value in load_checkpoint(path, weights_only=True).model.items()}
        key = first_conv_key(weights)
        W = weights[key]
    check_kernels(W, key, path)
    return key, W


def figure_path(checkpoint, out):
    """Where the figure goes: ``out``, or ``out/kernels.png`` when ``out`` is a directory, or
    ``<checkpoint stem>_kernels.png`` beside the checkpoint."""
    if out is None:
        return Path(checkpoint).with_name(Path(checkpoint).stem + "_kernels.png")
    out = Path(out)
    return out / "kernels.png" if out.is_dir() else out


def describe_kernels(W, family="sobel", columns=2):
    """The kernel report: every kernel beside the kernel it matches best, as text and as records.

    One function serves every report (``inspect``, the end of the MNIST run, the
    edge classifier).  Each kernel is shown beside the kernel that matched (the
    detector times its polarity, e.g. ``-sobel_y``) with the similarity to
    *that* kernel, and the angle of the best edge detector at any angle
    (:func:`minicnn.edges.filters.match_kernel`).  Kernels that are not 3x3
    are printed without matching.

    Shape: W (F, C, KH, KW)

    Returns
    -------
    text : str, ``columns`` kernels side by side, and a summary line
    matches : list of F*C ``KernelMatch`` (None for non-3x3 kernels), filter-major
    """
    W = np.asarray(W, dtype=np.float64)
    F, C, KH, KW = W.shape
    blocks, matches = [], []
    for f in range(F):
        for c in range(C):
            label = f"filter {f}" + (f", channel {c}" if C > 1 else "")
            kernel = W[f, c]
            if (KH, KW) != (3, 3):
                blocks.append(label + f" ({KH}x{KW}: matching needs 3x3 kernels)\n" + "\n".join(format_kernel(kernel)))
                matches.append(None)
                continue
            m = match_kernel(kernel, family)
            blocks.append(f"{label}: best match {m.label} ({m.angle} degrees, polarity {m.polarity:+d})\n"
                          + kernel_vs_reference(kernel, m.reference(), label, m.label, similarity=m.similarity)
                          + f"\nbest edge at any angle: {m.orientation:.0f} degrees, similarity "
                            f"{m.orientation_similarity:+.4f}")
            matches.append(m)
    rows = [side_by_side([b.splitlines() for b in blocks[i:i + columns]], gap=6)
            for i in range(0, len(blocks), columns)]
    text = "\n\n".join(rows)
    found = [m for m in matches if m is not None]
    if found:
        sims = np.array([m.similarity for m in found])
        counts = {a: sum(m.angle == a for m in found) for a in ANGLES}
        text += (f"\n\nmedian |similarity| to the nearest {family} edge detector: {np.median(sims):.3f} "
                 f"over {len(found)} kernels (max {sims.max():.3f}, {int(np.sum(sims >= 0.8))} at or above 0.8); "
                 "orientations: " + ", ".join(f"{a} deg x{n}" for a, n in counts.items()))
    return text, matches


def match_records(W, matches):
    """JSON-ready dicts, one per kernel of ``describe_kernels``: filter, channel, kernel and the match.

    Shape: W (F, C, KH, KW)
    """
    W = np.asarray(W, dtype=np.float64)
    records = []
    for i, m in enumerate(matches):
        f, c = divmod(i, W.shape[1])
        record = {"filter": f, "channel": c, "kernel": W[f, c].round(6).tolist()}
        if m is not None:
            record.update(match=m.name, label=m.label, angle=m.angle, polarity=m.polarity,
                          similarity=round(m.similarity, 6), orientation=round(m.orientation, 2),
                          orientation_similarity=round(m.orientation_similarity, 6))
        records.append(record)
    return records


def plot_kernel_report(W, matches, path, title=None):
    """kernels.png: each kernel above the kernel it matched, with the similarity to it (up to 8 pairs a row).

    Without a match for every kernel (non-3x3 kernels) only the kernels are drawn.
    Returns the path written, or None without matplotlib.
    """
    W = np.asarray(W)
    F, C = W.shape[:2]
    kernels = W.reshape(F * C, *W.shape[2:])
    if not matches or any(m is None for m in matches):
        return plot_kernels(kernels, path, title=title)
    refs = np.stack([m.reference() for m in matches])
    titles = [f"{i}: {m.label}\n{m.similarity:+.2f}, {m.orientation:.0f}\u00b0" for i, m in enumerate(matches)]
    return plot_kernel_matches(kernels, refs, titles, path, title=title)


def resolve_checkpoint(path):
    """A run's folder means its checkpoint.npz; a file is itself."""
    path = Path(path)
    return path / "checkpoint.npz" if path.is_dir() else path


def refuse_to_replace(path, overwrite):
    """Raise ValueError when ``path`` exists and the user did not pass --overwrite."""
    if Path(path).exists() and not overwrite:
        raise ValueError(f"{path} exists; pass --overwrite to replace it, or --out to write elsewhere")


@command("inspect")
def main(argv=None):
    p = argparse.ArgumentParser(prog="python -m minicnn inspect", description=__doc__.split("\n\n")[0])
    p.add_argument("checkpoint", help="an .npz file of arrays (e.g. a saved state_dict), or a run's folder "
                                      "(its checkpoint.npz, and its metrics.json for --evolution)")
    p.add_argument("--out", default=None, help="figure path; an existing directory means DIR/kernels.png "
                                              "(DIR/evolution.png with --evolution) (default: "
                                              "<checkpoint>_kernels.png or <checkpoint>_evolution.png next to it)")
    p.add_argument("--family", choices=FAMILIES, default="sobel", help="edge family to match against (default: sobel)")
    p.add_argument("--evolution", action="store_true",
                   help="the first-layer kernels at step 0 and after every epoch, as the run's metrics.json "
                        "kept them: epochs down, kernels across, each with its similarity to the best match")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing figure (default: refuse and say so)")
    args = p.parse_args(argv)
    if args.evolution:
        return _evolution(args)
    checkpoint = resolve_checkpoint(args.checkpoint)
    key, W = read_first_conv(checkpoint)
    out = figure_path(checkpoint, args.out)
    if plotting.have_matplotlib():
        refuse_to_replace(out, args.overwrite or (args.out is not None and not Path(args.out).is_dir()))
    print(f"{checkpoint}: first-layer kernels '{key}', shape {W.shape} (filters, channels, height, width)\n")
    text, matches = describe_kernels(W, args.family)
    print(text)
    written = plot_kernel_report(W, matches, out, title=f"first-layer kernels of {checkpoint} (top) and the "
                                                         f"{args.family} kernel each matches best (bottom)")
    if written:
        print(f"\nfigure: {written}")
    return 0


def _evolution(args):
    folder = Path(args.checkpoint)
    metrics = folder / "metrics.json" if folder.is_dir() else folder
    labels, kernels = read_snapshots(metrics)
    print(f"{metrics}: first-layer kernels at {len(labels)} points of training\n")
    print(evolution_text(kernels, labels, args.family))
    if args.out is not None:
        out = Path(args.out) / "evolution.png" if Path(args.out).is_dir() else Path(args.out)
    else:
        out = folder / "evolution.png" if folder.is_dir() else metrics.with_name(metrics.stem + "_evolution.png")
    if plotting.have_matplotlib():
        refuse_to_replace(out, args.overwrite or (args.out is not None and not Path(args.out).is_dir()))
    written = plot_evolution(kernels, labels, out, family=args.family,
                             title=f"first-layer kernels of the run in {metrics.parent} during training "
                                   f"(similarity to the best {args.family} match)")
    if written:
        print(f"\nfigure: {written}")
    return 0
