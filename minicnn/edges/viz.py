"""Seeing kernels: aligned number grids (always) and PNG figures (with matplotlib).

Text needs nothing but NumPy.  Pictures are drawn with ``minicnn.utils.plotting``:
without matplotlib every ``plot_*`` function returns ``None`` after saying once
per process how to get pictures, so callers simply carry on with the text.
"""
import numpy as np

from minicnn.utils.plotting import new_figure, save_figure

# -- text -------------------------------------------------------------------------------------

def format_kernel(kernel, decimals=2):
    """A 2-D kernel as lines of right-aligned numbers with explicit signs.

    >>> print("\\n".join(format_kernel([[-1, 0, 1]], decimals=0)))
    -1  0 +1
    """
    k = np.asarray(kernel, dtype=np.float64)
    if k.ndim != 2:
        raise ValueError(f"format_kernel expected a 2-D kernel (KH, KW), got shape {k.shape}")
    cells = [[f"{v:+.{decimals}f}" if abs(round(v, decimals)) > 0 else f"{0:.{decimals}f}" for v in row] for row in k]
    width = max(len(c) for row in cells for c in row)
    return [" ".join(c.rjust(width) for c in row) for row in cells]


def side_by_side(blocks, titles=None, gap=4):
    """Join blocks of text lines horizontally, each under its title.

    Parameters
    ----------
    blocks : list of list of str
    titles : list of str, optional
    gap : int, spaces between blocks
    """
    blocks = [list(b) for b in blocks]
    if titles is not None:
        if len(titles) != len(blocks):
            raise ValueError(f"side_by_side got {len(blocks)} blocks but {len(titles)} titles")
        blocks = [[t] + b for t, b in zip(titles, blocks)]
    widths = [max((len(line) for line in b), default=0) for b in blocks]
    height = max((len(b) for b in blocks), default=0)
    rows = []
    for i in range(height):
        parts = [(b[i] if i < len(b) else "").ljust(w) for b, w in zip(blocks, widths)]
        rows.append((" " * gap).join(parts).rstrip())
    return "\n".join(rows)


def kernel_vs_reference(learned, reference, learned_title="learned", reference_title="reference",
                        similarity=None, decimals=2):
    """The learned kernel beside a reference, and their similarity on the last line."""
    from minicnn.edges.filters import kernel_similarity  # local import keeps viz free of cycles

    s = kernel_similarity(learned, reference) if similarity is None else similarity
    text = side_by_side([format_kernel(learned, decimals), format_kernel(reference, decimals)],
                        [learned_title, reference_title])
    return f"{text}\ncosine similarity (mean removed): {s:+.4f}"


# -- pictures (matplotlib, optional) -----------------------------------------------------------

def _draw_kernel(ax, kernel, vmax, title=None, annotate=True):
    k = np.asarray(kernel, dtype=np.float64)
    image = ax.imshow(k, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=8)
    if annotate and k.size <= 49:
        for (i, j), v in np.ndenumerate(k):
            ax.text(j, i, f"{v + 0.0:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if abs(v) > 0.6 * vmax else "black")
    return image


def _vmax(arrays):
    return max(max(float(np.abs(a).max()) for a in arrays), 1e-12)


def plot_kernels(kernels, path, titles=None, columns=8, title=None):
    """A grid of kernels on one shared, symmetric colour scale (blue negative, red positive).

    Shape: kernels (F, KH, KW) or (F, 1, KH, KW)
    Returns the path written, or None without matplotlib.
    """
    k = np.asarray(kernels, dtype=np.float64)
    if k.ndim == 4 and k.shape[1] == 1:
        k = k[:, 0]
    if k.ndim != 3:
        raise ValueError(f"plot_kernels expected kernels of shape (F, KH, KW) or (F, 1, KH, KW), got {np.shape(kernels)}")
    F = k.shape[0]
    cols = min(columns, F)
    rows = -(-F // cols)
    fig = new_figure(figsize=(1.6 * cols + 0.8, 1.7 * rows))
    if fig is None:
        return None
    axes = fig.subplots(rows, cols, squeeze=False)
    vmax = _vmax(k)
    image = None
    for f, ax in enumerate(axes.flat):
        if f < F:
            image = _draw_kernel(ax, k[f], vmax, titles[f] if titles else f"filter {f}")
        else:
            ax.axis("off")
    fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def plot_kernel_matches(kernels, references, titles, path, columns=8, title=None):
    """Each learned kernel above its matched reference, at most ``columns`` pairs a row.

    Learned kernels share one colour scale; each reference is drawn on its own
    symmetric scale, since only the pattern matters.
    Shape: kernels (F, KH, KW), references (F, KH, KW), titles: F strings
    """
    k = np.asarray(kernels, dtype=np.float64)
    r = np.asarray(references, dtype=np.float64)
    if k.ndim != 3 or k.shape != r.shape or len(titles) != k.shape[0]:
        raise ValueError(f"plot_kernel_matches expected kernels and references of one shape (F, KH, KW) and F titles, "
                         f"got {k.shape}, {r.shape} and {len(titles)} titles")
    F = k.shape[0]
    cols = min(columns, F)
    rows = -(-F // cols)
    fig = new_figure(figsize=(1.5 * cols + 0.9, 3.3 * rows + (0.5 if title else 0.1)), layout="constrained")
    if fig is None:
        return None
    axes = fig.subplots(2 * rows, cols, squeeze=False)
    vmax = _vmax(k)
    for i in range(rows * cols):
        row, col = divmod(i, cols)
        top, bottom = axes[2 * row, col], axes[2 * row + 1, col]
        if i >= F:
            top.axis("off")
            bottom.axis("off")
            continue
        _draw_kernel(top, k[i], vmax, titles[i])
        _draw_kernel(bottom, r[i], _vmax([r[i]]), None)
        if col == 0:
            top.set_ylabel("learned", fontsize=8)
            bottom.set_ylabel("best match", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    return save_figure(fig, path)


def plot_curves(steps, loss, path, similarities=None, xlabel="step"):
    """Loss (log scale) and, optionally, similarity curves over training.

    Parameters
    ----------
    steps : sequence of x values
    loss : sequence, same length
    similarities : dict name -> sequence, optional
    """
    steps = np.asarray(steps, dtype=np.float64)
    loss = np.asarray(loss, dtype=np.float64)
    if steps.shape != loss.shape or steps.ndim != 1:
        raise ValueError(f"plot_curves expected steps and loss of one length, got {steps.shape} and {loss.shape}")
    panels = 2 if similarities else 1
    fig = new_figure(figsize=(4.5 * panels, 3.2))
    if fig is None:
        return None
    axes = fig.subplots(1, panels, squeeze=False)[0]
    axes[0].plot(steps, loss)
    if np.all(loss > 0):
        axes[0].set_yscale("log")
    axes[0].set_xlabel(xlabel)
    axes[0].set_ylabel("loss")
    if similarities:
        for name, values in similarities.items():
            axes[1].plot(steps, np.asarray(values, dtype=np.float64), label=name)
        axes[1].set_xlabel(xlabel)
        axes[1].set_ylabel("cosine similarity")
        axes[1].legend(fontsize=8)
    fig.tight_layout()
    return save_figure(fig, path)
