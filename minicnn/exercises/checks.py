"""Check a learner's exercise file against the library: ``check_file(path) -> Result``.

The file is compiled from its source and run in memory (no import, so no ``__pycache__``: nothing is written
into the learner's folder).  Each case of ``cases`` runs in float64; the first difference from ``reference``
is reported by case, index, expected and computed value, with the mistake of ``mistakes`` it equals, if any.
Backward functions are also compared with centred finite differences of the library's forward.
"""
import contextlib
import signal
import threading
import traceback
import types
from pathlib import Path
from typing import NamedTuple

import numpy as np

from minicnn.exercises import reference
from minicnn.exercises.cases import cases
from minicnn.exercises.catalog import EXERCISES
from minicnn.exercises.mistakes import MISTAKES
from minicnn.nn.gradcheck import numerical_gradient

PASSED, WRONG, UNUSABLE = 0, 1, 2          # the exit codes of ``minicnn exercises check``
TIME_LIMIT = 20.0                          # seconds per exercise
RTOL, ATOL = 1e-7, 1e-9
FD_CASES = {"conv2d_backward": 3, "maxpool2d_backward": 3, "relu_backward": 2, "dense_backward": 2, "softmax_cross_entropy": 2}


class Result(NamedTuple):
    name: str
    code: int          # PASSED, WRONG or UNUSABLE
    message: str       # what to tell the learner


class TimeLimit(Exception):
    pass


@contextlib.contextmanager
def _time_limit(seconds):
    """Raise TimeLimit after ``seconds`` (main thread only: elsewhere, no limit)."""
    if threading.current_thread() is not threading.main_thread() or not hasattr(signal, "setitimer"):
        yield
        return

    def stop(signum, frame):
        raise TimeLimit

    old = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def load(path):
    """The learner's module, run from source without writing bytecode; raises SyntaxError or the file's exception."""
    path = Path(path).resolve()
    module = types.ModuleType(path.stem)
    module.__file__ = str(path)
    exec(compile(path.read_text(encoding="utf-8"), str(path), "exec"), module.__dict__)
    return module


def _learner_traceback(err, path):
    """The traceback lines inside the learner's file only, and the error."""
    frames = [f for f in traceback.extract_tb(err.__traceback__) if Path(f.filename).resolve() == Path(path).resolve()]
    lines = "".join(traceback.format_list(frames)) if frames else ""
    return lines + f"{type(err).__name__}: {err}"


def _as_outputs(value, like):
    """``value`` as a tuple of float arrays shaped like ``like`` (a tuple or one output); ValueError if it is not."""
    if isinstance(like, tuple):
        if not isinstance(value, (tuple, list)) or len(value) != len(like):
            raise ValueError(f"it should return {len(like)} values (a tuple), got {type(value).__name__}"
                             + (f" of {len(value)}" if isinstance(value, (tuple, list)) else ""))
        return tuple(np.asarray(v, dtype=float) for v in value)
    return (np.asarray(value, dtype=float),)


def _first_difference(got, want, names):
    """Words for the first output that differs from ``want``, or None."""
    for g, w, name in zip(got, want, names):
        if g.shape != w.shape:
            return f"{name} has shape {g.shape}, expected {w.shape}"
        bad = ~np.isclose(g, w, rtol=RTOL, atol=ATOL)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            where = f"{name}[{', '.join(map(str, idx))}]" if idx else name
            return f"{where}: expected {w[idx]:.10g}, computed {g[idx]:.10g}"
    return None


def _same(got, want):
    return all(g.shape == w.shape and np.allclose(g, w, rtol=RTOL, atol=ATOL) for g, w in zip(got, want))


def _diagnose(name, args, got, want, like):
    """The known mistake whose output equals ``got``, or a shape diagnosis, or ''."""
    for words, wrong in MISTAKES.get(name, []):
        with contextlib.suppress(Exception):
            value = wrong(*_copy(args))
            if value is not None and _same(got, _as_outputs(value, like)):
                return words
    g, w = got[0], want[0]
    if g.ndim == w.ndim and g.shape != w.shape and g.ndim >= 2:
        off = [a - b for a, b in zip(g.shape[-2:], w.shape[-2:])]
        if all(abs(o) <= 1 for o in off) and g.shape[:-2] == w.shape[:-2]:
            return "output size off by one: H_out = (H + 2*padding - K) // stride + 1"
    return ""


def _names(name, n):
    if n == 1:
        return ("out" if not name.endswith("_backward") else "dx",)
    return {"softmax_cross_entropy": ("loss", "dlogits"), "sgd_momentum_step": ("new_param", "new_velocity")}.get(
        name, ("dx", "dW", "db"))


def _numeric_gradients(name, args, h=1e-6):
    """Centred differences of the library's forward: the true gradients the backward must give."""
    grad_of = lambda f, array: numerical_gradient(f, array, h)   # the gradient checker's own centred differences

    if name == "softmax_cross_entropy":
        logits, labels = (a.copy() for a in args)
        return (reference.softmax_cross_entropy(logits, labels)[0],
                grad_of(lambda: reference.softmax_cross_entropy(logits, labels)[0], logits))
    dout, *inputs = (a.copy() if isinstance(a, np.ndarray) else a for a in args)
    forward = getattr(reference, name.replace("_backward", "_forward"))
    loss = lambda: float(np.sum(forward(*inputs) * dout))
    n_grads = {"conv2d_backward": 3, "dense_backward": 3}.get(name, 1)
    return tuple(grad_of(loss, inputs[k]) for k in range(n_grads))


def _copy(args):
    return tuple(a.copy() if isinstance(a, np.ndarray) else a for a in args)


def check_function(name, fn, rng=None):
    """Run every case of exercise ``name`` on ``fn``: a Result (exceptions propagate to ``check_file``)."""
    rng = rng or np.random.default_rng(0)
    all_cases = cases(name, rng)
    for k, (words, args) in enumerate(all_cases, 1):
        want_raw = getattr(reference, name)(*_copy(args))
        like = want_raw if isinstance(want_raw, tuple) else None
        want = _as_outputs(want_raw, like)
        try:
            got = _as_outputs(fn(*_copy(args)), like)
        except ValueError as e:
            return Result(name, WRONG, f"case {k} of {len(all_cases)} ({words}): {e}")
        names = _names(name, len(want))
        problem = _first_difference(got, want, names)
        if problem:
            mistake = _diagnose(name, args, got, want, like)
            return Result(name, WRONG, f"case {k} of {len(all_cases)} ({words}): {problem}"
                          + (f"\n  looks like: {mistake}" if mistake else ""))
        if k <= FD_CASES.get(name, 0) and "ties" not in words:   # a tie has no derivative
            numeric = _numeric_gradients(name, _copy(args))
            numeric = numeric if len(numeric) == len(got) else numeric + got[len(numeric):]
            for g, n, label in zip(got, numeric, names):
                n = np.asarray(n, dtype=float)
                if not np.allclose(g, n, rtol=1e-5, atol=1e-6):
                    idx = tuple(int(i) for i in np.argwhere(~np.isclose(g, n, rtol=1e-5, atol=1e-6))[0])
                    return Result(name, WRONG, f"case {k} ({words}): {label}{list(idx)} is {g[idx]:.8g} but centred "
                                  f"finite differences give {n[idx]:.8g}")
    return Result(name, PASSED, f"passed {len(all_cases)} cases" + (
        ", and centred finite differences" if name in FD_CASES else ""))


def check_file(path, time_limit=TIME_LIMIT):
    """Check the exercise named by the file (``conv2d_forward.py`` -> ``conv2d_forward``): a Result."""
    path = Path(path)
    name = path.stem
    if name not in EXERCISES:
        return Result(name, UNUSABLE, f"{path.name} is no exercise; the exercises are {', '.join(EXERCISES)}")
    try:
        module = load(path)
    except SyntaxError as e:
        return Result(name, UNUSABLE, f"{path} line {e.lineno}: syntax error: {e.msg}")
    except Exception as e:  # noqa: BLE001 - any error of the learner's file is reported, not raised
        return Result(name, UNUSABLE, f"{path} fails when loaded:\n{_learner_traceback(e, path)}")
    fn = getattr(module, name, None)
    if not callable(fn):
        return Result(name, UNUSABLE, f"{path} has no function {name}({EXERCISES[name].params})")
    try:
        with _time_limit(time_limit):
            return check_function(name, fn)
    except TimeLimit:
        return Result(name, UNUSABLE, f"{name} took over {time_limit:g} s (the limit per exercise): loops over "
                      "5 images of 28x28 may take a while; the check uses small images first, so a loop may be stuck")
    except NotImplementedError:
        return Result(name, UNUSABLE, f"{name} is not written yet (it raises NotImplementedError)")
    except Exception as e:  # noqa: BLE001
        return Result(name, UNUSABLE, f"{name} raised an exception:\n{_learner_traceback(e, path)}")
