"""Worker processes for the whole-model split: a batch's parts on other cores, each in a process of its own.

Two threads of one process slow each other down: every NumPy call gives the
interpreter's lock back and takes it again, through the OS when the other
thread holds it.  A training step is a few hundred such calls, and on two cores
two threads each running half a batch took 8.5 ms per step of REF-CNN at batch 64
where one thread alone took 5.7 ms for its half (docs/performance.md).  Two
processes have a lock each.

A ``Team`` is the calling process and ``count - 1`` workers forked from it.  A
worker is a copy of the process at the fork: it holds the same model, so only
numbers travel, never code.  It waits for a message, runs the handler it was
forked with, and sends the reply.

- Messages (``send``/``recv``): a small JSON header and a list of arrays, whose
  bytes go as they are (never a pickle).
- The *arena*: memory shared with every worker, mapped before the fork, that
  the caller splits into named arrays (a model's parameters and gradients), so
  the big arrays of every step need no message.
- Sums over the parts (``HubSums``, ``WorkerSums``): the parts of a batch norm
  add their shares of its statistics through the calling process, in part
  order, so every part gets the same numbers (``threads.sum_over_parts``).

A worker ignores SIGINT (Ctrl-C stops the caller, which then ends the team),
closes every file it inherited but its own socket and the standard streams (an
inherited client connection or listening socket stays the caller's alone),
runs BLAS on one thread, never splits again, and leaves with ``os._exit`` when
its socket closes, so it runs none of the caller's exit handlers.  ``close``
kills it.  Only on Linux (``available``): elsewhere a fork is not safe with the
BLAS libraries, and the split runs on threads.
"""
import json
import math
import os
import signal
import sys
import time
import warnings
import weakref
from multiprocessing.connection import Pipe

import numpy as np

from minicnn.engine import cblas, threads

SPIN = 2e-3                 # seconds a process polls for a message due soon before it sleeps (``recv``)
ALIGN = 64                  # bytes: each array of the arena starts on a cache line
PACKED_BYTES = 1 << 16      # arrays of at most this many bytes in all travel in one frame with their header
_PACKED = b"\x00"           # the first byte of such a frame (a JSON header starts with "{")
_enabled = sys.platform.startswith("linux") and hasattr(os, "fork")
_teams = weakref.WeakSet()  # every open team of this process (a forked child closes their sockets)


def available():
    """Whether the whole-model split may run its parts in worker processes (Linux, and not turned off)."""
    return _enabled


def set_processes(flag):
    """Run the whole-model split's parts in worker processes (True, the default on Linux) or threads (False)."""
    global _enabled
    if not isinstance(flag, bool):
        raise ValueError(f"set_processes expects True or False, got {flag!r}")
    _enabled = flag and sys.platform.startswith("linux") and hasattr(os, "fork")


class WorkerError(RuntimeError):
    """A worker failed on its part, or is gone; the message says which and why."""


def _layout(specs):
    """{name: (offset, shape, dtype)} for [(name, shape, dtype)], each array aligned; and the bytes in all."""
    places, offset = {}, 0
    for name, shape, dtype in specs:
        dtype = np.dtype(dtype)
        places[name] = (offset, tuple(shape), dtype)
        offset += -(-int(np.prod(shape, dtype=np.int64)) * dtype.itemsize // ALIGN) * ALIGN
    return places, offset


def _arena(specs):
    """{name: array} in one block of memory shared with the processes forked after it (anonymous, MAP_SHARED)."""
    import mmap
    places, nbytes = _layout(specs)
    block = np.frombuffer(mmap.mmap(-1, max(nbytes, ALIGN)), dtype=np.uint8)
    return {name: block[offset:offset + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize].view(dtype).reshape(shape)
            for name, (offset, shape, dtype) in places.items()}


def send(conn, header, arrays=()):
    """Send a JSON ``header`` and ``arrays`` (their dtype and shape go in the header; their bytes as they are).

    Arrays of at most ``PACKED_BYTES`` in all go in one frame with the header (a batch norm's sums, a share's
    logits): one write and one read each way instead of one per array.  Bigger ones go in a frame each, uncopied.
    """
    arrays = [np.asarray(a, order="C") for a in arrays]       # (ascontiguousarray would make a 0-d array 1-d)
    meta = [[a.dtype.str, list(a.shape)] for a in arrays]
    if sum(a.nbytes for a in arrays) <= PACKED_BYTES:
        head = json.dumps({**header, "arrays": meta}).encode()
        head += b" " * (-(5 + len(head)) % 16)            # every array starts 16-byte aligned, like NumPy's own
        parts = [_PACKED, len(head).to_bytes(4, "little"), head]
        for a in arrays:
            parts += [a.tobytes(), bytes(-a.nbytes % 16)]
        conn.send_bytes(b"".join(parts))
        return
    conn.send_bytes(json.dumps({**header, "arrays": meta}).encode())
    for a in arrays:
        conn.send_bytes(a.reshape(-1).view(np.uint8) if a.size else b"")


def recv(conn, spin=0.0):
    """(header, [arrays]) of one ``send``; the arrays are new and writable.  A worker's failure raises WorkerError.

    ``spin``: seconds to poll before sleeping in the OS (a sleeping core of a virtual machine may take a
    tenth of a millisecond or more to wake up, where a message due any moment takes microseconds).
    """
    if spin:
        deadline = time.perf_counter() + spin
        while not conn.poll() and time.perf_counter() < deadline:
            pass
    frame = conn.recv_bytes()
    arrays = []
    if frame[:1] == _PACKED:                     # the header and every array's bytes in this one frame
        frame = bytearray(frame)                 # (writable, for the arrays viewing it)
        offset = 5 + int.from_bytes(frame[1:5], "little")
        header = json.loads(frame[5:offset])
        for dtype, shape in header.pop("arrays"):
            dtype = np.dtype(dtype)
            count = math.prod(shape)
            arrays.append(np.frombuffer(frame, dtype=dtype, count=count, offset=offset).reshape(shape))
            offset += count * dtype.itemsize + (-count * dtype.itemsize % 16)
    else:
        header = json.loads(frame)
        for dtype, shape in header.pop("arrays"):
            dtype = np.dtype(dtype)
            data = bytearray(math.prod(shape) * dtype.itemsize)
            if data:
                conn.recv_bytes_into(data)
            else:
                conn.recv_bytes()
            arrays.append(np.frombuffer(data, dtype=dtype).reshape(shape))
    if "error" in header:
        raise WorkerError(header["error"])
    return header, arrays


def _close_inherited(keep):
    """In a new worker: close every file descriptor but the standard streams and ``keep``."""
    os.closerange(3, keep)
    os.closerange(keep + 1, max(keep + 2, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1 << 16))


def _serve(conn, handler):
    """A worker's life: answer each message with ``handler(header, arrays) -> (header, arrays)`` until the socket closes."""
    while True:
        try:
            header, arrays = recv(conn, SPIN)
        except (EOFError, OSError):
            return
        try:
            reply = handler(header, arrays)
        except BaseException as err:             # the caller decides what to do; the worker stays ready
            reply = ({"error": f"{type(err).__name__}: {err}"}, [])
        try:
            send(conn, *reply)
        except (OSError, ValueError):
            return


class Team:
    """The calling process (part 0) and ``count - 1`` workers (parts 1 ..), forked with an arena of ``specs``.

    ``make_handler(team, k, conn)`` is called in worker k after the fork, with its end
    of the socket, and returns its ``handler(header, arrays) -> (header, arrays)``;
    nothing of it stays in the caller.
    ``arena`` is {name: array} of ``specs`` [(name, shape, dtype)], the same memory in
    every process.  ``conns[k - 1]`` talks to worker k.
    """

    def __init__(self, count, specs, make_handler):
        if not available():
            raise RuntimeError("worker processes need Linux's fork (minicnn.engine.workers.available() is False)")
        self.arena = _arena(specs)
        self.conns, self.pids = [], []
        self.closed = False
        try:
            for k in range(1, count):
                self._fork(k, make_handler)
        except BaseException:
            self.close()
            raise
        _teams.add(self)
        self._finalizer = weakref.finalize(self, _end, self.conns, self.pids)   # the lists, emptied when they end

    def _fork(self, k, make_handler):
        mine, theirs = Pipe(duplex=True)
        for stream in (sys.stdout, sys.stderr):   # text the caller has not written yet stays the caller's
            if stream is not None:
                stream.flush()
        with warnings.catch_warnings():           # Python 3.12+ warns of a fork beside threads: the worker
            warnings.simplefilter("ignore", DeprecationWarning)   # runs none of them, and no lock it needs is theirs
            pid = os.fork()
        if pid == 0:                               # the worker
            code = 0
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)
                _close_inherited(theirs.fileno())
                cblas.set_blas_threads(1)
                threads.set_threads(1)
                _serve(theirs, make_handler(self, k, theirs))
            except BaseException:
                code = 1
            finally:
                os._exit(code)
        theirs.close()
        self.conns.append(mine)
        self.pids.append(pid)

    @property
    def count(self):
        return len(self.conns) + 1

    def close(self):
        """End the workers (they hold nothing to save) and close their sockets; safe to call twice."""
        self.closed = True
        finalizer = getattr(self, "_finalizer", None)
        if finalizer is not None:
            finalizer()
        else:
            _end(self.conns, self.pids)


def _end(conns, pids):
    for conn in conns:
        conn.close()
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    conns.clear()
    pids.clear()


def _close_teams_in_child():
    """A process forked from this one (a worker, or one of yours) closes its copies of every team's sockets,
    so that a worker sees its socket close when its own team ends, whoever else forked."""
    for team in list(_teams):
        for conn in team.conns:
            conn.close()
        team.conns, team.pids, team.closed = [], [], True
        team._finalizer.detach()


os.register_at_fork(after_in_child=_close_teams_in_child)


class HubSums:
    """Sums over the parts for the calling process's part (part 0): the workers' shares come in, the totals go out."""

    def __init__(self, conns):
        self.conns = conns

    def sum(self, k, shares):
        rows = [[np.asarray(s) for s in shares]]
        for conn in self.conns:
            header, others = recv(conn, SPIN)
            if header.get("do") != "sum" or len(others) != len(shares):
                raise WorkerError(f"a worker sent {header} while its share of a sum was due")
            rows.append(others)
        totals = threads.add_in_part_order(rows)
        for conn in self.conns:
            send(conn, {"do": "totals"}, totals)
        return totals


class WorkerSums:
    """Sums over the parts for a worker's part: its shares go to the calling process, the totals come back."""

    def __init__(self, conn):
        self.conn = conn

    def sum(self, k, shares):
        send(self.conn, {"do": "sum"}, [np.asarray(s) for s in shares])
        header, totals = recv(self.conn, SPIN)
        return tuple(totals)
