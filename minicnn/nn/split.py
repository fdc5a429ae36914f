"""A batch split over the engine's threads, for ``Sequential``: each part runs every layer alone on its thread.

With several engine threads (``minicnn.engine.threads``) the fast implementation
already cuts each big pass of a layer over the batch, but that costs a hand-off
to the other thread at every pass.  When every layer treats each example on its
own (``Layer.batch_separable``), the whole model can be split instead: each
thread takes a part of the batch through every layer's forward, then through
every backward, on *copies* of the layers that share the parameters and keep
their own cache and ``grads``; each gradient is then the sum of the parts', in
order.  Two hand-offs per pass instead of one per layer.

A batch norm in training looks across the batch, but only through sums (its
mean and variance, and in backward the sums of dout and dout * xhat): it splits
too (``Layer.sums_over_parts``).  Its parts then run *together*: at each such
sum they wait for each other and add their shares (``threads.sum_over_parts``),
so every part normalises by the whole batch's statistics.

The output and the input's gradient are the unsplit batch's, example by example
(with a batch norm, up to the rounding of its sums, now grouped by part; on
oneMKL, the ``mkl`` extra, up to the rounding of a product of fewer rows, which
it may sum in another order); each parameter's gradient is the same sum with its
terms grouped by part (one more rounding).  The parts are fixed by the batch size
and the thread count (``ops.batch_parts``), so one thread setting gives one result.
"""
import collections
import copy
import weakref

import numpy as np

from minicnn.nn import ops
from minicnn.nn.order import run_forward, run_order
from minicnn.nn.weights import set_grad

MAX_TEAMS = 4        # models with worker processes at once; the longest unused loses its workers to a fifth


def splits(layer):
    """Whether ``layer`` may run on a part of the batch: one of minicnn's own layers that treats each example
    alone (``batch_separable``), or whose only look across the batch is sums the parts add (``sums_over_parts``).

    A layer of your own class never splits: its forward might keep state, or look across the batch.
    """
    return type(layer).__module__.startswith("minicnn.") and (
        getattr(layer, "batch_separable", False) or getattr(layer, "sums_over_parts", False))


def _together(layers):
    """Whether the parts must add their sums to each other: some layer looks across the batch (through sums)."""
    return any(not getattr(layer, "batch_separable", False) for layer in layers)


def batch_parts(layers, x):
    """The [lo, hi) parts to split the batch ``x`` into, or None to run it whole."""
    if not isinstance(x, np.ndarray) or x.ndim == 0 or not all(splits(layer) for layer in layers):
        return None
    ranges = ops.batch_parts(len(x), in_turn=not _together(layers))   # parts that add sums must run at once
    return ranges if len(ranges) > 1 else None


class Split:
    """One split forward, kept for its backward: the parts' ranges, their copies of the layers, the output's shape."""

    def __init__(self, layers, ranges, part_grads, sums=False):
        self.layers, self.ranges = layers, ranges
        # sums False: the parts run on the engine's threads; None or a workers.HubSums / WorkerSums: they run
        # here, one after the other, as this process's share of a split over processes (ProcessSplit).
        self.sums = sums
        # part_grads[(k, i)] is the grads dict of part k's copy of layer i, kept between steps (filled in place).
        self.copies = [[self._copy(layer, part_grads.setdefault((k, i), {})) for i, layer in enumerate(layers)]
                       for k in range(len(ranges))]
        self.out_shape = None
        self.together = _together(layers)

    @staticmethod
    def _copy(layer, grads):
        part = copy.copy(layer)                 # the same params (and buffers) dicts, read only
        part.grads, part._cache = grads, None
        return part

    def forward(self, x):
        """Shape: x (N, ...) -> the last layer's output (N, ...), a new array."""
        for layer in self.layers:
            layer._forget()                     # the parts' copies keep the caches now

        def part(k, lo, hi):
            return run_forward(self.copies[k], x[lo:hi])

        out = np.concatenate(self._run(part))
        self.out_shape = out.shape
        return out

    def _run(self, part, last_first=False):
        if self.sums is False:
            return ops.run_parts(part, self.ranges, self.together, last_first)
        return ops.run_parts_here(part, self.ranges, self.sums if self.together else None, last_first)

    def backward(self, dout, walk, need_input_grad):
        """``walk(layers, dout_part, need_input_grad)`` on every part; the layers' grads become the parts' sums.

        Shape: dout like the output -> None, or dx (N, ...) like the input
        """
        if np.shape(dout) != self.out_shape:
            raise ValueError(f"Sequential.backward expected dout of the forward output's shape {self.out_shape}, "
                             f"got {np.shape(dout)}")
        # Last part first: the forward ran it last, so what its layers kept is still in the cache.
        dxs = self._run(lambda k, lo, hi: walk(self.copies[k], dout[lo:hi], need_input_grad), last_first=True)
        for i, layer in enumerate(self.layers):
            for key in layer.params:
                first, *more = [copies[i].grads[key] for copies in self.copies]
                set_grad(layer, key, first)
                for part in more:                              # the parts' sum, in order
                    np.add(layer.grads[key], part, out=layer.grads[key])
        return np.concatenate(dxs) if need_input_grad else None


# -- the split over worker processes -----------------------------------------------------------------------
#
# With worker processes (``ops.workers``, Linux) each share of the batch after the first runs in a worker: a
# copy of this process forked with the model, so only numbers travel.  The parameters and buffers go to the
# workers, and their gradients come back, through memory they share with this process (the arena: a worker's
# layers write their gradients there); the share's input through the worker's inbox, and its output and a batch
# norm's sums through the board (``ops.workers``), or as messages where there is no board.  The shares and their
# parts are those of the threads, and each gradient is the same sum of the parts', grouped by share.

_teams = weakref.WeakKeyDictionary()     # model -> (its signature, its ops.workers.Team)
_recent = collections.deque()            # weak references to the open teams, the last used last


def _signature(model):
    """What a worker copied at its fork and must still hold: the thread count, the layers and their settings,
    the shapes and dtypes of their parameters and buffers.  Their values go with every forward."""
    def arrays(d):
        return tuple((key, a.shape, a.dtype.str) for key, a in (d or {}).items())
    return (ops.engine_threads(), tuple(
        (id(layer), type(layer), layer.config() if hasattr(layer, "config") else None,
         arrays(layer.params), arrays(getattr(layer, "buffers", None))) for layer in model.layers))


def _arena_names(model, workers):
    """[(name, shape, dtype)]: each parameter and buffer once, under the model's names (``Sequential._arrays``),
    and each parameter's gradient per worker ("g<k>." before its name)."""
    specs = [(name, a.shape, a.dtype) for name, a in model._arrays().items()]
    return specs + [(f"g{k}.{name}", p.shape, p.dtype) for k in range(1, workers + 1) for name, p, _ in model.parameters()]


def team_for(model, walk):
    """The model's worker team, forked now if it has none or the model changed since; None without workers."""
    if not ops.processes() or ops.engine_threads() < 2:
        return None
    signature = _signature(model)
    held = _teams.get(model)
    if held is not None and held[0] == signature and not held[1].closed:
        team = held[1]
    else:
        if held is not None:
            held[1].close()
        while len(_recent) >= MAX_TEAMS:
            old = _recent.popleft()()
            if old is not None:
                old.close()
        team = ops.workers.Team(signature[0], _arena_names(model, signature[0] - 1),
                                lambda team, k, conn: _worker(model, walk, team, k, conn))
        _teams[model] = (signature, team)
        weakref.finalize(model, team.close)     # a model that is gone ends its workers
    for ref in list(_recent):
        if ref() is None or ref() is team:
            _recent.remove(ref)
    _recent.append(weakref.ref(team))
    return team


def _worker(model, walk, team, k, conn):
    """Worker k's handler: runs its share of each forward and backward on its copy of ``model``."""
    held, arena = {}, team.arena
    for i, layer in enumerate(model.layers):        # its gradients are written where the calling process reads them
        for key in layer.params:                    # (``set_grad`` writes in place; names as ``Sequential.parameters``)
            layer.grads[key] = arena[f"g{k}.{i}.{key}"]
    arrays_in_arena = [(a, arena[name]) for name, a in model._arrays().items()]   # this copy's, fixed since the fork

    def handle(header, arrays):
        if header["do"] == "forward":
            for a, shared in arrays_in_arena:
                np.copyto(a, shared)
            # Only the messages change this copy of the model: a split of the same ranges, engine and modes is
            # the last one again (its layer copies hold the same parameters, and each forward renews their caches).
            key = (tuple(map(tuple, header["ranges"])), header["engine"], header["together"], tuple(header["training"]))
            held["split"] = None
            if held.get("key") != key:
                held["key"], held["part"] = None, None
                for layer, flag in zip(model.layers, header["training"]):
                    layer.training = flag
                with ops.use_engine(header["engine"]):
                    sums = ops.workers.WorkerSums(team, k, conn) if header["together"] else None
                    held["part"] = Split(run_order(model.layers), list(key[0]), model._part_grads, sums)
                held["key"] = key
            part = held["part"]
            with ops.use_engine(header["engine"]):
                x = team.board.take(conn, k, 2, copy=False)[0] if header.get("inbox") else arrays[0]
                out = part.forward(x)
            held["split"] = part
            return team.answer(conn, k, [out])
        if header["do"] == "backward":
            part = held.get("split")
            if part is None:
                raise RuntimeError("backward before a forward")
            dx = part.backward(arrays[0], walk, header["need_input_grad"])   # the gradients land in the arena
            return team.answer(conn, k, [] if dx is None else [dx])
        raise ValueError(f"unknown message {header['do']!r}")
    return handle


class ProcessSplit:
    """One split forward whose first share runs here and every other in a worker of ``team``; kept for backward."""

    def __init__(self, model, layers, ranges, team):
        count = min(team.count, len(ranges))
        self.model, self.team, self.together, self.ranges = model, team, _together(layers), ranges
        self.shares = [ranges[a:b] for a, b in ops.shares_of(len(ranges), count)]   # as the threads share them
        self.layers, self.own, self.out_shape = layers, None, None
        self.sums = ops.workers.HubSums(team, count) if self.together else None

    def _bounds(self, j):
        return self.shares[j][0][0], self.shares[j][-1][1]

    def forward(self, x):
        """Shape: x (N, ...) -> the last layer's output (N, ...), a new array."""
        try:
            for name, a in self.model._arrays().items():
                np.copyto(self.team.arena[name], a)
            header = {"do": "forward", "engine": ops.current_engine(), "together": self.together,
                      "training": [bool(getattr(layer, "training", True)) for layer in self.model.layers]}
            board = self.team.board
            for j in range(1, len(self.shares)):
                lo, hi = self._bounds(j)
                # The share's input goes in the worker's inbox on the board when it fits (one copy), else on the socket.
                inbox = board is not None and board.post(self.team.conns[j - 1], j, 2, [x[lo:hi]], spill=False)
                ops.workers.send(self.team.conns[j - 1],
                                 {**header, "ranges": [[a - lo, b - lo] for a, b in self.shares[j]], "inbox": inbox},
                                 [] if inbox else [x[lo:hi]])
            self.own = Split(self.layers, self.shares[0], self.model._part_grads, self.sums)   # while the workers start
            outs = [self.own.forward(x[:self._bounds(0)[1]])]
            outs += [self.team.answer_of(j)[0] for j in range(1, len(self.shares))]
        except BaseException:
            self.team.close()            # a worker may be half way through: start again with new ones
            raise
        out = np.concatenate(outs)
        self.out_shape = out.shape
        return out

    def backward(self, dout, walk, need_input_grad):
        """Like ``Split.backward``: the layers' grads become the parts' sums (this share's, then each worker's)."""
        if np.shape(dout) != self.out_shape:
            raise ValueError(f"Sequential.backward expected dout of the forward output's shape {self.out_shape}, "
                             f"got {np.shape(dout)}")
        if self.team.closed:
            raise RuntimeError("the worker processes of this forward were ended (another model took their place, "
                               "or the thread count changed): run the forward again")
        try:
            for j in range(1, len(self.shares)):
                lo, hi = self._bounds(j)
                ops.workers.send(self.team.conns[j - 1], {"do": "backward", "need_input_grad": need_input_grad},
                                 [dout[lo:hi]])
            dxs = [self.own.backward(dout[:self._bounds(0)[1]], walk, need_input_grad)]
            dxs += [(self.team.answer_of(j) or [None])[0] for j in range(1, len(self.shares))]
        except BaseException:
            self.team.close()
            raise
        for j in range(1, len(self.shares)):
            for name, _, grad in self.model.parameters():
                np.add(grad, self.team.arena[f"g{j}.{name}"], out=grad)
        return np.concatenate(dxs) if need_input_grad else None
