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
  bytes go as they are (never a pickle); small arrays in one frame with the header.
- The *arena*: memory shared with every worker, mapped before the fork, that
  the caller splits into named arrays (a model's parameters and gradients), so
  the big arrays of every step need no message.
- Sums over the parts (``HubSums``, ``WorkerSums``): the parts of a batch norm
  add their shares of its statistics through the calling process, in part
  order, so every part gets the same numbers (``threads.sum_over_parts``).  On
  x86-64 the shares and totals go through a *board* of shared memory, mapped
  before the fork too (``_Board``): a sum is a handful of memory writes and a
  poll, where a socket's round trip took about 130 us in a training step.
  A worker's answer (``Team.answer``: a share's logits, its dx) goes on the
  board the same way, and the caller may leave a share's input in the
  worker's inbox on the board (its message then carries the header alone).

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
import platform
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
BOARD_SLOT = 1 << 16        # bytes of each slot of the shared board for sums and answers (``_Board``)
INBOX_BYTES = 1 << 24       # bytes of each worker's inbox on the board, for a share's input (memory only where used)
_board = platform.machine().lower() in ("x86_64", "amd64")   # stores seen in order: sums go through the board
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


def _pack(header, arrays):
    """One frame of ``header`` and ``arrays``: a marker byte, the JSON header's length, the header, each array's bytes
    (every array 16-byte aligned, like NumPy's own)."""
    arrays = [np.asarray(a, order="C") for a in arrays]       # (ascontiguousarray would make a 0-d array 1-d)
    head = json.dumps({**header, "arrays": [[a.dtype.str, list(a.shape)] for a in arrays]}).encode()
    head += b" " * (-(5 + len(head)) % 16)
    parts = [_PACKED, len(head).to_bytes(4, "little"), head]
    for a in arrays:
        parts += [a.tobytes(), bytes(-a.nbytes % 16)]
    return b"".join(parts)


def _unpack(frame):
    """(header, [arrays]) of a ``_pack`` frame (a bytearray: the arrays are writable views of it)."""
    offset = 5 + int.from_bytes(frame[1:5], "little")
    header = json.loads(frame[5:offset])
    arrays = []
    for dtype, shape in header.pop("arrays"):
        dtype = np.dtype(dtype)
        count = math.prod(shape)
        arrays.append(np.frombuffer(frame, dtype=dtype, count=count, offset=offset).reshape(shape))
        offset += count * dtype.itemsize + (-count * dtype.itemsize % 16)
    if "error" in header:
        raise WorkerError(header["error"])
    return header, arrays


def send(conn, header, arrays=()):
    """Send a JSON ``header`` and ``arrays`` (their dtype and shape go in the header; their bytes as they are).

    Arrays of at most ``PACKED_BYTES`` in all go in one frame with the header (a share's logits): one write
    and one read each way instead of one per array.  Bigger ones go in a frame each, uncopied.
    """
    arrays = [np.asarray(a, order="C") for a in arrays]
    if sum(a.nbytes for a in arrays) <= PACKED_BYTES:
        conn.send_bytes(_pack(header, arrays))
        return
    conn.send_bytes(json.dumps({**header, "arrays": [[a.dtype.str, list(a.shape)] for a in arrays]}).encode())
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
    if frame[:1] == _PACKED:                     # the header and every array's bytes in this one frame
        return _unpack(bytearray(frame))
    header = json.loads(frame)
    arrays = []
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


class _Board:
    """Shared memory for a batch norm's sums, made before the fork: worker k posts its shares in slot (k, 0) and
    the calling process the totals in slot (k, 1).  Worker k's answers go in slot (k, 0) too, and the input of
    its share in its inbox, slot (k, 2), of ``INBOX_BYTES``.

    A slot holds a count of posts, a flag, a table of the arrays (dtype, ndim, shape) and their bytes, each
    16-byte aligned.  A post writes the table and the bytes, then the count; the reader polls the count (then
    watches the socket too, so that a worker's error or end is seen).  Only on x86-64, whose stores are seen in
    the order they were made.  Shares too big for a slot go through the socket (the flag says so)."""

    TABLE = 64                                   # int64 entries of a slot's table of arrays

    SIZES = (BOARD_SLOT, BOARD_SLOT, INBOX_BYTES)   # bytes of a worker's slots: shares and answers, totals, inbox

    def __init__(self, workers):
        import mmap
        self.block = np.frombuffer(mmap.mmap(-1, max(1, workers) * sum(self.SIZES)), dtype=np.uint8)
        self.seen = {}                           # (k, side) -> posts made or read so far, in this process

    def _slot(self, k, side):
        start = (k - 1) * sum(self.SIZES) + sum(self.SIZES[:side])
        head = self.block[start:start + 16].view(np.int64)                        # the count, the flag
        table = self.block[start + 64:start + 64 + 8 * self.TABLE].view(np.int64)
        return head, table, self.block[start + 64 + 8 * self.TABLE:start + self.SIZES[side]]

    def post(self, conn, k, side, arrays, spill=True):
        """Post ``arrays`` in slot (k, side); those too big for it go on the socket, or with ``spill=False`` are
        not posted at all.  Returns whether they are on the board."""
        head, table, data = self._slot(k, side)
        arrays = [np.asarray(a, order="C") for a in arrays]
        entries = [len(arrays)]
        for a in arrays:
            entries += [ord(a.dtype.char), a.ndim, *a.shape]
        fits = len(entries) <= self.TABLE and sum(a.nbytes + 16 for a in arrays) <= data.size and \
            all(a.dtype.isnative and np.dtype(a.dtype.char) == a.dtype for a in arrays)
        if not (fits or spill):
            return False
        self.seen[(k, side)] = self.seen.get((k, side), 0) + 1
        if fits:
            table[:len(entries)] = entries
            offset = 0
            for a in arrays:
                data[offset:offset + a.nbytes] = a.reshape(-1).view(np.uint8)
                offset += a.nbytes + (-a.nbytes % 16)
            head[1] = 0
            head[0] = self.seen[(k, side)]
        else:
            head[1] = 1                          # the shares follow on the socket (counted first: see take)
            head[0] = self.seen[(k, side)]
            send(conn, {"do": "sum"}, arrays)
        return fits

    def take(self, conn, k, side, copy=True):
        """The arrays of the next post in slot (k, side), new and writable (``copy=False``: views of the slot,
        good until the slot's next post)."""
        head, table, data = self._slot(k, side)
        due = self.seen.get((k, side), 0) + 1
        deadline = time.perf_counter() + SPIN
        while head[0] != due:
            if time.perf_counter() > deadline and conn.poll(1e-3) and head[0] != due:
                header, _ = recv(conn)           # a worker's error raises WorkerError, its end EOFError
                raise WorkerError(f"{header} came while a share of a sum was due")
        self.seen[(k, side)] = due
        if head[1]:
            return recv(conn)[1]
        arrays, at, offset = [], 1, 0
        for _ in range(int(table[0])):
            dtype, ndim = np.dtype(chr(table[at])), int(table[at + 1])
            shape = tuple(int(n) for n in table[at + 2:at + 2 + ndim])
            at += 2 + ndim
            nbytes = math.prod(shape) * dtype.itemsize
            view = data[offset:offset + nbytes].view(dtype).reshape(shape)
            arrays.append(view.copy() if copy else view)
            offset += nbytes + (-nbytes % 16)
        return arrays


def _close_inherited(keep):
    """In a new worker: close every file descriptor but the standard streams and ``keep``."""
    os.closerange(3, keep)
    os.closerange(keep + 1, max(keep + 2, os.sysconf("SC_OPEN_MAX") if hasattr(os, "sysconf") else 1 << 16))


def _serve(conn, handler):
    """A worker's life: answer each message with ``handler(header, arrays) -> (header, arrays)`` until the socket
    closes.  A handler that returns None has answered already (on the board: ``Team.answer``); an error always
    goes on the socket."""
    while True:
        try:
            header, arrays = recv(conn, SPIN)
        except (EOFError, OSError):
            return
        try:
            reply = handler(header, arrays)
        except BaseException as err:             # the caller decides what to do; the worker stays ready
            reply = ({"error": f"{type(err).__name__}: {err}"}, [])
        if reply is None:
            continue
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
        self.board = _Board(count - 1) if _board else None
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

    def answer(self, conn, k, arrays):
        """In worker k: the answer to the calling process's message, on the board (where the caller polls for it,
        as for a sum's totals) or else on the socket.  For a handler: ``return team.answer(conn, k, arrays)``."""
        if self.board is None:
            return {"do": "answer"}, arrays
        self.board.post(conn, k, 0, arrays)
        return None

    def answer_of(self, k, do="answer"):
        """In the calling process: worker k's ``answer`` (its arrays), or its shares of a sum (``do="sum"``), from
        the board or the socket; a worker's error, or another message on the socket, raises WorkerError."""
        conn = self.conns[k - 1]
        if self.board is not None:
            return self.board.take(conn, k, 0)
        header, arrays = recv(conn, SPIN)
        if header.get("do") != do:
            raise WorkerError(f"a worker sent {header} while its {do!r} was due")
        return arrays

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

    def __init__(self, team, count):
        self.team, self.conns = team, team.conns[:count - 1]

    def sum(self, k, shares):
        board = self.team.board
        rows = [[np.asarray(s) for s in shares]]
        for j in range(1, len(self.conns) + 1):
            others = self.team.answer_of(j, "sum")
            if len(others) != len(shares):
                raise WorkerError(f"a worker sent {len(others)} arrays while its {len(shares)} shares of a sum were due")
            rows.append(others)
        totals = threads.add_in_part_order(rows)
        for j, conn in enumerate(self.conns, 1):
            if board is not None:
                board.post(conn, j, 1, totals)
            else:
                send(conn, {"do": "totals"}, totals)
        return totals


class WorkerSums:
    """Sums over the parts for a worker's part: its shares go to the calling process, the totals come back."""

    def __init__(self, team, k, conn):
        self.board, self.k, self.conn = team.board, k, conn

    def sum(self, k, shares):
        if self.board is None:
            send(self.conn, {"do": "sum"}, [np.asarray(s) for s in shares])
            header, totals = recv(self.conn, SPIN)
        else:
            self.board.post(self.conn, self.k, 0, shares)
            totals = self.board.take(self.conn, self.k, 1)
        return tuple(totals)
