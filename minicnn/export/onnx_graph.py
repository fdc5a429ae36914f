"""A minicnn ``Sequential`` as an ONNX graph, built with the ``onnx`` package's own helpers.

One ONNX operator (or two) per layer, in order, in eval mode: Conv2D -> Conv,
ReLU -> Relu, MaxPool2D -> MaxPool, Flatten -> Flatten(axis=1), Dense -> Gemm,
and the rest as listed in ``_LAYERS``.  The input is named ``input`` with a
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


_LAYERS = {
    "Conv2D": _conv,
    "Dense": _dense,
    "MaxPool2D": _maxpool,
    "Flatten": _flatten,
    "ReLU": lambda layer, name, x, g: g.node("Relu", [x], name),
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
    g.nodes[-1].output[0] = "logits"
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
