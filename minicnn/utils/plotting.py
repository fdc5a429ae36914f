"""Figures with matplotlib, when it is there: the two helpers every picture of minicnn is drawn with.

Pictures need the optional extra ``pip install "minicnn-numpy[plot]"`` (matplotlib);
without it ``new_figure`` returns None after saying once per process how to get
pictures, so callers simply carry on with their text.  Figures are bare
``matplotlib.figure.Figure`` objects rendered by Agg: no window, no global
pyplot state, works on machines without a display.
"""
import importlib.util
import sys

INSTALL_HINT = 'pictures need matplotlib: pip install "minicnn-numpy[plot]" (continuing with text only)'
_hint_given = False


def have_matplotlib():
    """True when matplotlib can be imported.  Tests monkeypatch this to simulate its absence."""
    return importlib.util.find_spec("matplotlib") is not None


def new_figure(**kwargs):
    """A new Agg-backed Figure (kwargs go to ``matplotlib.figure.Figure``), or None (after a one-time hint) without matplotlib."""
    global _hint_given
    if not have_matplotlib():
        if not _hint_given:
            print(f"minicnn: {INSTALL_HINT}", file=sys.stderr)
            _hint_given = True
        return None
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def text_width(text, fontsize):
    """The width in inches of one line of ``text`` at ``fontsize`` points, in matplotlib's default font."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextPath

    return TextPath((0, 0), text, size=fontsize, prop=FontProperties()).get_extents().width / 72.0


def wrap_to_width(text, width, fontsize):
    """``text`` broken into lines (at spaces) that each fit in ``width`` inches at ``fontsize``: a title never clipped."""
    lines = []
    for word in text.split():
        if lines and text_width(f"{lines[-1]} {word}", fontsize) <= width:
            lines[-1] = f"{lines[-1]} {word}"
        else:
            lines.append(word)
    return "\n".join(lines)


def save_figure(fig, path, title=None, title_size=8, dpi=120):
    """Write ``fig`` as a PNG at ``path``, under ``title`` when given; returns the path as a string."""
    if title is not None:
        fig.suptitle(title, fontsize=title_size)
    fig.savefig(path, dpi=dpi)
    return str(path)
