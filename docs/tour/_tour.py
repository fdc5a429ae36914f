"""What every chapter of the tour shares: figures only when matplotlib is there, the photograph, MNIST.

Each chapter runs as a plain script (``python docs/tour/03_sobel.py``) or as a notebook (``render.py``).
Figures are drawn on bare ``matplotlib.figure.Figure`` objects (no pyplot, no window) and shown as PNGs
in a notebook; as a script there is nothing to show them on, so they are drawn and dropped. Without
matplotlib every figure is skipped, after one line saying so, and the chapters print their numbers as usual.
"""
import io
import os
import sys

import numpy as np

DPI = 80
_noted = False


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _in_notebook():
    shell = sys.modules.get("IPython")
    return shell is not None and shell.get_ipython() is not None


def figure(width, height):
    """A new Figure of ``width`` x ``height`` inches, or None (after a one-line note, once) without matplotlib."""
    global _noted
    if not have_matplotlib():
        if not _noted:
            print('(figures skipped: they need matplotlib, pip install -e ".[plot]"; the numbers below are all there is)')
            _noted = True
        return None
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def show(fig):
    """Show a figure as a small PNG in a notebook; as a plain script, nothing (None: no matplotlib)."""
    if fig is None:
        return
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    show_png(buffer.getvalue())


def show_png(data):
    """Show PNG bytes in a notebook (e.g. a figure a minicnn view wrote into a BytesIO)."""
    if _in_notebook():
        from IPython.display import Image, display

        display(Image(data=data, format="png"))


def image_row(images, titles, cmap="gray", height=2.2, symmetric=False, limits=None):
    """Draw images side by side, each under its title; returns the figure (None without matplotlib).

    ``symmetric``: blue negative, red positive on one scale per image; ``limits``: (vmin, vmax) for all.
    """
    fig = figure(height * len(images), height + 0.3)
    if fig is None:
        return None
    for ax, image, title in zip(fig.subplots(1, len(images), squeeze=False)[0], images, titles):
        image = np.asarray(image, dtype=np.float64)
        if symmetric:
            v = max(float(np.abs(image).max()), 1e-12)
            ax.imshow(image, cmap="RdBu_r", vmin=-v, vmax=v)
        else:
            ax.imshow(image, cmap=cmap, **({} if limits is None else {"vmin": limits[0], "vmax": limits[1]}))
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def photograph(step=3):
    """Grace Hopper, the photograph matplotlib ships in its sample data, grey, in [0, 1], every ``step``-th pixel.

    Nothing is downloaded. Without matplotlib (or Pillow, which reads the JPEG) a synthetic stand-in of
    the same size is made from ``minicnn.data.synthetic.edge_images``, and the description says so.

    Returns (image (H, W) float64, description)
    """
    try:
        from matplotlib import cbook
        from PIL import Image

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            rgb = np.asarray(Image.open(f).convert("L"), dtype=np.float64) / 255.0
        return rgb[::step, ::step], "the photograph grace_hopper.jpg from matplotlib's sample data"
    except ImportError:
        from minicnn.data.synthetic import edge_images

        image = edge_images(1, 200, 171, rng=np.random.default_rng(0), dtype=np.float64)[0, 0]
        return image, "a synthetic stand-in (matplotlib and Pillow are needed for the photograph)"


def mnist(n_train, n_test):
    """The first ``n_train`` training and ``n_test`` test images of MNIST, standardised, and their labels.

    Read with ``minicnn.data.mnist.load_mnist(download=True)`` from ``$MINICNN_MNIST_ROOT`` or the
    data folder (``minicnn fetch mnist --where`` prints it): fetched (and checked by SHA-256) the first
    time, as ``minicnn train`` does.

    Returns x_train (n_train, 1, 28, 28) float32, y_train (n_train,) int64, x_test, y_test
    """
    from minicnn.data.mnist import load_mnist, normalize

    root = os.environ.get("MINICNN_MNIST_ROOT")          # None: the data folder
    x_train, y_train, x_test, y_test = load_mnist(root, download=True, progress=False)
    return (normalize(x_train[:n_train]), y_train[:n_train].astype(np.int64),
            normalize(x_test[:n_test]), y_test[:n_test].astype(np.int64))
