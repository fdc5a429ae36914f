"""The batch split between threads: NumPy's loops and BLAS let go of the GIL, so the parts of one pass run at once.

One training step is a few dozen passes (products, element-wise passes, copies),
each over the whole batch.  With ``threads() == T > 1`` the engine cuts the big
element-wise passes into T parts along their first axis and runs them on a pool
of T workers (the calling thread takes the first part); the convolution shares
out its blocks of rows the same way, and every other product is cut by the rows
of its result (``minicnn.engine.blas.gemm``).  Inside a split, BLAS runs on one
thread (``cblas.single_threaded_blas``), and a part never splits again.  The parts
are fixed by the shapes and T, so one thread setting gives one result.

Why the engine splits and BLAS does not: an idle OpenBLAS thread spins for
2**28 cycles (about 0.1 s) after every product it shared in before it sleeps,
and NumPy's OpenBLAS reads how long only once, from ``OPENBLAS_THREAD_TIMEOUT``
when NumPy is imported.  Had BLAS shared out the products, its idle threads
would hold the second core through the element-wise passes of every step.  With
every product of the engine on one BLAS thread, the BLAS threads never wake and
sleep, whatever the environment, so a plain script gets the same split as
``minicnn train``.

A model whose every layer treats each example on its own goes further
(``minicnn.nn.model.Sequential``): ``batch_parts`` cuts its batch into
``threads()`` parts of at least ``MIN_EXAMPLES`` examples and ``run_batch_parts``
runs each part's whole forward (then backward) on one thread, so a step makes
two hand-offs instead of one per pass.

``threads()`` starts as the number of threads NumPy's OpenBLAS was given
(``OPENBLAS_NUM_THREADS``, else the cores), or 1 where NumPy's OpenBLAS is not
found; ``set_threads(n)`` changes it.  Passes smaller than ``MIN_PART`` numbers
per part run whole on the calling thread.
"""
import contextlib
import contextvars
import os
import pathlib
import threading
from concurrent.futures import ThreadPoolExecutor

from minicnn.engine import cblas

MIN_PART = 1 << 15              # numbers per part below which a split costs more than it saves
MIN_EXAMPLES = 16               # examples per part below which a model does not split its batch (``batch_parts``)
# Examples per part above which a thread's share of a model's batch is cut again, into parts it runs in turn:
# a part's activations then stay in the cache from one layer to the next, and its backward, run last part
# first (``run_batch_parts(..., last_first=True)``), finds what its forward kept still in the cache.  With the
# parts' backwards run in order instead, the seventh round found parts of 128 no faster than the whole batch
# and set 256; run last first, REF-CNN's step at batch 256 on one thread takes 0.92x-0.95x its time whole
# (docs/performance.md, tenth round).
MAX_EXAMPLES = 128


def default_threads():
    """NumPy's OpenBLAS thread count (``OPENBLAS_NUM_THREADS`` or the cores), or 1 without that library."""
    return cblas.blas_threads()


_lock = threading.Lock()
_threads = default_threads()
_pool = None
_local = threading.local()     # .in_part: this thread is running one part of a split


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


def _forget_pool_after_fork():
    """A forked child has none of the parent's threads: it starts its own pool when it first splits."""
    global _pool, _lock
    _pool, _lock = None, threading.Lock()


os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _get_pool():
    global _pool
    with _lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=_threads, thread_name_prefix="minicnn-engine")
        return _pool


def in_part():
    """Whether the calling thread is running one part of a split (a part never splits again)."""
    return getattr(_local, "in_part", False)


def parts(n, size_per_row=1, min_part=None):
    """The [lo, hi) ranges that cut ``range(n)`` into ``threads()`` parts, or fewer if they would be smaller
    than ``min_part`` (default ``MIN_PART``) in all.  Inside a part, always one part.
    """
    count = 1 if in_part() else max(1, min(_threads, n, (n * size_per_row) // (min_part or MIN_PART)))
    bounds = [n * i // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def _as_part(fn, lo, hi, beside=False):
    """``fn(lo, hi)`` as a part; ``beside``: other threads of this process run parts at the same time."""
    outer = in_part(), getattr(_local, "beside", False)
    _local.in_part, _local.beside = True, beside or outer[1]
    try:
        return fn(lo, hi)
    finally:
        _local.in_part, _local.beside = outer


def run(fn, ranges):
    """``fn(lo, hi)`` for every range, on the pool when there are several; returns their results in order."""
    if len(ranges) == 1:
        return [fn(*ranges[0])]
    pool = _get_pool()
    futures = [pool.submit(_as_part, fn, lo, hi, True) for lo, hi in ranges[1:]]
    first = _as_part(fn, *ranges[0], True)        # the calling thread takes the first part itself
    return [first] + [f.result() for f in futures]


def _size_bytes(text):
    """Bytes of a cache size as Linux's sysfs writes it: "2048K" -> 2097152, "1M", "512" (bytes)."""
    text = text.strip().upper()
    scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
    return int(text[:-1] if scale > 1 else text) * scale


def level2_cache_bytes(cpu_dir="/sys/devices/system/cpu/cpu0/cache"):
    """The size of one core's level-2 cache in bytes, from Linux's sysfs; None where it cannot be read."""
    try:
        for entry in sorted(pathlib.Path(cpu_dir).glob("index*")):
            level, kind = (entry / "level").read_text().strip(), (entry / "type").read_text().strip()
            if level == "2" and kind in ("Unified", "Data"):
                return _size_bytes((entry / "size").read_text())
    except (OSError, ValueError):
        pass
    return None


# Numbers of input per chunk of images: a pass's later calls on a chunk read what its first one left in L2.
# 512 KiB of float32, or half of a bigger L2 (2 MiB on a Sapphire Rapids core: 256 Ki numbers, 1 MiB, made
# BN-CNN's step at batch 64 on one thread 2% faster than 512 KiB; docs/performance.md, eighth round).
CHUNK_NUMBERS = max(1 << 17, (level2_cache_bytes() or 0) // 8)
# In a part that another thread of this process runs beside, every NumPy call gives the GIL back and takes it
# again (waking through the OS when the other thread holds it): there, fewer and longer calls pay more.  Not
# in parts that one thread runs in turn, nor beside worker processes: REF-CNN's step at batch 256 on one
# thread, in parts of 128, took 0.98x the time with CHUNK_NUMBERS there as with this (tenth round).
CHUNK_NUMBERS_IN_PART = max(1 << 19, 2 * CHUNK_NUMBERS)


def chunk_images(numbers_per_image):
    """How many images ``in_chunks`` puts in a chunk, here (in a part beside other threads, or not)."""
    crowded = getattr(_local, "beside", False)
    return max(1, (CHUNK_NUMBERS_IN_PART if crowded else CHUNK_NUMBERS) // max(1, numbers_per_image))


def in_chunks(fn, lo, hi, numbers_per_image):
    """``fn(a, b)`` over chunks of the images lo:hi that fit in the cache; replaces one call ``fn(lo, hi)``.

    For passes that go over the same images several times (a pooling window's slices, a mask then an
    output): each chunk's later passes read what its first one left in the cache.
    """
    step = chunk_images(numbers_per_image)
    for a in range(lo, hi, step):
        fn(a, min(hi, a + step))


def over_rows(fn, n, size_per_row=1):
    """``fn(lo, hi)`` over ``threads()`` parts of ``range(n)``; replaces one call ``fn(0, n)``."""
    return run(fn, parts(n, size_per_row))


def batch_parts(n, in_turn=True):
    """The [lo, hi) parts a model splits a batch of ``n`` examples into, in order.

    One share per thread (``threads()`` shares of at least ``MIN_EXAMPLES``
    examples, or fewer; one inside a part), and with ``in_turn`` each share cut
    into the fewest equal parts of at most ``MAX_EXAMPLES`` examples, which its
    thread runs one after the other (``run_batch_parts``).  Every share is cut
    into the same number of parts.
    """
    shares = parts(n, 1, MIN_EXAMPLES)
    per_share = -(-max(hi - lo for lo, hi in shares) // MAX_EXAMPLES) if in_turn and not in_part() else 1
    count = len(shares) * per_share
    bounds = [n * i // count for i in range(count + 1)]
    return list(zip(bounds[:-1], bounds[1:]))


def add_in_part_order(rows):
    """The sums of each position over ``rows`` (one tuple of shares per part), added in part order: the same
    numbers wherever they are added (every thread of a split, or the calling process for its workers)."""
    totals = list(rows[0])
    for other in rows[1:]:
        totals = [a + b for a, b in zip(totals, other)]
    return tuple(totals)


def shares_of(count_parts, count):
    """The [first, last) runs of parts each of ``count`` threads (or processes) takes, in order."""
    return [(count_parts * j // count, count_parts * (j + 1) // count) for j in range(count)]


class _Together:
    """The parts of one batch that add their shares of a sum together (``sum_over_parts``)."""

    def __init__(self, count):
        self.barrier = threading.Barrier(count)
        # Two rows of slots, used in turn: a part that has passed the barrier of one sum and gone on to write
        # its share of the next cannot overwrite a share that a slower part is still adding up.
        self.slots = [[None] * count, [None] * count]
        self.sums_made = [0] * count

    def sum(self, k, shares):
        row = self.slots[self.sums_made[k] % 2]
        self.sums_made[k] += 1
        row[k] = shares
        self.barrier.wait()
        return add_in_part_order(row)


_together_lock = threading.Lock()    # one batch at a time whose parts wait for each other (so none waits for a worker)


def sum_over_parts(*shares):
    """Each share (an array or a number) added over the parts of the batch this thread runs a part of.

    In a part of ``run_batch_parts(..., together=True)`` every part must call it
    the same number of times; it waits for the others, then returns the sums,
    added in part order (the same numbers in every part).  Anywhere else it
    returns the shares as they are.  Returns a tuple, one sum per share.
    """
    place = getattr(_local, "together", None)
    if place is None:
        return shares
    group, k = place
    return group.sum(k, shares)


def _in_turn(run_part, first, last, last_first):
    """[run_part(k) for k in range(first, last)], run in that order or, with ``last_first``, the other way."""
    if not last_first:
        return [run_part(k) for k in range(first, last)]
    return [run_part(k) for k in range(last - 1, first - 1, -1)][::-1]


def run_parts_here(fn, ranges, sums=None, last_first=False):
    """``fn(k, lo, hi)`` for each range k, one after the other on the calling thread, as parts (nothing splits
    again, BLAS on one thread); results in order.  This process's share of a split whose other shares run in
    worker processes (``minicnn.engine.workers``).

    ``sums``: an object whose ``sum(k, shares)`` adds shares over every part of the batch (``workers.HubSums``
    or ``WorkerSums``); ``sum_over_parts`` then goes through it.  There must then be one range.
    ``last_first``: as for ``run_batch_parts``.
    """
    if sums is not None and len(ranges) != 1:
        raise ValueError(f"parts that add their sums together run at once: one per process, got {len(ranges)}")
    _local.together = None if sums is None else (sums, 0)
    try:
        with cblas.single_threaded_blas():
            return _as_part(lambda a, b: _in_turn(lambda k: fn(k, *ranges[k]), a, b, last_first), 0, len(ranges))
    finally:
        _local.together = None


def run_batch_parts(fn, ranges, together=False, last_first=False):
    """``fn(k, lo, hi)`` for each part k of a batch, on the pool, with BLAS on one thread; results in order.

    The parts are shared out in order: with P parts on T threads, thread j runs
    parts ``j*P//T`` to ``(j+1)*P//T - 1`` one after the other (the calling thread
    takes the first ones).  Each part runs in a copy of the caller's
    ``contextvars`` context (so a part sees the caller's ``use_engine``), and
    inside a part nothing splits again.  With ``together``, the parts may add
    their shares of a sum with ``sum_over_parts`` (a batch norm's statistics):
    they must then run at once, at most one per thread; one such batch runs at a
    time, and a part that fails releases the others (``threading.BrokenBarrierError``).
    ``last_first``: each thread runs its parts in turn from its last to its first (a backward: the last
    part's forward has just left its activations in the cache); the results still come in order.
    """
    if together and len(ranges) > _threads:
        raise ValueError(f"parts that add their sums together run at once: at most {_threads} (one per thread), "
                         f"got {len(ranges)}")
    if len(ranges) == 1:
        return [fn(0, *ranges[0])]
    contexts = [contextvars.copy_context() for _ in ranges]
    group = _Together(len(ranges)) if together else None
    count = min(_threads, len(ranges))
    turns = shares_of(len(ranges), count)

    def in_turn(first, last):                   # parts first..last-1, one after the other, as parts
        return _as_part(lambda a, b: _in_turn(part, a, b, last_first), first, last)

    def part(k):
        lo, hi = ranges[k]
        if group is None:
            return contexts[k].run(fn, k, lo, hi)
        _local.together = (group, k)
        try:
            return contexts[k].run(fn, k, lo, hi)
        except BaseException:
            group.barrier.abort()
            raise
        finally:
            _local.together = None

    with cblas.single_threaded_blas(), (_together_lock if together else contextlib.nullcontext()):
        return [result for results in run(in_turn, turns) for result in results]
