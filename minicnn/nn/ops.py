"""Which code computes each operation: one table, and the only place that decides.

Every layer's math is a pair of functions with one signature (``SIGNATURES``),
and every optimizer's update is one.  Each *implementation* provides them under
the same names:

- ``"loops"``: ``minicnn.nn.reference``, one window at a time (conv, pools, batch norm);
- ``"textbook"``: ``minicnn.nn.textbook``, the vectorised NumPy math (every operation);
- ``"fast"``: ``minicnn.engine``, channels-last memory, BLAS, pooled buffers (the default);
- and any you ``register``, e.g. your own solutions to the exercises.

Where an implementation lacks an operation, its ``fallback`` (the textbook, for
all of the above) runs it; ``plan()`` says which implementation runs each one,
and ``Sequential.summary()`` shows it per layer.  A forward and its backward
go together: an implementation provides both of a pair or neither, and a
backward always runs on the implementation its forward ran on (the cache
remembers it), whatever ``use_engine`` says by then.

    with use_engine("textbook"):          # every layer and optimizer below runs minicnn/nn/textbook.py
        out = model.forward(x)

    register("mine", {"relu_forward": my_relu_forward, "relu_backward": my_relu_backward})
    with use_engine("mine"):              # ReLU on your functions, everything else on the textbook
        fit(model, ...)

The choice is per thread (a ``contextvars`` variable).  The layers call the
functions of this module (``ops.conv2d_forward(...)``); they never choose.
"""
import contextlib
import contextvars
import inspect
import types
from collections.abc import Mapping
from typing import NamedTuple

from minicnn.engine import conv, dense, elementwise, normalization, pairs, pool, threads, update, workers
from minicnn.nn import reference, textbook


def _parameters(fn):
    """``"x, W, b, stride, padding"`` or ``"param, grad, state, *, lr, ..."``: how a function is called."""
    params, text, star = inspect.signature(fn).parameters.values(), [], False
    for p in params:
        if p.kind is p.KEYWORD_ONLY and not star:
            text.append("*")
            star = True
        text.append(p.name)
    return ", ".join(text)


# Every function an implementation may provide, with the parameters it takes: those of the textbook, which has
# them all (layers call them positionally; the optimizers call the updates with these keywords after param,
# grad, state).  A new operation is a new pair of functions in minicnn/nn/textbook.py, and nothing here.
SIGNATURES = {name: _parameters(fn) for name, fn in vars(textbook).items()
              if name.endswith(("_forward", "_backward", "_update")) and not name.startswith("_") and callable(fn)}
# The units the table decides for: a layer's forward-backward pair, or one update.
OPS = tuple(dict.fromkeys(name.rsplit("_", 1)[0] if not name.endswith("_update") else name for name in SIGNATURES))
BUILT_IN = ("loops", "textbook", "fast")


def functions_of(op):
    """The function names of one op: ``("conv2d_forward", "conv2d_backward")`` or ``("sgd_update",)``."""
    return (op,) if op.endswith("_update") else (f"{op}_forward", f"{op}_backward")


class Functions(Mapping):
    """The functions of one implementation by name, looked up in their modules at every call.

    So a function replaced in its module (an edit reloaded, a test's monkeypatch) is the one that runs.
    """

    def __init__(self, parts, names):
        self._where = {}
        for part in parts:
            found = _collect(part)
            self._where.update({name: part for name in names if name in found})

    def __getitem__(self, name):
        part = self._where[name]
        return part[name] if isinstance(part, dict) else getattr(part, name)

    def __iter__(self):
        return iter(self._where)

    def __len__(self):
        return len(self._where)


class Implementation(NamedTuple):
    name: str
    functions: Functions    # function name -> callable, only names of SIGNATURES
    fallback: str           # the implementation that runs what this one lacks (None for the textbook)
    source: str             # where the functions come from, for people


class Cache(NamedTuple):
    """What a forward returns as its cache: the implementation that made it (its backward runs) and its own cache."""
    implementation: Implementation
    saved: object


_IMPLEMENTATIONS = {}
_resolved = {}                                   # (implementation name, op) -> Implementation that runs it
_engine = contextvars.ContextVar("minicnn_engine", default="fast")


def _parts(functions):
    """A dict, a module (or any object with attributes), or a list of them -> the list."""
    return list(functions) if isinstance(functions, (list, tuple)) else [functions]


def _collect(functions):
    """{name: function} from a dict, a module, any object with attributes, or a list of them."""
    merged = {}
    for part in _parts(functions):
        if isinstance(part, dict):
            merged.update(part)
        else:
            merged.update({name: getattr(part, name) for name in dir(part) if not name.startswith("_")})
    return merged


def _check_parameters(impl, name, fn):
    """The function takes the parameters of ``SIGNATURES[name]`` (positional count; the updates' keywords by name)."""
    if not callable(fn):
        raise ValueError(f"implementation {impl!r}: {name} must be a function ({SIGNATURES[name]}), got {type(fn).__name__}")
    try:
        params = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return
    expected = SIGNATURES[name]
    positional, keywords = expected.split(", *, ") if ", *, " in expected else (expected, "")
    n = len(positional.split(", "))
    kinds = inspect.Parameter
    if any(p.kind is kinds.VAR_POSITIONAL for p in params):
        return
    takes = [p for p in params if p.kind in (kinds.POSITIONAL_ONLY, kinds.POSITIONAL_OR_KEYWORD)]
    required = [p for p in takes if p.default is p.empty]
    names = {p.name for p in params}
    missing = [k for k in keywords.split(", ") if k and k not in names] if not any(
        p.kind is kinds.VAR_KEYWORD for p in params) else []
    if len(required) > n or len(takes) < n or missing:
        got = ", ".join(str(p) for p in params)
        raise ValueError(f"implementation {impl!r}: {name} must take ({expected}), got ({got})")


def register(name, functions, *, fallback="textbook", source=None):
    """Add (or replace) an implementation: any subset of the ops, in the signatures of ``SIGNATURES``.

    Parameters
    ----------
    name : str, the name ``use_engine`` will take (not one of the built-in ones)
    functions : dict, module, or a list of them; only names of ``SIGNATURES`` are used, and
        every op needs both halves (``relu_forward`` and ``relu_backward``)
    fallback : the implementation that runs the ops this one lacks (the textbook by default)
    source : a few words on where the functions come from, shown by ``describe``

    Returns ``plan(name)``: which implementation runs each op.
    """
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"an implementation needs a name like 'mine', got {name!r}")
    if name in BUILT_IN and name in _IMPLEMENTATIONS:
        raise ValueError(f"{name!r} is built in; register your functions under another name, e.g. 'mine'")
    if fallback not in _IMPLEMENTATIONS or name in _fallback_chain(fallback):
        raise ValueError(f"fallback must be one of {sorted(set(_IMPLEMENTATIONS) - {name})} that does not fall back "
                         f"on {name!r}, got {fallback!r}")
    found = _collect(functions)
    unknown = sorted(k for k in found if k.endswith(("_forward", "_backward", "_update")) and k not in SIGNATURES)
    if unknown:
        raise ValueError(f"implementation {name!r} has functions {unknown} that are no operation; "
                         f"the operations are {', '.join(SIGNATURES)}")
    chosen = {k: fn for k, fn in found.items() if k in SIGNATURES}
    for op in OPS:
        halves = [k for k in functions_of(op) if k in chosen]
        if halves and len(halves) != len(functions_of(op)):
            lacking = [k for k in functions_of(op) if k not in chosen]
            raise ValueError(f"implementation {name!r} has {halves[0]} but not {lacking[0]}: a forward and its "
                             f"backward run together, so give both (or neither, and {fallback!r} runs them)")
    for k, fn in chosen.items():
        _check_parameters(name, k, fn)
    if source is None:
        source = functions.__name__ if isinstance(functions, types.ModuleType) else "functions given to register"
    _IMPLEMENTATIONS[name] = Implementation(name, Functions(_parts(functions), chosen), fallback, source)
    _resolved.clear()
    return plan(name)


def _fallback_chain(name):
    """``name`` and the implementations it falls back on, in order (ending with the textbook)."""
    chain = []
    while name is not None:
        chain.append(name)
        name = _IMPLEMENTATIONS[name].fallback
    return chain


def unregister(name):
    """Remove an implementation added with ``register`` (the built-in ones stay)."""
    if name in BUILT_IN:
        raise ValueError(f"{name!r} is built in and cannot be removed")
    if any(impl.fallback == name for impl in _IMPLEMENTATIONS.values()):
        raise ValueError(f"{name!r} is the fallback of another implementation; remove that one first")
    _IMPLEMENTATIONS.pop(name, None)
    _resolved.clear()


def implementations():
    """The names ``use_engine`` takes, built-in ones first."""
    return tuple(_IMPLEMENTATIONS)


def _resolve(engine, op):
    impl = _resolved.get((engine, op))
    if impl is None:
        impl = _IMPLEMENTATIONS[engine]
        while not all(k in impl.functions for k in functions_of(op)):
            impl = _IMPLEMENTATIONS[impl.fallback]
        _resolved[engine, op] = impl
    return impl


def resolve(op, engine=None):
    """The name of the implementation that runs ``op`` (e.g. ``"relu"``) under ``engine`` (default: the current one)."""
    if op not in OPS:
        raise ValueError(f"unknown operation {op!r}; the operations are {', '.join(OPS)}")
    return _resolve(_check_engine(engine or current_engine()), op).name


def plan(engine=None):
    """{op: the implementation that runs it} under ``engine`` (default: the current one)."""
    return {op: resolve(op, engine) for op in OPS}


def describe(ops=OPS, engine=None):
    """One line: ``"fast"``, or ``"fast (textbook: dense, relu)"`` when some of ``ops`` fall back."""
    engine = engine or current_engine()
    fallen = {}
    for op in ops:
        runs = resolve(op, engine)
        if runs != engine:
            fallen.setdefault(runs, []).append(op)
    if not fallen:
        return engine
    return f"{engine} (" + "; ".join(f"{impl}: {', '.join(names)}" for impl, names in fallen.items()) + ")"


def _check_engine(name):
    if name not in _IMPLEMENTATIONS:
        raise ValueError(f"engine must be one of {implementations()}, got {name!r}")
    return name


def current_engine():
    """The implementation the current thread runs on: ``"fast"`` unless ``use_engine`` says otherwise."""
    return _engine.get()


@contextlib.contextmanager
def use_engine(name):
    """Run the enclosed code on the named implementation (``"loops"``, ``"textbook"``, ``"fast"`` or one you registered)."""
    token = _engine.set(_check_engine(name))
    try:
        yield name
    finally:
        _engine.reset(token)


def batch_parts(n, in_turn=True):
    """The [lo, hi) parts a model may split a batch of ``n`` examples into: a share per engine thread,
    and with ``in_turn`` each share cut into parts of at most ``threads.MAX_EXAMPLES`` that its thread runs in turn.

    One part, ``[(0, n)]``, unless the fast implementation runs and the batch is
    big enough (``minicnn.engine.threads``); the parts are fixed by ``n`` and the
    thread count, so one setting gives one result.
    """
    if _engine.get() != "fast":
        return [(0, n)]
    return threads.batch_parts(n, in_turn)


def run_parts(fn, ranges, together=False, last_first=False):
    """``fn(k, lo, hi)`` for each part k of ``batch_parts`` on the engine's threads; their results in order.

    ``together``: the parts add their shares of a batch norm's sums to each other (``Layer.sums_over_parts``).
    ``last_first``: parts that a thread runs in turn run from the last (a backward, whose last part's
    forward ran last).
    """
    return threads.run_batch_parts(fn, ranges, together, last_first)


def run_parts_here(fn, ranges, sums=None, last_first=False):
    """``fn(k, lo, hi)`` for each range k on the calling thread, one after the other, as parts of a split
    whose other parts run in worker processes; ``sums`` adds a batch norm's shares over all of them;
    ``last_first`` as for ``run_parts``."""
    return threads.run_parts_here(fn, ranges, sums, last_first)


def shares_of(count_parts, count):
    """The [first, last) runs of a split's parts that each of ``count`` threads or processes takes, in order."""
    return threads.shares_of(count_parts, count)


def processes():
    """Whether a model's split runs its other parts in worker processes (``ops.workers``, Linux) or threads."""
    return workers.available()


def engine_threads():
    """How many threads (or processes) the fast implementation shares a batch out to."""
    return threads.threads()


def _forward(op):
    name = f"{op}_forward"

    def forward(*args):
        impl = _resolve(_engine.get(), op)
        *outputs, cache = impl.functions[name](*args)
        return (*outputs, Cache(impl, cache))

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = f"``{name}({SIGNATURES[name]})`` of the implementation in use; its cache remembers which."
    return forward


def _backward(op):
    name = f"{op}_backward"

    def backward(dout, cache, *args):
        return cache.implementation.functions[name](dout, cache.saved, *args)

    backward.__name__ = backward.__qualname__ = name
    backward.__doc__ = f"``{name}({SIGNATURES[name]})`` of the implementation its forward ran on."
    return backward


def split_cache(cache):
    """The cache of an operation of two layers (``batchnorm_maxpool2d_forward``) as each layer's own cache."""
    return tuple(Cache(cache.implementation, saved) for saved in cache.saved)


def joined_cache(*caches):
    """The layers' caches as the cache of the operation of them all, or None if different implementations made them."""
    if len({id(cache.implementation) for cache in caches}) != 1:
        return None
    return Cache(caches[0].implementation, tuple(cache.saved for cache in caches))


def _update(op):
    def run(param, grad, state, **hyper):
        return _resolve(_engine.get(), op).functions[op](param, grad, state, **hyper)

    run.__name__ = run.__qualname__ = op
    run.__doc__ = f"``{op}({SIGNATURES[op]})`` of the implementation in use."
    return run


# The functions the layers and optimizers call: conv2d_forward, conv2d_backward, ..., sgd_update, ...
for _op in OPS:
    if _op.endswith("_update"):
        globals()[_op] = _update(_op)
    else:
        globals()[f"{_op}_forward"], globals()[f"{_op}_backward"] = _forward(_op), _backward(_op)

_IMPLEMENTATIONS["textbook"] = Implementation("textbook", Functions([textbook], SIGNATURES), None, "minicnn.nn.textbook")
register("loops", reference, source="minicnn.nn.reference")
register("fast", [conv, dense, pool, elementwise, normalization, pairs, update], source="minicnn.engine")
