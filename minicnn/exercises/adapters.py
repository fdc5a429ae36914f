"""A learner's passed exercises as the library's operations: ``use_mine(folder)`` registers them as ``"mine"``.

The exercises take the course's signatures (``conv2d_backward(dout, x, W, b, stride, padding)``); the
operations of ``minicnn.nn.ops`` take a cache (``conv2d_backward(dout, cache, need_dx)``).  Each adapter
here turns the first into the second; a call the exercise cannot take (unequal strides, padding not the
same on every side, Nesterov momentum, weight decay folded in differently) runs on the textbook instead.
"""
import numpy as np

from minicnn.exercises.checks import PASSED, check_file, load
from minicnn.nn import ops, textbook

NAME = "mine"
# op -> the exercises it needs
NEEDS = {"conv2d": ("conv2d_forward", "conv2d_backward"), "maxpool2d": ("maxpool2d_forward", "maxpool2d_backward"),
         "relu": ("relu_forward", "relu_backward"), "dense": ("dense_forward", "dense_backward"),
         "sgd_update": ("sgd_momentum_step",)}


def _symmetric(stride, padding):
    return stride[0] == stride[1] and len(set(padding)) == 1


def _conv(fwd, bwd):
    def conv2d_forward(x, W, b, stride, padding):
        if not _symmetric(stride, padding):
            out, cache = textbook.conv2d_forward(x, W, b, stride, padding)
            return out, ("textbook", cache)
        bias = b if b is not None else np.zeros(W.shape[0], x.dtype)
        out = np.asarray(fwd(x, W, bias, stride[0], padding[0]), dtype=x.dtype)
        return out, ("mine", (x, W, bias, stride[0], padding[0], b is not None))

    def conv2d_backward(dout, cache, need_dx):
        kind, saved = cache
        if kind == "textbook":
            return textbook.conv2d_backward(dout, saved, need_dx)
        x, W, b, s, p, has_bias = saved
        dx, dW, db = bwd(dout, x, W, b, s, p)
        cast = lambda a: np.asarray(a, dtype=dout.dtype)
        return (cast(dx) if need_dx else None), cast(dW), (cast(db) if has_bias else None)

    return {"conv2d_forward": conv2d_forward, "conv2d_backward": conv2d_backward}


def _maxpool(fwd, bwd):
    def maxpool2d_forward(x, kernel_size, stride):
        if kernel_size[0] != kernel_size[1] or stride[0] != stride[1]:
            out, cache = textbook.maxpool2d_forward(x, kernel_size, stride)
            return out, ("textbook", cache)
        return np.asarray(fwd(x, kernel_size[0], stride[0]), dtype=x.dtype), ("mine", (x, kernel_size[0], stride[0]))

    def maxpool2d_backward(dout, cache):
        kind, saved = cache
        if kind == "textbook":
            return textbook.maxpool2d_backward(dout, saved)
        x, size, s = saved
        return np.asarray(bwd(dout, x, size, s), dtype=dout.dtype)

    return {"maxpool2d_forward": maxpool2d_forward, "maxpool2d_backward": maxpool2d_backward}


def _relu(fwd, bwd):
    return {"relu_forward": lambda x: (np.asarray(fwd(x), dtype=x.dtype), x),
            "relu_backward": lambda dout, x: np.asarray(bwd(dout, x), dtype=dout.dtype)}


def _dense(fwd, bwd):
    def dense_backward(dout, cache, need_dx):
        x, W, b = cache
        dx, dW, db = (np.asarray(a, dtype=dout.dtype) for a in bwd(dout, x, W, b))
        return (dx if need_dx else None), dW, db

    return {"dense_forward": lambda x, W, b: (np.asarray(fwd(x, W, b), dtype=x.dtype), (x, W, b)),
            "dense_backward": dense_backward}


def _sgd(step):
    def sgd_update(param, grad, state, *, lr, momentum, nesterov, weight_decay):
        if nesterov:                                  # the exercise is PyTorch's plain momentum
            return textbook.sgd_update(param, grad, state, lr=lr, momentum=momentum, nesterov=nesterov,
                                       weight_decay=weight_decay)
        g = grad + weight_decay * param if weight_decay else grad
        velocity = state["velocity"] if momentum else np.zeros_like(param)
        new_param, new_velocity = step(param.copy(), g, velocity.copy(), lr, momentum)
        param[...] = new_param
        if momentum:
            velocity[...] = new_velocity

    return {"sgd_update": sgd_update}


ADAPT = {"conv2d": _conv, "maxpool2d": _maxpool, "relu": _relu, "dense": _dense, "sgd_update": _sgd}


def passed_functions(folder):
    """{exercise name: the learner's function} for every exercise file in ``folder`` that passes its check."""
    from minicnn.exercises.command import exercise_files
    found = {}
    for path in exercise_files(folder):
        if check_file(path).code == PASSED:
            found[path.stem] = getattr(load(path), path.stem)
    return found


def use_mine(folder, nesterov=False):
    """Register the learner's passed exercises in ``folder`` as implementation ``"mine"``.

    With ``nesterov`` (the training's optimizer), ``sgd_momentum_step`` (plain momentum) is not used.

    Returns ``(ops used, exercises passed but not used in training)``; ValueError if the folder is missing.
    """
    from pathlib import Path
    if not Path(folder).is_dir():
        raise ValueError(f"--mine expects your exercises' folder (minicnn exercises start NAME --dir {folder}), "
                         f"got {folder!r}, which is no folder")
    passed = passed_functions(folder)
    functions, used = {}, []
    for op, names in NEEDS.items():
        if all(n in passed for n in names) and not (op == "sgd_update" and nesterov):
            functions.update(ADAPT[op](*(passed[n] for n in names)))
            used.append(op)
    unused = sorted(set(passed) - {n for op in used for n in NEEDS[op]})
    ops.register(NAME, functions, fallback="textbook", source=f"your exercises in {folder}")
    return used, unused


def describe_mine(used, unused, folder):
    """The line a command prints: which functions are the learner's."""
    if not used:
        line = f"--mine {folder}: no passed pair of exercises to train with; every operation runs on the textbook"
    else:
        line = (f"--mine {folder}: your " + ", ".join(n for op in used for n in NEEDS[op])
                + " run in this network; the rest is the textbook's")
    if unused:
        line += f" (passed, but not used here: {', '.join(unused)})"
    return line
