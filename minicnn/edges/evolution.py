"""Kernels over time: the first-layer kernels at a few points of training, each against its best edge match.

A run keeps snapshots as plain lists in its metrics.json, under
``"kernel_evolution"``: a list of ``{"label": "step 0" | "epoch 1" | ...,
"kernels": (F, KH, KW) nested lists}``.  ``python -m minicnn inspect RUN_DIR
--evolution`` reads them back and draws them: snapshots down, kernels across,
each with its similarity to the kernel it matches best.
"""

import numpy as np

from minicnn.edges import viz
from minicnn.edges.filters import match_kernel
from minicnn.utils import plotting
from minicnn.utils.files import read_metrics

MAX_SNAPSHOTS = 200


def snapshot(W, label):
    """One JSON-ready snapshot of first-layer weights ``W`` (F, 1, KH, KW) or (F, KH, KW)."""
    W = np.asarray(W, dtype=np.float64)
    kernels = W[:, 0] if W.ndim == 4 else W
    return {"label": str(label), "kernels": kernels.round(6).tolist()}


def read_snapshots(path):
    """Labels and kernels (T, F, 3, 3) from a metrics.json holding ``"kernel_evolution"``; ValueError otherwise."""
    path, data = read_metrics(path, "--evolution reads a run's metrics.json, or its folder")
    snaps = data.get("kernel_evolution")
    if not isinstance(snaps, list) or not snaps:
        raise ValueError(f"{path} holds no kernel snapshots ('kernel_evolution'); runs of 'minicnn train' and "
                         f"'minicnn sobel' keep them")
    if len(snaps) > MAX_SNAPSHOTS:
        raise ValueError(f"{path} holds {len(snaps)} snapshots; at most {MAX_SNAPSHOTS} can be drawn")
    try:
        labels = [str(s["label"]) for s in snaps]
        kernels = np.array([s["kernels"] for s in snaps], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f"{path}: each snapshot must be {{'label': ..., 'kernels': (F, 3, 3) lists}}: {e}") from None
    if kernels.ndim != 4 or kernels.shape[2:] != (3, 3) or not np.isfinite(kernels).all():
        raise ValueError(f"{path}: expected snapshots of finite 3x3 kernels, shape (T, F, 3, 3), got {kernels.shape}")
    return labels, kernels


def similarities(kernels, family="sobel"):
    """``KernelMatch`` for every kernel of every snapshot: a (T, F) nested list.  Shape: kernels (T, F, 3, 3)."""
    return [[match_kernel(k, family) for k in snap] for snap in kernels]


def evolution_text(kernels, labels, family="sobel"):
    """A table: one row per snapshot, one column per kernel, the best match and the similarity to it."""
    matches = similarities(kernels, family)
    F = kernels.shape[1]
    width = max(len(lab) for lab in labels)
    header = " " * width + "  " + "  ".join(f"{'filter ' + str(f):>17}" for f in range(F))
    rows = [header] + [f"{lab:<{width}}  " + "  ".join(f"{m.label:>11} {m.similarity:+.2f}" for m in ms)
                       for lab, ms in zip(labels, matches)]
    return "\n".join(rows)


def plot_evolution(kernels, labels, path, family="sobel", title=None):
    """The grid: snapshots down, kernels across, each titled with its match and similarity.

    Every snapshot row has its own symmetric colour scale (early kernels are small).
    Returns the path written, or None without matplotlib.
    """
    T, F = kernels.shape[:2]
    fig = plotting.new_figure(figsize=evolution_figsize(T, F), layout="constrained")
    if fig is None:
        return None
    axes = fig.subplots(T, F, squeeze=False)
    matches = similarities(kernels, family)
    for t in range(T):
        vmax = viz._vmax(kernels[t])
        for f in range(F):
            m = matches[t][f]
            viz._draw_kernel(axes[t, f], kernels[t, f], vmax, f"{m.label} {m.similarity:+.2f}", annotate=False)
            axes[t, f].title.set_fontsize(6)
        axes[t, 0].set_ylabel(labels[t], fontsize=8)
    if title:
        fig.suptitle(evolution_title(title, F), fontsize=TITLE_SIZE)
    return plotting.save_figure(fig, path)


TITLE_SIZE = 9


def evolution_figsize(T, F):
    """(width, height) in inches of the grid of ``T`` snapshots of ``F`` kernels."""
    return 1.15 * F + 1.2, 1.25 * T + 0.7


def evolution_title(title, F):
    """The title as drawn above ``F`` kernels: wrapped to the figure's width (less a margin), so it is never clipped."""
    return plotting.wrap_to_width(title, evolution_figsize(1, F)[0] - 0.2, TITLE_SIZE)
