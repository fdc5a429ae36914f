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

from minicnn.nn.layer import LAYERS
from minicnn.nn.model import Sequential


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
    if len(channels) != 2:
        raise ValueError(f"mnist_cnn takes two channel counts, got {tuple(channels)}")
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

    With a third channel count C3, a third conv (3x3, C3, same, no bias) with its batch norm and
    ReLU works on the 7x7 maps before the dense layers: ``... pool2 ReLU  conv(3x3, C3, same) BN ReLU
    dense(hidden) ...``.

    Shape:
        x: (N, 1, 28, 28) -> (N, C1, 14, 14) -> (N, C2, 7, 7) [-> (N, C3, 7, 7)] -> logits (N, 10)
    """
    if len(channels) not in (2, 3):
        raise ValueError(f"fashion_cnn takes two or three channel counts, got {tuple(channels)}")
    c1, c2 = channels[:2]
    last = channels[-1]
    third = [{"type": "Conv2D", "in_channels": c2, "out_channels": last, "kernel_size": 3, "padding": "same",
              "bias": False},
             {"type": "BatchNorm2D", "num_features": last},
             {"type": "ReLU"}] if len(channels) == 3 else []
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
        *third,
        {"type": "Flatten"},
        {"type": "Dense", "in_features": last * 7 * 7, "out_features": hidden},
        {"type": "ReLU"},
        *head,
        {"type": "Dense", "in_features": hidden, "out_features": 10},
    ]


# The networks a training recipe can name (minicnn train --architecture).
ARCHITECTURES = {"mnist_cnn": mnist_cnn, "fashion_cnn": fashion_cnn}


def _check_spec(spec):
    if not isinstance(spec, (list, tuple)) or not spec:
        raise ValueError(f"an architecture must be a non-empty list of layer dicts, got {type(spec).__name__}")
    for i, layer in enumerate(spec):
        if not isinstance(layer, dict) or layer.get("type") not in LAYERS:
            raise ValueError(f"layer {i} of the architecture must be a dict with 'type' one of "
                             f"{sorted(LAYERS)}, got {layer!r}")
        try:
            LAYERS[layer["type"]].check_config({k: v for k, v in layer.items() if k != "type"})
        except ValueError as err:
            raise ValueError(f"layer {i} of the architecture: {err}") from None


def state_shapes(spec):
    """``{name: shape}`` of every parameter and buffer a spec declares, computed from its arguments alone.

    The names are those of ``Sequential.state_dict()`` (``"0.W"``, ``"0.b"``,
    ``"1.running_mean"``, ...).  Nothing is allocated, so a checkpoint's
    declared network can be compared with the arrays it really stores before
    any model is built.  Each layer class says its own shapes (``Layer.param_shapes``).
    ``ValueError`` for arguments the layers would refuse.
    """
    if isinstance(spec, str):
        spec = from_json(spec)
    _check_spec(spec)
    shapes = {}
    for i, layer in enumerate(spec):
        try:
            own = LAYERS[layer["type"]].param_shapes({k: v for k, v in layer.items() if k != "type"})
        except ValueError as err:
            raise ValueError(f"layer {i} ({layer['type']}) {err}") from None
        shapes.update({f"{i}.{name}": shape for name, shape in own.items()})
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
    return Sequential([LAYERS[layer["type"]].from_config({k: v for k, v in layer.items() if k != "type"}, rng=rng, dtype=dtype)
                       for layer in spec])


def model_spec(model):
    """The canonical spec of a ``Sequential`` of registered layers (inverse of ``build_model``): each layer's ``config()``."""
    spec = []
    for i, layer in enumerate(model.layers):
        kind = type(layer).__name__
        if LAYERS.get(kind) is not type(layer):
            raise ValueError(f"layer {i} is a {kind}; architectures can only describe {sorted(LAYERS)}")
        spec.append({"type": kind, **layer.config()})
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
    return " ".join(layer.describe() for layer in build_model(spec, rng=np.random.default_rng(0)).layers)
