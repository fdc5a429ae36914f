"""Buffers kept between calls, so that a training step allocates (and page-faults) nothing big.

The fast functions take every array they write from one pool, by a key that
names what the array is for (``"conv.xp"``), its shape, dtype and memory order,
and whatever else its contents depend on (a ``tag``, e.g. the padding of a
buffer whose zero border is kept).  A pooled array is handed out again only
when nobody else holds it: CPython's reference count says the pool is its last
owner (a view of it counts too, through ``.base``).  So

- an output you still hold is never overwritten: you get a new array instead;
- what a forward keeps for its backward lives in its cache, so it is held until
  the layer lets that cache go (at its next forward), and another layer of the
  same shape, running in between, gets a buffer of its own;
- two threads never get one buffer (the pool hands out under a lock).

The pool keeps at most ``MAX_KEYS`` keys (past that it starts afresh), so a run
that sees many shapes does not grow without bound.
"""
import sys
import threading

import numpy as np

MAX_KEYS = 512

_pool = {}                     # key -> list of arrays
_lock = threading.Lock()


def _first_unheld(arrays):
    """The first of ``arrays`` that nobody but the pool's list holds, or None."""
    for buf in arrays:
        if sys.getrefcount(buf) == _UNHELD:
            return buf
    return None


def _references_in(arrays):
    """sys.getrefcount of the first array as ``_first_unheld`` counts it (its list, the loop, the call)."""
    for buf in arrays:
        return sys.getrefcount(buf)


# What _first_unheld sees for an array only the pool's list holds (None: not CPython, nothing is reused).
_UNHELD = _references_in([np.empty(0)]) if sys.implementation.name == "cpython" else None


def _take(key, make):
    with _lock:
        arrays = _pool.get(key)
        if arrays is None:
            if len(_pool) >= MAX_KEYS:          # a run that saw very many shapes: start the pool afresh
                _pool.clear()
            arrays = _pool[key] = []
        elif _UNHELD is not None:
            buf = _first_unheld(arrays)
            if buf is not None:
                return buf
        buf = make()
        if _UNHELD is not None:
            arrays.append(buf)
        return buf


def buffer(name, shape, dtype, *, zeros=False, tag=()):
    """A C-ordered array from the pool that nobody holds, or a new one (zeroed when ``zeros``).

    With ``zeros=True`` a new buffer starts zeroed and the caller keeps the parts
    it never writes at zero (a padding border): put into ``tag`` whatever decides
    which parts those are, so that only callers that write the same parts share it.
    """
    shape, dtype = tuple(shape), np.dtype(dtype)
    return _take((name, shape, dtype, None, zeros, tag), lambda: (np.zeros if zeros else np.empty)(shape, dtype))


def buffer_like(name, like, dtype=None, *, tag=()):
    """A pooled array shaped like ``like`` and in its memory order (``np.empty_like``), in ``dtype`` (default: like's)."""
    dtype = like.dtype if dtype is None else np.dtype(dtype)
    return _take((name, like.shape, dtype, like.strides, like.dtype, tag), lambda: np.empty_like(like, dtype=dtype))


def filled(name, shape, dtype, value):
    """A pooled array of ``value`` everywhere, for reading only (e.g. a row of ones to sum with a product)."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    return _take((name, shape, dtype, "filled", value), lambda: np.full(shape, value, dtype))


def clear():
    """Let every pooled array go (the next calls allocate afresh)."""
    with _lock:
        _pool.clear()
