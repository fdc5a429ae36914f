"""minicnn weights named and laid out as PyTorch's ``nn.Sequential`` of the same layers, and the code that builds it.

Each layer's module is written from its ``config()`` (the constructor arguments,
which minicnn names as PyTorch does).  Conv2D's ``W`` is already ``(F, C, KH, KW)``, as ``nn.Conv2d.weight``; Dense
stores ``W`` as (in, out) for ``x @ W``, and ``nn.Linear.weight`` is (out, in),
so it is transposed.  Layer ``i`` of the Sequential is module ``i`` of the torch
one, so the names are ``"0.weight"``, ``"0.bias"``, ...
"""
import numpy as np

# The PyTorch module of each minicnn layer; its arguments are the layer's config(), which uses PyTorch's names.
_MODULES = {"Conv2D": "nn.Conv2d", "Dense": "nn.Linear", "BatchNorm2D": "nn.BatchNorm2d", "BatchNorm1D": "nn.BatchNorm1d",
            "MaxPool2D": "nn.MaxPool2d", "AvgPool2D": "nn.AvgPool2d", "Dropout": "nn.Dropout", "LeakyReLU": "nn.LeakyReLU",
            "ReLU": "nn.ReLU", "Tanh": "nn.Tanh", "Sigmoid": "nn.Sigmoid", "Flatten": "nn.Flatten",
            "GlobalAvgPool2D": "nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())"}
_EXTRA_ARGUMENTS = {"AvgPool2D": {"count_include_pad": True}}     # minicnn's zero padding counts in the mean
_WEIGHT_NAMES = {"W": "weight", "b": "bias", "gamma": "weight", "beta": "bias"}


def _code(layer):
    """``nn.Conv2d(in_channels=1, out_channels=16, kernel_size=(3, 3), ...)`` from the layer's config."""
    kind = type(layer).__name__
    module = _MODULES[kind]
    if module.endswith(")"):
        return module
    arguments = {**layer.config(), **_EXTRA_ARGUMENTS.get(kind, {})}
    text = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in arguments.items())
    return f"{module}({text})"


def _weights(layer):
    """{torch name: array}: W -> weight (Dense's transposed: nn.Linear stores (out, in)), b -> bias, running statistics."""
    weights = {_WEIGHT_NAMES[k]: (v.T if type(layer).__name__ == "Dense" and k == "W" else v) for k, v in layer.params.items()}
    buffers = getattr(layer, "buffers", None) or {}
    if buffers:
        # torch counts the batches only for momentum=None; minicnn's momentum is fixed
        weights.update({**buffers, "num_batches_tracked": np.array(0)})
    return weights


def _modules(model):
    for i, layer in enumerate(model.layers):
        kind = type(layer).__name__
        if kind not in _MODULES:
            raise ValueError(f"layer {i} ({kind}) has no PyTorch mapping; minicnn exports {', '.join(sorted(_MODULES))}")
        yield i, (_code(layer), _weights(layer))


def to_torch_state_dict(model):
    """``{"0.weight": array, "0.bias": array, ...}``: float32 C-contiguous NumPy arrays, as ``nn.Sequential.state_dict()`` names them."""
    state = {}
    for i, (_, weights) in _modules(model):
        for name, value in weights.items():
            dtype = np.int64 if name == "num_batches_tracked" else np.float32
            state[f"{i}.{name}"] = np.ascontiguousarray(value, dtype=dtype)
    return state


def torch_code(model, weights_file="model.safetensors"):
    """The few lines of PyTorch that build the matching ``nn.Sequential`` and load ``weights_file`` (safetensors)."""
    lines = [f"    {code},  # {i}" for i, (code, _) in _modules(model)]
    return "\n".join([
        "import torch",
        "from torch import nn",
        "from safetensors.torch import load_file",
        "",
        "model = nn.Sequential(",
        *lines,
        ")",
        f"model.load_state_dict(load_file({str(weights_file)!r}))",
        "model.eval()",
    ]) + "\n"
