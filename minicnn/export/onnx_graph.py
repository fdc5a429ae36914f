"""A minicnn ``Sequential`` as an ONNX graph, built with the ``onnx`` package's own helpers.

One ONNX operator (or two) per layer, in order, in eval mode (``_LAYERS``):
Conv2D -> Conv, Dense -> Gemm, MaxPool2D -> MaxPool, AvgPool2D -> AveragePool
(count_include_pad=1), GlobalAvgPool2D -> GlobalAveragePool + Flatten,
Flatten -> Flatten(axis=1), BatchNorm2D/1D -> BatchNormalization with the
running statistics, ReLU, LeakyReLU, Tanh, Sigmoid -> their operators; Dropout
is left out (inference is eval mode).  The input is named ``input`` with a
dynamic batch dimension ``N``; the output is ``logits``.  The preprocessing the
model expects (the mean and std used in training) and the class names go into
the model's metadata; ``normalize=(mean, std)`` also puts ``(x - mean) / std``
into the graph, so raw [0, 1] pixels can be fed.
"""
import io
import json

import numpy as np

OPSET = 17   # every operator used here exists at 17; ONNX Runtime has supported it since 1.13


def _conv(layer, name, x, g):
    top, bottom, left, right = layer.padding
    inputs = [x, g.weight(f"{name}.W", layer.params["W"])]
    if "b" in layer.params:
        inputs.append(g.weight(f"{name}.b", layer.params["b"]))
    return g.node("Conv", inputs, name, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                  pads=[top, left, bottom, right])


def _dense(layer, name, x, g):
    return g.node("Gemm", [x, g.weight(f"{name}.W", layer.params["W"]), g.weight(f"{name}.b", layer.params["b"])], name)


def _maxpool(layer, name, x, g):
    return g.node("MaxPool", [x], name, kernel_shape=list(layer.kernel_size), strides=list(layer.stride))


def _flatten(layer, name, x, g):
    return g.node("Flatten", [x], name, axis=1)


def _avgpool(layer, name, x, g):
    ph, pw = layer.padding
    return g.node("AveragePool", [x], name, kernel_shape=list(layer.kernel_size), strides=list(layer.stride),
                  pads=[ph, pw, ph, pw], count_include_pad=1)      # zeros of the padding count in the mean, as in minicnn


def _global_avgpool(layer, name, x, g):
    return g.node("Flatten", [g.node("GlobalAveragePool", [x], f"{name}.pool")], name, axis=1)   # (N, C, 1, 1) -> (N, C)


def _batchnorm(layer, name, x, g):
    C = layer.num_features
    gamma = layer.params["gamma"] if layer.affine else np.ones(C)
    beta = layer.params["beta"] if layer.affine else np.zeros(C)
    inputs = [x, g.weight(f"{name}.gamma", gamma), g.weight(f"{name}.beta", beta),
              g.weight(f"{name}.running_mean", layer.buffers["running_mean"]),
              g.weight(f"{name}.running_var", layer.buffers["running_var"])]
    return g.node("BatchNormalization", inputs, name, epsilon=float(layer.eps))   # eval mode: the running statistics


_LAYERS = {
    "Conv2D": _conv,
    "Dense": _dense,
    "MaxPool2D": _maxpool,
    "AvgPool2D": _avgpool,
    "GlobalAvgPool2D": _global_avgpool,
    "Flatten": _flatten,
    "BatchNorm2D": _batchnorm,
    "BatchNorm1D": _batchnorm,
    "Dropout": lambda layer, name, x, g: x,                      # inference is eval mode, where Dropout is the identity
    "ReLU": lambda layer, name, x, g: g.node("Relu", [x], name),
    "LeakyReLU": lambda layer, name, x, g: g.node("LeakyRelu", [x], name, alpha=float(layer.negative_slope)),
    "Tanh": lambda layer, name, x, g: g.node("Tanh", [x], name),
    "Sigmoid": lambda layer, name, x, g: g.node("Sigmoid", [x], name),
}


class _Graph:
    """Nodes and initializers collected in order; each node's output is named after it."""

    def __init__(self, helper, numpy_helper):
        self.helper, self.numpy_helper = helper, numpy_helper
        self.nodes, self.initializers = [], []

    def weight(self, name, array):
        self.initializers.append(self.numpy_helper.from_array(np.ascontiguousarray(array, dtype=np.float32), name))
        return name

    def node(self, op, inputs, name, **attrs):
        self.nodes.append(self.helper.make_node(op, inputs, [name], name=name, **attrs))
        return name


def to_onnx(model, input_shape, path=None, *, normalize=None, class_names=None, mean_std=None, producer_note=None):
    """The ``onnx.ModelProto`` of ``model`` (written to ``path`` when given).

    Parameters
    ----------
    model : Sequential of minicnn layers (exported in eval mode: Dropout is left out)
    input_shape : (C, H, W), one example without the batch axis
    normalize : (mean, std), optional; puts ``(x - mean) / std`` in front of the network
    class_names : sequence of str, optional; stored in the metadata
    mean_std : (mean, std) used in training, stored in the metadata (defaults to ``normalize``)

    Raises ValueError naming the first layer that has no ONNX mapping.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    for i, layer in enumerate(model.layers):
        if type(layer).__name__ not in _LAYERS:
            raise ValueError(f"layer {i} ({type(layer).__name__}) has no ONNX mapping; minicnn exports "
                             f"{', '.join(sorted(_LAYERS))}")
    model.summary(input_shape=input_shape, file=io.StringIO())    # raises, naming the layer, if the shapes do not fit
    g = _Graph(helper, numpy_helper)
    x = "input"
    if normalize is not None:
        mean, std = (float(v) for v in normalize)
        x = g.node("Sub", [x, g.weight("normalize.mean", np.array(mean))], "normalize.sub")
        x = g.node("Div", [x, g.weight("normalize.std", np.array(std))], "normalize.div")
    for i, layer in enumerate(model.layers):
        x = _LAYERS[type(layer).__name__](layer, f"{i}.{type(layer).__name__}", x, g)
    if x == "input" or not g.nodes:
        raise ValueError("the model computes nothing to export (no layer maps to an ONNX operator)")
    for node in g.nodes:                       # the last layer's output is the graph's output
        node.output[:] = ["logits" if o == x else o for o in node.output]
        node.input[:] = ["logits" if i == x else i for i in node.input]
    out_features = model.layers[-1].out_features if hasattr(model.layers[-1], "out_features") else None
    graph = helper.make_graph(
        g.nodes, "minicnn",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", *map(int, input_shape)])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", out_features])],
        initializer=g.initializers)
    proto = helper.make_model(graph, producer_name="minicnn", opset_imports=[helper.make_opsetid("", OPSET)])
    proto.ir_version = min(proto.ir_version, 8)   # readable by every ONNX Runtime that knows opset 17
    meta = {"minicnn.input": "float32 (N, " + ", ".join(map(str, input_shape)) + ")",
            "minicnn.normalization_in_graph": json.dumps(normalize is not None)}
    mean_std = mean_std if mean_std is not None else normalize
    if mean_std is not None:
        meta["minicnn.mean"], meta["minicnn.std"] = (json.dumps(float(v)) for v in mean_std)
        meta["minicnn.preprocessing"] = ("raw pixels in [0, 1]" if normalize is not None else
                                         f"pixels in [0, 1], then (x - {float(mean_std[0])}) / {float(mean_std[1])}")
    if class_names is not None:
        meta["minicnn.class_names"] = json.dumps(list(class_names))
    if producer_note:
        meta["minicnn.source"] = producer_note
    helper.set_model_props(proto, meta)
    onnx.checker.check_model(proto, full_check=True)
    if path is not None:
        from minicnn.utils.files import write_bytes_atomic
        write_bytes_atomic(path, proto.SerializeToString())
    return proto
