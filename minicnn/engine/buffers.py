"""Buffers kept between calls, so that a training step allocates (and page-faults) nothing big.

The fast functions take every array they write from one pool.  A pooled array
is handed out again only when nobody else holds it: CPython's reference count
says the pool is its last owner (a view of it counts too, through ``.base``).
So

- an output you still hold is never overwritten: you get a new array instead;
- what a forward keeps for its backward lives in its cache, so it is held until
  the layer lets that cache go (at its next forward), and another layer of the
  same shape, running in between, gets a buffer of its own;
- two threads never get one buffer (the pool hands out under a lock).

Each call names what its array is for (``"conv.out"``), but an array whose
contents nobody keeps between calls is pooled by its shape, dtype and memory
order alone: arrays of one shape that live at different times share memory
(a batch norm's output, dead once the pooling after it has run, holds that
pooling's dx in backward).  A step then touches less memory, and more of it is
still in the cache when it is read again: BN-CNN at batch 256 on one thread
took about 0.88x the time of one array per name.  Of the free arrays, the one
handed out last is handed out first.  A buffer whose contents a caller keeps
(``zeros=True``: a zero border it never writes) is pooled by its name too, and
by a ``tag`` that says which parts those are.

The pool keeps at most ``MAX_KEYS`` keys (past that it starts afresh), so a run
that sees many shapes does not grow without bound.
"""
import math
import sys
import threading

import numpy as np

MAX_KEYS = 512

_pool = {}                     # key -> list of arrays, the one handed out last at the end
_layouts = {}                  # (shape, strides, dtype of like, dtype) -> the axis order np.empty_like gives
_plans = {}                    # (shape, dtype, axis order) -> (bytes, the stored shape, the axes to show it in)
_lock = threading.Lock()


def _last_unheld(arrays):
    """The last of ``arrays`` that nobody but the pool's list holds, moved to the end; or None."""
    for i in range(len(arrays) - 1, -1, -1):
        buf = arrays[i]
        if sys.getrefcount(buf) == _UNHELD:
            arrays.append(arrays.pop(i))
            return buf
    return None


def _references_in(arrays):
    """sys.getrefcount of an array as ``_last_unheld`` counts it (its list, the local name, the call)."""
    buf = arrays[0]
    return sys.getrefcount(buf)


# What _last_unheld sees for an array only the pool's list holds (None: not CPython, nothing is reused).
_UNHELD = _references_in([np.empty(0)]) if sys.implementation.name == "cpython" else None


def _take(key, make):
    with _lock:
        arrays = _pool.get(key)
        if arrays is None:
            if len(_pool) >= MAX_KEYS:          # a run that saw very many shapes: start the pool afresh
                _pool.clear()
                _layouts.clear()
                _plans.clear()
            arrays = _pool[key] = []
        elif _UNHELD is not None:
            buf = _last_unheld(arrays)
            if buf is not None:
                return buf
        buf = make()
        if _UNHELD is not None:
            arrays.append(buf)
        return buf


def _bytes(nbytes):
    """Pooled memory of ``nbytes`` bytes that nobody holds: a 1-d uint8 array, whose views hold it."""
    return _take(("bytes", nbytes), lambda: np.empty(nbytes, np.uint8))


def _axis_order(like, dtype):
    """The axes of ``np.empty_like(like, dtype=dtype)`` from the slowest in memory to the fastest, or None when
    that layout is not a C-ordered array's axes in some order (the pool then keeps such arrays by name)."""
    seen = (like.shape, like.strides, like.dtype, dtype)
    if seen in _layouts:
        return _layouts[seen]
    made = np.empty_like(like, dtype=dtype)
    order = tuple(sorted(range(made.ndim), key=lambda axis: -made.strides[axis]))
    ours = np.empty([made.shape[a] for a in order], dtype).transpose(np.argsort(order))
    fits = all(ours.strides[a] == made.strides[a] for a in range(made.ndim) if made.shape[a] > 1)
    with _lock:
        _layouts[seen] = order if fits else None
        return _layouts[seen]


def _from_bytes(shape, dtype, order=None):
    """An array of ``shape`` in pooled memory, C-ordered, or stored with its axes in ``order`` (slowest first)."""
    plan = _plans.get((shape, dtype, order))
    if plan is None:                         # worked out once per layout: a step asks for dozens of arrays
        stored = shape if order is None else tuple(shape[a] for a in order)
        axes = None if order is None else tuple(int(a) for a in np.argsort(order))
        plan = _plans[(shape, dtype, order)] = (math.prod(stored) * dtype.itemsize, stored, axes)
    nbytes, stored, axes = plan
    array = _bytes(nbytes).view(dtype).reshape(stored)
    return array if axes is None else array.transpose(axes)


def buffer(name, shape, dtype, *, zeros=False, tag=()):
    """A C-ordered array from the pool that nobody holds, or a new one (zeroed when ``zeros``).

    ``name`` says what the array is for.  Without ``zeros`` its contents are
    anything (write every number you read), and it may be memory that another
    name's array of as many bytes used before.  With ``zeros=True`` a new
    buffer starts zeroed and the caller keeps the parts it never writes at zero
    (a padding border): it is pooled by ``name``, and by ``tag``, where you put
    whatever decides which parts those are, so that only callers of that name
    that write the same parts share it.
    """
    shape, dtype = tuple(shape), np.dtype(dtype)
    if zeros or tag:
        return _take((name, shape, dtype, zeros, tag), lambda: (np.zeros if zeros else np.empty)(shape, dtype))
    return _from_bytes(shape, dtype)


def buffer_like(name, like, dtype=None, *, tag=()):
    """A pooled array shaped like ``like`` and in its memory order (``np.empty_like``), in ``dtype`` (default: like's).

    Its contents are anything, as ``buffer``'s without ``zeros`` (a ``tag`` keeps it to callers of this name with that tag).
    """
    dtype = like.dtype if dtype is None else np.dtype(dtype)
    if not tag:
        if like.flags.c_contiguous:
            return _from_bytes(like.shape, dtype)
        order = _axis_order(like, dtype)
        if order is not None:
            return _from_bytes(like.shape, dtype, order)
    return _take((name, like.shape, dtype, like.strides, like.dtype, tag), lambda: np.empty_like(like, dtype=dtype))


def filled(name, shape, dtype, value):
    """A pooled array of ``value`` everywhere, for reading only (e.g. a row of ones to sum with a product)."""
    shape, dtype = tuple(shape), np.dtype(dtype)
    return _take((name, shape, dtype, "filled", value), lambda: np.full(shape, value, dtype))


def clear():
    """Let every pooled array go (the next calls allocate afresh)."""
    with _lock:
        _pool.clear()
        _layouts.clear()
        _plans.clear()
