"""The batch split between threads: NumPy's loops and BLAS let go of the GIL, so the parts of one pass run at once.

One training step is a few dozen passes (products, element-wise passes, copies),
each over the whole batch.  With ``threads() == T > 1`` the engine cuts the big
element-wise passes into T parts along their first axis and runs them on a pool
of T workers (the calling thread takes the first part); the convolution shares
out its blocks of rows the same way, with BLAS on one thread inside each
(``minicnn.engine.conv``).  The parts are fixed by the shapes and T, so one
thread setting gives one result.

An idle OpenBLAS thread spins for 2**28 cycles (about 0.1 s) after every
product before it sleeps, so by default it holds the second core through the
whole step and the engine's second thread gains little (measured on a 2-core
AMD EPYC: a REF-CNN step split over 2 threads took 1.05x the time of the
unsplit step at batch 64 and 0.97x at batch 256).  With ``OPENBLAS_THREAD_TIMEOUT=4``
in the environment *before NumPy is imported* the idle threads sleep at once,
and splitting pays (0.95x and 0.85x in the same comparison).  So ``threads()`` starts as the number of threads NumPy's
OpenBLAS was given (``OPENBLAS_NUM_THREADS`` or the cores) when that variable
is 12 or less, and as 1 otherwise, or where NumPy's OpenBLAS is not found;
``set_threads(n)`` changes it.  Passes smaller than ``MIN_PART`` numbers per
part run whole on the calling thread.
"""
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from minicnn.engine import cblas

MIN_PART = 1 << 15              # numbers per part below which a split costs more than it saves
SLEEPING_BLAS_TIMEOUT = 12      # OPENBLAS_THREAD_TIMEOUT at most this: idle BLAS threads spin 2**12 cycles at most


def _idle_blas_threads_sleep():
    """Whether OPENBLAS_THREAD_TIMEOUT tells OpenBLAS's idle threads to sleep (almost) at once."""
    value = os.environ.get("OPENBLAS_THREAD_TIMEOUT", "")
    return value.strip().isdigit() and int(value) <= SLEEPING_BLAS_TIMEOUT


def default_threads():
    """NumPy's OpenBLAS thread count if its idle threads sleep at once, else 1 (see the module docstring)."""
    return cblas.blas_threads() if cblas.BACKEND == "numpy-openblas" and _idle_blas_threads_sleep() else 1


_lock = threading.Lock()
_threads = default_threads()
_pool = None


def threads():
    """How many parts the engine splits a big pass into."""
    return _threads


def set_threads(n):
    """Split big passes into ``n`` parts on ``n`` threads (1: everything on the calling thread)."""
    global _threads, _pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_threads expects a whole number of at least 1, got {n!r}")
    with _lock:
        if _pool is not None and n != _threads:
            _pool.shutdown(wait=True)
            _pool = None
        _threads = n


def _get_pool():
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_threads, thread_name_prefix="minicnn-engine")
        return _pool


def parts(n, size_per_row=1):
    """The [lo, hi) ranges that cut ``range(n)`` into ``threads()`` parts, or one part if they would be small."""
    count = max(1, min(_threads, n, (n * size_per_row) // MIN_PART))
    bounds = [n * i // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def run(fn, ranges):
    """``fn(lo, hi)`` for every range, on the pool when there are several; returns their results in order."""
    if len(ranges) == 1:
        return [fn(*ranges[0])]
    pool = _get_pool()
    futures = [pool.submit(fn, lo, hi) for lo, hi in ranges[1:]]
    first = fn(*ranges[0])                        # the calling thread takes the first part itself
    return [first] + [f.result() for f in futures]


def over_rows(fn, n, size_per_row=1):
    """``fn(lo, hi)`` over ``threads()`` parts of ``range(n)``; replaces one call ``fn(0, n)``."""
    return run(fn, parts(n, size_per_row))
