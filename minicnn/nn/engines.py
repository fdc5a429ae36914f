"""Which code runs the layers: the fast engine (``minicnn.engine``, the default) or the textbook math here.

    with use_engine("textbook"):      # every layer and optimizer below runs its readable NumPy version
        out = model.forward(x)

Both give the same numbers up to float rounding (the tests check it).  The
choice is per thread (a ``contextvars`` variable), and a layer's backward always
follows the engine its forward ran on.
"""
import contextlib
import contextvars

ENGINES = ("fast", "textbook")
_engine = contextvars.ContextVar("minicnn_engine", default="fast")


def current_engine():
    """``"fast"`` or ``"textbook"``."""
    return _engine.get()


@contextlib.contextmanager
def use_engine(name):
    """Run the enclosed code on the named engine, then restore the one before."""
    if name not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {name!r}")
    token = _engine.set(name)
    try:
        yield name
    finally:
        _engine.reset(token)
