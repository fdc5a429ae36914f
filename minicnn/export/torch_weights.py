"""minicnn weights named and laid out as PyTorch's ``nn.Sequential`` of the same layers, and the code that builds it.

Conv2D's ``W`` is already ``(F, C, KH, KW)``, as ``nn.Conv2d.weight``; Dense
stores ``W`` as (in, out) for ``x @ W``, and ``nn.Linear.weight`` is (out, in),
so it is transposed.  Layer ``i`` of the Sequential is module ``i`` of the torch
one, so the names are ``"0.weight"``, ``"0.bias"``, ...
"""
import numpy as np


def _padding(conv):
    top, bottom, left, right = conv.padding
    if top == bottom and left == right:
        return f"({top}, {left})"
    return "'same'"   # minicnn's only asymmetric padding is 'same', which torch pads the same way (extra at bottom/right)


def _conv(layer):
    F, C, KH, KW = layer.params["W"].shape
    code = (f"nn.Conv2d({C}, {F}, kernel_size=({KH}, {KW}), stride={tuple(layer.stride)}, "
            f"padding={_padding(layer)}, bias={'b' in layer.params})")
    weights = {"weight": layer.params["W"]}
    if "b" in layer.params:
        weights["bias"] = layer.params["b"]
    return code, weights


def _dense(layer):
    return (f"nn.Linear({layer.in_features}, {layer.out_features})",
            {"weight": layer.params["W"].T, "bias": layer.params["b"]})


def _batchnorm(layer):
    kind = "BatchNorm2d" if type(layer).__name__ == "BatchNorm2D" else "BatchNorm1d"
    weights = {"running_mean": layer.buffers["running_mean"], "running_var": layer.buffers["running_var"],
               "num_batches_tracked": np.array(0)}    # torch counts it only for momentum=None; minicnn's momentum is fixed
    if layer.affine:
        weights = {"weight": layer.params["gamma"], "bias": layer.params["beta"], **weights}
    return (f"nn.{kind}({layer.num_features}, eps={layer.eps!r}, momentum={layer.momentum!r}, affine={layer.affine})",
            weights)


def _avgpool(layer):
    return (f"nn.AvgPool2d(kernel_size={tuple(layer.kernel_size)}, stride={tuple(layer.stride)}, "
            f"padding={tuple(layer.padding)}, count_include_pad=True)", {})


_LAYERS = {
    "Conv2D": _conv,
    "Dense": _dense,
    "BatchNorm2D": _batchnorm,
    "BatchNorm1D": _batchnorm,
    "AvgPool2D": _avgpool,
    "GlobalAvgPool2D": lambda layer: ("nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())", {}),
    "Dropout": lambda layer: (f"nn.Dropout({layer.p!r})", {}),
    "LeakyReLU": lambda layer: (f"nn.LeakyReLU({layer.negative_slope!r})", {}),
    "Tanh": lambda layer: ("nn.Tanh()", {}),
    "Sigmoid": lambda layer: ("nn.Sigmoid()", {}),
    "ReLU": lambda layer: ("nn.ReLU()", {}),
    "MaxPool2D": lambda layer: (f"nn.MaxPool2d(kernel_size={tuple(layer.kernel_size)}, stride={tuple(layer.stride)})", {}),
    "Flatten": lambda layer: ("nn.Flatten()", {}),
}


def _modules(model):
    for i, layer in enumerate(model.layers):
        kind = type(layer).__name__
        if kind not in _LAYERS:
            raise ValueError(f"layer {i} ({kind}) has no PyTorch mapping; minicnn exports {', '.join(sorted(_LAYERS))}")
        yield i, _LAYERS[kind](layer)


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
