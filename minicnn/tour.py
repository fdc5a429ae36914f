"""The tour's helpers (docs/tour): figures only when matplotlib is there, the photograph, MNIST, numbers that vary.

Every chapter imports them as ``from minicnn.tour import ...``, so a chapter runs from any directory, as a
script or as a notebook. Figures are drawn on bare ``matplotlib.figure.Figure`` objects (no pyplot, no
window) and shown as PNGs in a notebook. **Run as a script, a chapter draws no figures**: there is nothing
to show them on, so ``figure`` returns None and ``draws_figures`` False; the numbers and the checks are the same. Without matplotlib every
figure is skipped, after one line saying so.

The tour's networks are small, so importing these helpers puts NumPy's OpenBLAS and the engine's split
(``minicnn.engine.threads``) on one thread (unless one of ``BLAS_THREAD_VARIABLES`` is set): a second
thread gains little on such small passes, and one thread gives every machine's render the same rounding
(chapter 5: 9 s on one thread, 26 s on two BLAS threads, measured on a loaded 2-core machine).

``python -m minicnn.tour --out DIR`` writes the chapters as Jupyter notebooks into DIR (``--execute`` runs
them, so they open with their outputs and figures); it needs the ``docs`` extra (jupytext, nbclient).
"""
import argparse
import io
import os
import re
import sys
from pathlib import Path

import numpy as np

from minicnn.engine import cblas, threads

DPI = 80
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# The PNG's text chunks: none that changes between runs or machines (matplotlib writes its version as
# "Software" otherwise), so rendering twice gives the same bytes.
PNG_METADATA = {"Software": None}
_noted = False


def one_blas_thread():
    """NumPy's OpenBLAS and the engine's split on one thread, unless the environment chose; returns the BLAS
    thread count now in force."""
    if not any(v in os.environ for v in BLAS_THREAD_VARIABLES):
        cblas.set_blas_threads(1)
        threads.set_threads(1)
    return cblas.blas_threads()


one_blas_thread()


def have_matplotlib():
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True


def _in_notebook():
    shell = sys.modules.get("IPython")
    return shell is not None and shell.get_ipython() is not None


def draws_figures():
    """True in a notebook with matplotlib: the only place a figure is drawn (a script shows none, so draws none).

    Without matplotlib, says so once.
    """
    global _noted
    if not have_matplotlib():
        if not _noted:
            print('(figures skipped: they need matplotlib, pip install -e ".[plot]"; the numbers below are all there is)')
            _noted = True
        return False
    return _in_notebook()


def figure(width, height):
    """A new Figure of ``width`` x ``height`` inches in a notebook; None in a script or without matplotlib."""
    if not draws_figures():
        return None
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), layout="constrained")


def png_bytes(fig):
    """The figure as PNG bytes, the same bytes every time for the same figure."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata=PNG_METADATA)
    return buffer.getvalue()


def show(fig):
    """Show a figure as a small PNG in a notebook; as a plain script, nothing (None: no matplotlib)."""
    if fig is None:
        return
    show_png(png_bytes(fig))


def show_png(data):
    """Show PNG bytes in a notebook (e.g. a figure a minicnn view wrote into a BytesIO)."""
    if _in_notebook():
        from IPython.display import Image, display

        display(Image(data=data, format="png"))


def image_row(images, titles, cmap="gray", height=2.2, symmetric=False, limits=None):
    """Draw images side by side, each under its title; returns the figure (None without matplotlib).

    ``symmetric``: blue negative, red positive on one scale per image; ``limits``: (vmin, vmax) for all,
    or a list with one (vmin, vmax) or None (own scale) per image.
    """
    fig = figure(height * len(images), height + 0.3)
    if fig is None:
        return None
    per_image = limits if isinstance(limits, list) else [limits] * len(images)
    for ax, image, title, lim in zip(fig.subplots(1, len(images), squeeze=False)[0], images, titles, per_image):
        image = np.asarray(image, dtype=np.float64)
        if symmetric:
            v = max(float(np.abs(image).max()), 1e-12)
            ax.imshow(image, cmap="RdBu_r", vmin=-v, vmax=v)
        else:
            ax.imshow(image, cmap=cmap, **({} if lim is None else {"vmin": lim[0], "vmax": lim[1]}))
        ax.set_title(title, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
    return fig


def photograph(step=3, colour=False):
    """Grace Hopper, the photograph matplotlib ships in its sample data, in [0, 1], every ``step``-th pixel.

    Grey (H, W) by default; ``colour=True`` gives its three channels first, (3, H, W), as a convolution
    reads them. Nothing is downloaded. Without matplotlib (or Pillow, which reads the JPEG) a synthetic
    stand-in of the same size is made from ``minicnn.data.synthetic.edge_images``, and the description says so.

    Returns (image float64, description)
    """
    try:
        from matplotlib import cbook
        from PIL import Image

        with cbook.get_sample_data("grace_hopper.jpg") as f:
            picture = Image.open(f)
            if colour:
                image = np.asarray(picture.convert("RGB"), dtype=np.float64).transpose(2, 0, 1) / 255.0
            else:
                image = np.asarray(picture.convert("L"), dtype=np.float64) / 255.0
        return image[..., ::step, ::step], "the photograph grace_hopper.jpg from matplotlib's sample data"
    except ImportError:
        from minicnn.data.synthetic import edge_images

        image = edge_images(3 if colour else 1, 200, 171, rng=np.random.default_rng(0), dtype=np.float64)[:, 0]
        return (image if colour else image[0]), "a synthetic stand-in (matplotlib and Pillow are needed for the photograph)"


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


# A number that may differ between machines (BLAS threads, CPU kernels round float32 differently), printed
# with how much: "84.6% (±3)" or "0.512 (±0.05)". tests/test_tour.py compares a chapter's fresh output with its
# rendered page: every other number must be equal, these within the stated amount.
VARIES = re.compile(r"(?P<value>[-+]?\d[\d,]*(?:\.\d+)?)(?P<percent>%?) \(±(?P<tolerance>\d+(?:\.\d+)?)\)")


def vary(value, spec, tolerance):
    """``value`` formatted with ``spec`` and its tolerance, in the units printed.

    ``vary(0.846, ".1%", 3)`` -> ``"84.6% (±3)"`` (three points); ``vary(0.5123, ".3f", 0.05)`` -> ``"0.512 (±0.05)"``.
    """
    if tolerance <= 0:
        raise ValueError(f"vary: expected a tolerance above 0 (use plain formatting for exact numbers), got {tolerance}")
    return f"{value:{spec}} (±{tolerance:g})"


def below(difference, bound=1e-12):
    """A difference that is zero but for rounding, printed the same on every machine: "below 1e-12" (else its value)."""
    return f"below {bound:.0e}" if difference < bound else f"{difference:.1e}"


NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d*)?(?:e[-+]?\d+)?")


def _close_in_last_digit(x, y):
    """Two printed numbers of the same form that differ by at most one unit in their last digit."""
    dx, dy = (len(v.split("e")[0].partition(".")[2]) for v in (x, y))
    if dx != dy or ("e" in x) != ("e" in y):
        return False
    if "e" in x:
        (mx, ex), (my, ey) = x.split("e"), y.split("e")
        return ex == ey and abs(float(mx) - float(my)) <= 1.0001 * 10.0 ** -dx
    return abs(float(x.replace(",", "")) - float(y.replace(",", ""))) <= 1.0001 * 10.0 ** -dx


def _same_text(x, y, last_digit):
    if x == y:
        return True
    if not last_digit:
        return False
    words_x, words_y = NUMBER.split(x), NUMBER.split(y)
    numbers_x, numbers_y = NUMBER.findall(x), NUMBER.findall(y)
    # numpy pads columns of an array to the widest value: compare the words without their spaces
    return ([w.replace(" ", "") for w in words_x] == [w.replace(" ", "") for w in words_y]
            and len(numbers_x) == len(numbers_y) and all(map(_close_in_last_digit, numbers_x, numbers_y)))


def same_output(rendered, fresh, last_digit=False):
    """Compare two outputs of one chapter: the same words and numbers, numbers marked by ``vary`` within their tolerance.

    ``last_digit``: every other number may also differ by one unit in its last printed digit, as a float32
    result rounded near a boundary does on another CPU (for the chapters that train); a larger change fails.
    Returns None when they agree, else a one-line description of the first difference.
    """
    def pieces(text):
        out, at = [], 0
        for m in VARIES.finditer(text):
            out += [("text", text[at:m.start()]), ("number", m)]
            at = m.end()
        return out + [("text", text[at:])]

    a, b = pieces(rendered), pieces(fresh)
    if [kind for kind, _ in a] != [kind for kind, _ in b]:
        return f"the outputs hold {sum(k == 'number' for k, _ in a)} and {sum(k == 'number' for k, _ in b)} numbers marked (±)"
    for (kind, x), (_, y) in zip(a, b):
        if kind == "text" and x != y:
            lines_x, lines_y = x.split("\n"), y.split("\n")
            if len(lines_x) != len(lines_y):
                return f"the outputs have {len(lines_x)} and {len(lines_y)} lines"
            for lx, ly in zip(lines_x, lines_y):
                if not _same_text(lx, ly, last_digit):
                    return f"rendered {lx.strip()!r}, now {ly.strip()!r}"
        if kind == "number":
            if x["tolerance"] != y["tolerance"] or x["percent"] != y["percent"]:
                return f"rendered {x[0]!r}, now {y[0]!r}"
            vx, vy = (float(m["value"].replace(",", "")) for m in (x, y))
            if abs(vx - vy) > float(x["tolerance"]):
                return f"rendered {x[0]!r}, now {y[0]!r}: more than ±{x['tolerance']} apart"
    return None


def tour_folder():
    """docs/tour of the source checkout this package runs from; a clear error when there is none (a wheel)."""
    folder = Path(__file__).resolve().parents[1] / "docs" / "tour"
    if not folder.is_dir():
        raise FileNotFoundError(f"the tour's chapters are in docs/tour of a source checkout of minicnn; there is none at {folder}")
    return folder


def main(argv=None):
    """``python -m minicnn.tour --out DIR [--execute] [chapters]``: the chapters as Jupyter notebooks."""
    p = argparse.ArgumentParser(prog="python -m minicnn.tour",
                                description="Write the tour's chapters as Jupyter notebooks (needs the docs extra).")
    p.add_argument("names", nargs="*", help="chapters, e.g. 03_sobel (default: all)")
    p.add_argument("--out", default="minicnn-tour", help="folder for the .ipynb files (default: minicnn-tour)")
    p.add_argument("--execute", action="store_true", help="run each notebook, so it opens with its outputs and figures")
    args = p.parse_args(argv)
    try:
        import jupytext
        from nbclient import NotebookClient
    except ImportError as e:
        print(f'python -m minicnn.tour needs the docs extra (pip install -e ".[docs]"): {e}', file=sys.stderr)
        return 2
    try:
        folder = tour_folder()
    except FileNotFoundError as e:
        print(e, file=sys.stderr)
        return 2
    sources = {p.stem: p for p in sorted(folder.glob("[0-9][0-9]_*.py"))}
    unknown = [n for n in args.names if n not in sources]
    if unknown:
        print(f"no chapter {', '.join(unknown)}; the chapters are {', '.join(sources)}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for name in args.names or list(sources):
        notebook = jupytext.read(sources[name])
        if args.execute:
            NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(out)}}).execute()
        jupytext.write(notebook, out / f"{name}.ipynb")
        print(out / f"{name}.ipynb")
    print("open them with Jupyter, e.g. pip install jupyterlab && jupyter lab " + str(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
