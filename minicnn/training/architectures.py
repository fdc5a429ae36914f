"""Networks described as plain data: a JSON list of layers <-> a ``Sequential``.

A spec is a list of dicts, one per layer, each with a ``"type"`` and the
constructor arguments of that layer, for example::

    [{"type": "Conv2D", "in_channels": 1, "out_channels": 8, "kernel_size": [3, 3],
      "stride": [1, 1], "padding": [1, 1], "bias": true},
     {"type": "ReLU"},
     {"type": "MaxPool2D", "kernel_size": [2, 2], "stride": [2, 2]},
     {"type": "Flatten"},
     {"type": "Dense", "in_features": 1568, "out_features": 10}]

Checkpoints store this JSON next to the weights, so a checkpoint says which
network it belongs to and can be refused by a different one.  ``to_json``
writes a canonical form (sorted keys, pairs as lists), so two specs describe
the same network exactly when their JSON strings are equal.
"""
import json

import numpy as np

from minicnn.nn import (
    AvgPool2D,
    BatchNorm1D,
    BatchNorm2D,
    Conv2D,
    Dense,
    Dropout,
    Flatten,
    GlobalAvgPool2D,
    LeakyReLU,
    MaxPool2D,
    ReLU,
    Sigmoid,
    Tanh,
)
from minicnn.nn.conv import same_padding
from minicnn.nn.model import Sequential
from minicnn.utils.validation import pair, positive_int

# Arguments each layer type takes in a spec (besides "type"), with their defaults (None: required, except
# a pool's stride, whose None means "the kernel size").  Dropout's generator is not part of a spec:
# build_model passes its own rng.
_BATCHNORM_ARGS = {"num_features": None, "eps": 1e-5, "momentum": 0.1, "affine": True}
LAYER_ARGS = {
    "Conv2D": {"in_channels": None, "out_channels": None, "kernel_size": None, "stride": 1, "padding": 0,
               "bias": True},
    "ReLU": {},
    "MaxPool2D": {"kernel_size": None, "stride": None},
    "Flatten": {},
    "Dense": {"in_features": None, "out_features": None},
    "BatchNorm2D": _BATCHNORM_ARGS,
    "BatchNorm1D": _BATCHNORM_ARGS,
    "Dropout": {"p": 0.5},
    "AvgPool2D": {"kernel_size": None, "stride": None, "padding": 0},
    "GlobalAvgPool2D": {},
    "LeakyReLU": {"negative_slope": 0.01},
    "Tanh": {},
    "Sigmoid": {},
}
_CLASSES = {"Conv2D": Conv2D, "ReLU": ReLU, "MaxPool2D": MaxPool2D, "Flatten": Flatten, "Dense": Dense,
            "BatchNorm2D": BatchNorm2D, "BatchNorm1D": BatchNorm1D, "Dropout": Dropout, "AvgPool2D": AvgPool2D,
            "GlobalAvgPool2D": GlobalAvgPool2D, "LeakyReLU": LeakyReLU, "Tanh": Tanh, "Sigmoid": Sigmoid}
_POOLS = ("MaxPool2D", "AvgPool2D")


def mnist_cnn(channels=(16, 32), hidden=128, kernel_size=3, dropout=0.0):
    """The default MNIST network as a spec.

    ``conv(k x k, C1, same) pool2 ReLU  conv(3x3, C2, same) pool2 ReLU  dense(hidden) ReLU  dense(10)``,
    with a ``Dropout(dropout)`` before the last dense layer when ``dropout`` > 0 (none by default).
    The first layer sees the raw image through small kernels, which is where
    edge detectors (compare them with Sobel) appear.

    Max-pooling comes before the ReLU: since ReLU never changes which value
    of a window is largest, ``ReLU(pool(x)) == pool(ReLU(x))``, with the same
    gradients, but the ReLU then runs on a quarter of the values.

    Shape:
        x: (N, 1, 28, 28) -> (N, C1, 14, 14) -> (N, C2, 7, 7) -> logits (N, 10)
    """
    c1, c2 = channels
    head = [{"type": "Dropout", "p": dropout}] if dropout else []
    return [
        {"type": "Conv2D", "in_channels": 1, "out_channels": c1, "kernel_size": kernel_size,
         "padding": "same"},
        {"type": "MaxPool2D", "kernel_size": 2},
        {"type": "ReLU"},
        {"type": "Conv2D", "in_channels": c1, "out_channels": c2, "kernel_size": 3, "padding": "same"},
        {"type": "MaxPool2D", "kernel_size": 2},
        {"type": "ReLU"},
        {"type": "Flatten"},
        {"type": "Dense", "in_features": c2 * 7 * 7, "out_features": hidden},
        {"type": "ReLU"},
        *head,
        {"type": "Dense", "in_features": hidden, "out_features": 10},
    ]


def fashion_cnn(channels=(24, 48), hidden=128, kernel_size=3, dropout=0.0):
    """The default Fashion-MNIST network as a spec: a wider ``mnist_cnn`` with batch norm.

    ``conv(k x k, C1, same) BN pool2 ReLU  conv(3x3, C2, same) BN pool2 ReLU  dense(hidden) ReLU
    [dropout(p)] dense(10)``.  The convolutions have no bias: the batch norm right after each one
    subtracts the per-channel mean, which would cancel a bias, and adds its own shift (beta).

    Max-pooling comes after the batch norm, not before: with a negative scale (gamma) the batch
    norm turns a window's largest value into its smallest, so the two do not commute; the ReLU
    still comes after the pool, as in ``mnist_cnn``, because those two do.  A Dropout layer
    before the last dense layer is there only when ``dropout`` > 0 (none by default).

    Shape:
        x: (N, 1, 28, 28) -> (N, C1, 14, 14) -> (N, C2, 7, 7) -> logits (N, 10)
    """
    c1, c2 = channels
    head = [{"type": "Dropout", "p": dropout}] if dropout else []
    return [
        {"type": "Conv2D", "in_channels": 1, "out_channels": c1, "kernel_size": kernel_size,
         "padding": "same", "bias": False},
        {"type": "BatchNorm2D", "num_features": c1},
        {"type": "MaxPool2D", "kernel_size": 2},
        {"type": "ReLU"},
        {"type": "Conv2D", "in_channels": c1, "out_channels": c2, "kernel_size": 3, "padding": "same",
         "bias": False},
        {"type": "BatchNorm2D", "num_features": c2},
        {"type": "MaxPool2D", "kernel_size": 2},
        {"type": "ReLU"},
        {"type": "Flatten"},
        {"type": "Dense", "in_features": c2 * 7 * 7, "out_features": hidden},
        {"type": "ReLU"},
        *head,
        {"type": "Dense", "in_features": hidden, "out_features": 10},
    ]


# The networks a training recipe can name (experiments/train_mnist.py --architecture).
ARCHITECTURES = {"mnist_cnn": mnist_cnn, "fashion_cnn": fashion_cnn}


def _check_spec(spec):
    if not isinstance(spec, (list, tuple)) or not spec:
        raise ValueError(f"an architecture must be a non-empty list of layer dicts, got {type(spec).__name__}")
    for i, layer in enumerate(spec):
        if not isinstance(layer, dict) or layer.get("type") not in LAYER_ARGS:
            raise ValueError(f"layer {i} of the architecture must be a dict with 'type' one of "
                             f"{sorted(LAYER_ARGS)}, got {layer!r}")
        allowed = LAYER_ARGS[layer["type"]]
        unknown = sorted(set(layer) - set(allowed) - {"type"})
        if unknown:
            raise ValueError(f"layer {i} ({layer['type']}) has unknown arguments {unknown}; "
                             f"expected some of {sorted(allowed)}")
        missing = sorted(k for k, default in allowed.items() if default is None and k not in layer
                         and not (layer["type"] in _POOLS and k == "stride"))
        if missing:
            raise ValueError(f"layer {i} ({layer['type']}) lacks required arguments {missing}")


def state_shapes(spec):
    """``{name: shape}`` of every parameter and buffer a spec declares, computed from its arguments alone.

    The names are those of ``Sequential.state_dict()`` (``"0.W"``, ``"0.b"``,
    ``"1.running_mean"``, ...).  Nothing is allocated, so a checkpoint's
    declared network can be compared with the arrays it really stores before
    any model is built.  ``ValueError`` for arguments the layers would refuse.

    Shape:
        Conv2D:      W (out_channels, in_channels, KH, KW), b (out_channels,) when bias
        Dense:       W (in_features, out_features), b (out_features,)
        BatchNorm*D: gamma, beta (num_features,) when affine; running_mean, running_var (num_features,)
    """
    if isinstance(spec, str):
        spec = from_json(spec)
    _check_spec(spec)
    shapes = {}
    for i, layer in enumerate(spec):
        kind, where = layer["type"], f"layer {i} ({layer['type']})"
        if kind == "Conv2D":
            F = positive_int(layer["out_channels"], f"{where} out_channels")
            C = positive_int(layer["in_channels"], f"{where} in_channels")
            KH, KW = pair(layer["kernel_size"], f"{where} kernel_size", 1)
            shapes[f"{i}.W"] = (F, C, KH, KW)
            if layer.get("bias", True):
                shapes[f"{i}.b"] = (F,)
        elif kind == "Dense":
            n_in = positive_int(layer["in_features"], f"{where} in_features")
            n_out = positive_int(layer["out_features"], f"{where} out_features")
            shapes[f"{i}.W"], shapes[f"{i}.b"] = (n_in, n_out), (n_out,)
        elif kind in ("BatchNorm2D", "BatchNorm1D"):
            C = positive_int(layer["num_features"], f"{where} num_features")
            names = (("gamma", "beta") if layer.get("affine", True) else ()) + ("running_mean", "running_var")
            shapes.update({f"{i}.{name}": (C,) for name in names})
    return shapes


def build_model(spec, *, rng=None, dtype=np.float32):
    """A fresh ``Sequential`` for ``spec`` (a list of layer dicts or its JSON string).

    Parameters
    ----------
    spec : list of dict or str
    rng : numpy.random.Generator, source of the initial weights (and of the Dropout masks)
    dtype : float32 by default
    """
    if isinstance(spec, str):
        spec = from_json(spec)
    _check_spec(spec)
    layers = []
    for layer in spec:
        kind = layer["type"]
        kwargs = {k: (tuple(v) if isinstance(v, list) else v) for k, v in layer.items() if k != "type"}
        if kind in ("Conv2D", "Dense"):
            kwargs.update(rng=rng, dtype=dtype)
        elif kind in ("BatchNorm2D", "BatchNorm1D"):
            kwargs.update(dtype=dtype)
        elif kind == "Dropout":
            kwargs.update(rng=rng)
        layers.append(_CLASSES[kind](**kwargs))
    return Sequential(layers)


def _padding_of(conv):
    """A Conv2D's resolved (top, bottom, left, right) padding -> an argument that rebuilds it."""
    top, bottom, left, right = conv.padding
    if top == bottom and left == right:
        return [top, left]
    if conv.padding == same_padding(conv.kernel_size) and tuple(conv.stride) == (1, 1):
        return "same"
    raise ValueError(f"Conv2D padding {conv.padding} cannot be written as an architecture argument")


def model_spec(model):
    """The canonical spec of a ``Sequential`` built from minicnn layers (inverse of ``build_model``)."""
    spec = []
    for i, layer in enumerate(model.layers):
        kind = type(layer).__name__
        if _CLASSES.get(kind) is not type(layer):
            raise ValueError(f"layer {i} is a {kind}; architectures can only describe {sorted(_CLASSES)}")
        if kind == "Conv2D":
            entry = {"in_channels": layer.in_channels, "out_channels": layer.out_channels,
                     "kernel_size": list(layer.kernel_size), "stride": list(layer.stride),
                     "padding": _padding_of(layer), "bias": "b" in layer.params}
        elif kind == "MaxPool2D":
            entry = {"kernel_size": list(layer.kernel_size), "stride": list(layer.stride)}
        elif kind == "Dense":
            entry = {"in_features": layer.in_features, "out_features": layer.out_features}
        elif kind in ("BatchNorm2D", "BatchNorm1D"):
            entry = {"num_features": layer.num_features, "eps": layer.eps, "momentum": layer.momentum,
                     "affine": layer.affine}
        elif kind == "Dropout":
            entry = {"p": layer.p}
        elif kind == "AvgPool2D":
            entry = {"kernel_size": list(layer.kernel_size), "stride": list(layer.stride), "padding": list(layer.padding)}
        elif kind == "LeakyReLU":
            entry = {"negative_slope": layer.negative_slope}
        else:
            entry = {}
        spec.append({"type": kind, **entry})
    return spec


def canonical(spec):
    """The spec as ``model_spec`` would write it: every argument present, pairs as lists."""
    if isinstance(spec, str):
        spec = from_json(spec)
    return model_spec(build_model(spec, rng=np.random.default_rng(0)))


def to_json(spec):
    """Canonical JSON text of a spec (or of a ``Sequential``): equal networks give equal strings.

    A ``Sequential``'s spec is already canonical, so no second model is built for it.
    """
    spec = model_spec(spec) if hasattr(spec, "layers") else canonical(spec)
    return json.dumps(spec, sort_keys=True, separators=(",", ":"))


def from_json(text):
    """Parse and check an architecture JSON string; returns the list of layer dicts."""
    try:
        spec = json.loads(text)
    except (TypeError, json.JSONDecodeError) as e:
        raise ValueError(f"architecture is not valid JSON: {e}") from None
    _check_spec(spec)
    return spec


def describe(spec):
    """One short line per network, e.g. ``Conv2D(1->8, 3x3) MaxPool2D(2x2) ReLU ... Dense(128->10)``."""
    parts = []
    for layer in canonical(spec):
        kind = layer["type"]
        if kind == "Conv2D":
            parts.append(f"Conv2D({layer['in_channels']}->{layer['out_channels']}, "
                         f"{layer['kernel_size'][0]}x{layer['kernel_size'][1]})")
        elif kind in _POOLS:
            parts.append(f"{kind}({layer['kernel_size'][0]}x{layer['kernel_size'][1]})")
        elif kind in ("BatchNorm2D", "BatchNorm1D"):
            parts.append(f"{kind}({layer['num_features']})")
        elif kind == "Dropout":
            parts.append(f"Dropout({layer['p']:g})")
        elif kind == "Dense":
            parts.append(f"Dense({layer['in_features']}->{layer['out_features']})")
        else:
            parts.append(kind)
    return " ".join(parts)
