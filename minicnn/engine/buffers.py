"""Buffers kept between calls, so that a training step allocates (and page-faults) nothing big.

Two kinds:

- ``scratch``: internal to a layer, reallocated only when shape or dtype change.
  Never handed to a caller.
- ``recycled``: for what a layer *returns*. The array handed out last time is
  reused only when nobody holds it any more (CPython's reference count says the
  store is its last owner; a view of it counts too, through ``.base``). An
  array you still hold is never overwritten: you get a new one instead.
"""
import sys

import numpy as np


def scratch(store, name, shape, dtype, zeros=False):
    """A reusable internal buffer ``store[name]``, reallocated only when shape or dtype change.

    With ``zeros=True`` a new buffer starts zeroed (callers then keep the parts
    they never write at zero, e.g. a padding border).  Never hand one out to a caller.
    """
    buf = store.get(name)
    if buf is None or buf.shape != tuple(shape) or buf.dtype != dtype:
        buf = store[name] = (np.zeros if zeros else np.empty)(shape, dtype)
    return buf


def scratch_like(store, name, like, dtype):
    """A reusable internal buffer shaped like ``like`` and in its memory order (``np.empty_like``)."""
    key = (like.shape, like.strides, like.dtype, np.dtype(dtype))
    entry = store.get(name)
    if entry is None or entry[0] != key:
        entry = store[name] = (key, np.empty_like(like, dtype=dtype))
    return entry[1]


def _references_when_unheld():
    """What sys.getrefcount reports, in ``_reuse_if_unheld``, for a buffer nobody outside the store holds."""
    store = {"probe": (None, np.empty(0))}
    entry = store.get("probe")
    return sys.getrefcount(entry[1])


_UNHELD = _references_when_unheld() if sys.implementation.name == "cpython" else None


def recycled_like(store, name, like, dtype=None):
    """An output buffer shaped like ``like``, in its memory order: last call's, if nobody holds it; else a new one.

    Writing a fresh multi-megabyte array costs a page fault per 4 KiB (about a
    millisecond per 3 MB), which is what this saves.
    """
    dtype = like.dtype if dtype is None else np.dtype(dtype)
    return _reuse_if_unheld(store, name, (like.shape, like.strides, like.dtype, dtype),
                            lambda: np.empty_like(like, dtype=dtype))


def recycled(store, name, shape, dtype):
    """``recycled_like`` for a C-ordered array of the given shape."""
    return _reuse_if_unheld(store, name, (tuple(shape), np.dtype(dtype)), lambda: np.empty(shape, dtype))


def _reuse_if_unheld(store, name, key, make):
    entry = store.get(name)
    if entry is not None and entry[0] == key and _UNHELD is not None and sys.getrefcount(entry[1]) == _UNHELD:
        return entry[1]
    buf = make()
    store[name] = (key, buf)
    return buf
