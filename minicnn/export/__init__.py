"""When you outgrow minicnn: the same network as an ONNX graph, or as PyTorch weights with the code that loads them.

``to_onnx(model, input_shape, path)`` and ``to_torch_state_dict(model)``; the
command is ``python -m minicnn export CHECKPOINT --onnx FILE | --torch FILE``.
May import: ``minicnn.nn``, ``minicnn.data``, ``minicnn.training``, ``minicnn.utils``, and the optional
``onnx`` and ``safetensors`` packages (the ``export`` extra), only inside the functions that need them.
"""
from minicnn.export.onnx_graph import OPSET, to_onnx
from minicnn.export.torch_weights import to_torch_state_dict, torch_code

__all__ = ["OPSET", "to_onnx", "to_torch_state_dict", "torch_code"]
