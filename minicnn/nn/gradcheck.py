"""Numerical gradient checking: compare every hand-written backward with centred finite differences.

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h),   h = 1e-5, in float64

The error between an analytic gradient ``a`` and a numerical one ``b`` is

    max_i |a_i - b_i| / max(1e-8, max_i (|a_i| + |b_i|))

i.e. the largest disagreement relative to the size of the gradient as a whole.
(Dividing element by element instead makes entries whose true gradient is about
zero, such as those behind a dead ReLU, look wrong when they are right.)
A correct float64 layer scores about 1e-10; a wrong one about 1e-1.

Run ``python -m minicnn.gradcheck`` for a table over every layer type (every
class of ``minicnn.nn.LAYERS``; a layer without a case is a failed row) and two
whole small CNNs, on every implementation of ``minicnn.nn.ops``: the loops (for
the operations that have loops), the textbook math and the fast engine, and any
you registered; it exits non-zero if anything fails.
"""
import argparse

import numpy as np

from minicnn.nn import ops
from minicnn.nn.activations import LeakyReLU, ReLU, Tanh
from minicnn.nn.conv import Conv2D
from minicnn.nn.dense import Dense
from minicnn.nn.dropout import Dropout
from minicnn.nn.flatten import Flatten
from minicnn.nn.layer import LAYERS
from minicnn.nn.losses import get_loss
from minicnn.nn.model import Sequential
from minicnn.nn.normalization import BatchNorm1D, BatchNorm2D
from minicnn.nn.pooling import AvgPool2D, MaxPool2D
from minicnn.utils.cli import nonnegative_int

LAYER_TOL = 1e-7
MODEL_TOL = 1e-6


def rel_error(a, b):
    """max |a - b| / max(1e-8, max(|a| + |b|))"""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error needs arrays of the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1e-8, float(np.max(np.abs(a) + np.abs(b)))))


def numerical_gradient(f, x, h=1e-5):
    """Centred differences of the scalar function ``f()`` with respect to every element of ``x``.

    ``x`` is perturbed in place (and restored), so ``f`` must read it; it must be float64.
    """
    if x.dtype != np.float64:
        raise ValueError(f"numerical gradients need float64 arrays, got {x.dtype}")
    if not x.flags.c_contiguous:
        raise ValueError("numerical gradients perturb x in place through a flat view, so x must be C-contiguous; "
                         "pass np.ascontiguousarray(x)")
    grad = np.zeros_like(x)
    flat_x, flat_g = x.reshape(-1), grad.reshape(-1)  # views: writing flat_x writes x
    for i in range(flat_x.size):
        old = flat_x[i]
        flat_x[i] = old + h
        f_plus = f()
        flat_x[i] = old - h
        f_minus = f()
        flat_x[i] = old
        flat_g[i] = (f_plus - f_minus) / (2 * h)
    return grad


def _require_float64(named_arrays, what):
    for name, p in named_arrays:
        if p.dtype != np.float64:
            raise ValueError(f"gradient checks run in float64, but {what} parameter {name!r} is {p.dtype}; "
                             f"build it with dtype=np.float64")


def check_layer(layer, x, *, rng=None, h=1e-5):
    """Check ``dx`` and every parameter gradient of one layer.

    The layer's output is reduced to a scalar by a fixed random projection,
    ``f = sum(layer.forward(x) * R)``, so that ``backward(R)`` is its exact gradient.

    Returns
    -------
    errors : dict, ``{"dx": err, "W": err, ...}``
    """
    rng = np.random.default_rng(0) if rng is None else rng
    x = np.array(x, dtype=np.float64, order="C")
    _require_float64(layer.params.items(), type(layer).__name__)
    R = rng.standard_normal(layer.forward(x).shape)
    dx = layer.backward(R.copy())
    analytic = {"dx": dx.copy(), **{k: g.copy() for k, g in layer.grads.items()}}
    f = lambda: float(np.sum(layer.forward(x) * R))
    errors = {"dx": rel_error(analytic["dx"], numerical_gradient(f, x, h))}
    for name, param in layer.params.items():
        errors[name] = rel_error(analytic[name], numerical_gradient(f, param, h))
    return errors


def check_model(model, x, y, *, loss="cross_entropy", h=1e-5):
    """Check the gradient of the loss with respect to the input and every parameter of a model.

    Returns ``{"dx": err, "0.W": err, "0.b": err, ...}``.
    """
    loss_fn = get_loss(loss)
    x = np.array(x, dtype=np.float64, order="C")
    _require_float64(((n, p) for n, p, _ in model.parameters()), "model")
    _, dout = loss_fn(model.forward(x), y)
    dx = model.backward(dout, need_input_grad=True)
    analytic = {"dx": dx.copy(), **{n: g.copy() for n, _, g in model.parameters()}}
    f = lambda: loss_fn(model.forward(x), y)[0]
    errors = {"dx": rel_error(analytic["dx"], numerical_gradient(f, x, h))}
    for name, param, _ in model.parameters():
        errors[name] = rel_error(analytic[name], numerical_gradient(f, param, h))
    return errors


def distinct_values(shape, rng, spacing=0.01):
    """An array whose entries are all at least ``spacing`` apart and away from 0: no max-pool ties, no ReLU kinks."""
    n = int(np.prod(shape))
    values = (rng.permutation(n) - n / 2 + 0.5) * spacing
    return values.reshape(shape)


def small_cnn(rng, dtype=np.float64, channels=1, classes=5):
    """conv-relu-pool-conv-relu-pool-flatten-dense-relu-dense, for 8x8 inputs."""
    return Sequential([
        Conv2D(channels, 3, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2D(2),
        Conv2D(3, 4, 3, padding="same", rng=rng, dtype=dtype), ReLU(), MaxPool2D(2),
        Flatten(), Dense(16, 6, rng=rng, dtype=dtype), ReLU(), Dense(6, classes, rng=rng, dtype=dtype),
    ])


class ReseededDropout(Dropout, register=False):
    """Dropout whose generator is re-seeded with ``seed`` before every forward: the same mask at every call.

    Finite differences call forward again and again; a fresh mask each time would
    make them differentiate noise.  With the mask frozen this way, dropout is a
    fixed linear map and its backward can be checked like any other layer's.
    """

    def __init__(self, p, seed):
        super().__init__(p, rng=np.random.default_rng(seed))
        self.seed = seed

    def forward(self, x):
        self.rng = np.random.default_rng(self.seed)
        return super().forward(x)


def _randomised(bn, rng, training=True):
    """A batch-norm layer with random gamma, beta and running statistics (ones and zeros hide mistakes)."""
    for p in bn.params.values():
        p[...] = rng.uniform(0.5, 1.5, p.shape) * rng.choice([-1, 1], p.shape)
    bn.buffers["running_mean"][...] = rng.standard_normal(bn.num_features)
    bn.buffers["running_var"][...] = rng.uniform(0.5, 2.0, bn.num_features)
    bn.training = training
    return bn


def small_cnn_bn_dropout(rng, dtype=np.float64, channels=1, classes=5, dropout_seed=0):
    """conv-BN-relu-pool-conv-BN-leaky-avgpool-flatten-dense-tanh-BN-dropout-dense, for 8x8 inputs, in training mode.

    The convolutions before a BatchNorm have no bias: the batch mean removes any
    constant, so that bias's gradient is exactly 0 (and a relative error of noise over 0).
    """
    return Sequential([
        Conv2D(channels, 3, 3, padding=1, bias=False, rng=rng, dtype=dtype), _randomised(BatchNorm2D(3, dtype=dtype), rng),
        ReLU(), MaxPool2D(2),
        Conv2D(3, 4, 3, padding="same", bias=False, rng=rng, dtype=dtype), _randomised(BatchNorm2D(4, dtype=dtype), rng),
        LeakyReLU(0.1), AvgPool2D(2),
        Flatten(), Dense(16, 6, rng=rng, dtype=dtype), Tanh(), _randomised(BatchNorm1D(6, dtype=dtype), rng),
        ReseededDropout(0.3, dropout_seed), Dense(6, classes, rng=rng, dtype=dtype),
    ])


# (description, layer type, config, input: "normal", "distinct" (away from kinks and ties), or a scale of normal values)
CASES = [
    ("Conv2D 3->2 k3 s1 p1", "Conv2D", dict(in_channels=3, out_channels=2, kernel_size=3, padding=1), (2, 3, 5, 6), "normal"),
    ("Conv2D 2->3 k(2,3) s2 p(1,0)", "Conv2D", dict(in_channels=2, out_channels=3, kernel_size=(2, 3), stride=2,
                                                      padding=(1, 0)), (3, 2, 7, 6), "normal"),
    ("Conv2D 1->2 k4 same", "Conv2D", dict(in_channels=1, out_channels=2, kernel_size=4, padding="same"), (2, 1, 5, 4),
     "normal"),
    ("Conv2D 2->2 k3 s(3,2) nobias", "Conv2D", dict(in_channels=2, out_channels=2, kernel_size=3, stride=(3, 2), bias=False),
     (2, 2, 8, 7), "normal"),
    ("ReLU", "ReLU", {}, (3, 2, 4, 5), "distinct"),
    ("MaxPool2D k2", "MaxPool2D", dict(kernel_size=2), (2, 3, 6, 4), "distinct"),
    ("MaxPool2D k3 s2 (overlap)", "MaxPool2D", dict(kernel_size=3, stride=2), (2, 2, 7, 6), "distinct"),
    ("MaxPool2D k(2,3) s(1,2)", "MaxPool2D", dict(kernel_size=(2, 3), stride=(1, 2)), (1, 2, 5, 7), "distinct"),
    ("Flatten", "Flatten", {}, (3, 2, 3, 4), "normal"),
    ("Dense 7->5", "Dense", dict(in_features=7, out_features=5), (4, 7), "normal"),
    ("BatchNorm2D 3 (training)", "BatchNorm2D", dict(num_features=3), (3, 3, 4, 5), "normal"),
    ("BatchNorm2D 2 (eval)", "BatchNorm2D", dict(num_features=2), (2, 2, 3, 5), "eval"),
    ("BatchNorm2D 3 affine=False", "BatchNorm2D", dict(num_features=3, affine=False), (2, 3, 3, 4), "normal"),
    ("BatchNorm1D 5 (training)", "BatchNorm1D", dict(num_features=5), (6, 5), "normal"),
    ("BatchNorm1D 4 (eval)", "BatchNorm1D", dict(num_features=4), (3, 4), "eval"),
    ("BatchNorm1D 4 affine=False", "BatchNorm1D", dict(num_features=4, affine=False), (5, 4), "normal"),
    ("Dropout p=0.4 (mask frozen)", "Dropout", dict(p=0.4), (4, 3, 2, 5), "normal"),
    ("AvgPool2D k2", "AvgPool2D", dict(kernel_size=2), (2, 3, 6, 4), "normal"),
    ("AvgPool2D k3 s2 p1", "AvgPool2D", dict(kernel_size=3, stride=2, padding=1), (2, 2, 7, 6), "normal"),
    ("AvgPool2D k(2,3) s(1,2) p(1,1)", "AvgPool2D", dict(kernel_size=(2, 3), stride=(1, 2), padding=(1, 1)), (1, 2, 5, 7),
     "normal"),
    ("GlobalAvgPool2D", "GlobalAvgPool2D", {}, (3, 4, 3, 5), "normal"),
    ("LeakyReLU 0.1", "LeakyReLU", dict(negative_slope=0.1), (3, 2, 4, 5), "distinct"),
    ("Tanh", "Tanh", {}, (3, 2, 4, 5), "normal"),
    ("Sigmoid", "Sigmoid", {}, (3, 2, 4, 5), "wide"),
]


def _cases(rng):
    """(description, layer, input) for every case of ``CASES``, each layer built from the class registry."""
    for desc, kind, config, shape, values in CASES:
        if kind == "Dropout":                       # a fresh mask at every call would differentiate noise
            layer = ReseededDropout(config["p"], 3)
        else:
            layer = LAYERS[kind].from_config({k: list(v) if isinstance(v, tuple) else v for k, v in config.items()},
                                             rng=rng, dtype=np.float64)
        if kind.startswith("BatchNorm"):
            layer = _randomised(layer, rng, training=values != "eval")
        if values == "distinct":
            x = distinct_values(shape, rng, 0.1 if kind.endswith("ReLU") else 0.01)
        else:
            x = (3 if values == "wide" else 1) * rng.standard_normal(shape)
        yield desc, layer, x


def uncovered_layers():
    """The classes of ``LAYERS`` that no case of ``CASES`` checks (each is a failed row of the table)."""
    return sorted(set(LAYERS) - {kind for _, kind, _, _, _ in CASES})


SLOW = ("loops",)        # implementations whose whole-network checks take half a minute: left out unless asked


def run_all(rng=None, engines=None, slow_models=False):
    """Every check of the table, on each implementation: a list of (what, tensor, error, tolerance).

    Each implementation sees the same layers and inputs (the generator is re-seeded from ``rng``
    once per implementation).  A layer whose operation an implementation lacks is checked on the
    one that runs it instead, so it is left out of that implementation's rows (``ops.plan``).
    The two small networks run on every implementation but those of ``SLOW`` (unless ``slow_models``),
    whose layers are checked one by one.
    """
    seed = (np.random.default_rng(0) if rng is None else rng).integers(2**32)
    rows = [(f"{name} (no case in CASES)", "-", float("inf"), LAYER_TOL) for name in uncovered_layers()]
    for engine in engines or ops.implementations():
        rng = np.random.default_rng(seed)
        with ops.use_engine(engine):
            for desc, layer, x in _cases(rng):
                if ops.resolve(layer.op) != engine:
                    continue
                rows += [(f"{desc} [{engine}]", name, err, LAYER_TOL)
                         for name, err in check_layer(layer, x, rng=rng).items()]
            models = (("small CNN + cross-entropy", small_cnn), ("CNN + BatchNorm + Dropout", small_cnn_bn_dropout))
            for desc, make in models if slow_models or engine not in SLOW else ():
                model = make(rng)
                x, y = rng.standard_normal((4, 1, 8, 8)), rng.integers(0, 5, size=4)
                rows += [(f"{desc} [{ops.describe(tuple({layer.op for layer in model.layers}))}]", name, err, MODEL_TOL)
                         for name, err in check_model(model, x, y).items()]
    return rows


def main(argv=None):
    """Print the table; returns 1 if any check fails, else 0."""
    p = argparse.ArgumentParser(prog="python -m minicnn.gradcheck", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seed", type=nonnegative_int, default=0, help="seed of the random inputs and weights (default: 0)")
    p.add_argument("--engines", default=",".join(ops.implementations()),
                   help=f"comma-separated implementations to check (default: all, {','.join(ops.implementations())})")
    p.add_argument("--slow-models", action="store_true",
                   help=f"also check the whole networks on {', '.join(SLOW)} (half a minute; default: layers only there)")
    args = p.parse_args(argv)
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]
    unknown = [e for e in engines if e not in ops.implementations()]
    if unknown or not engines:
        p.error(f"--engines takes names of {', '.join(ops.implementations())}, got {args.engines!r}")
    rows = run_all(np.random.default_rng(args.seed), engines, args.slow_models)
    width, tw = max(len(r[0]) for r in rows), max(6, max(len(r[1]) for r in rows))
    print(f"{'layer':<{width}}  {'tensor':<{tw}}  {'max rel error':>13}  result")
    print("-" * (width + tw + 26))
    failed = 0
    for desc, name, err, tol in rows:
        ok = err < tol
        failed += not ok
        print(f"{desc:<{width}}  {name:<{tw}}  {err:>13.2e}  {'pass' if ok else f'FAIL (>= {tol:g})'}")
    print("-" * (width + tw + 26))
    worst = max(rows, key=lambda r: r[2] / r[3])
    print(f"{len(rows) - failed} passed, {failed} failed; largest error {worst[2]:.2e} ({worst[0]}, {worst[1]})")
    return 1 if failed else 0
