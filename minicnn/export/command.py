"""``python -m minicnn export CHECKPOINT --onnx FILE | --torch FILE``: the trained network for ONNX Runtime or PyTorch.

--onnx writes an ONNX graph (opset 17, input ``input`` with a dynamic batch
dimension, output ``logits``; the training mean/std and the class names in its
metadata); --with-normalization also puts the normalisation in the graph, so
raw [0, 1] pixels can be fed.  --torch writes the weights as safetensors, named
as in an ``nn.Sequential`` of the same layers, and prints the PyTorch code that
builds it and loads them (--print-code FILE writes that code to a file).
The input shape, the normalisation and the class names come from the
checkpoint (a run of ``minicnn train`` records its data set and
normalisation).  A checkpoint that does not record them is refused, naming
the options that supply them (--input-shape, --mean and --std, --classes);
nothing is assumed.  An existing output file is refused unless --overwrite
is given.  Needs the optional packages: pip install "minicnn-numpy[export]".
"""
import argparse
import json
import math
from pathlib import Path

from minicnn.export.onnx_graph import to_onnx
from minicnn.export.torch_weights import to_torch_state_dict, torch_code
from minicnn.training.checkpoint import load_model, recorded_inputs
from minicnn.utils.cli import command, finite_float, float_in, positive_int
from minicnn.utils.files import write_bytes_atomic


def _refuse_existing(path, overwrite):
    if Path(path).exists() and not overwrite:
        raise ValueError(f"{path} exists; pass --overwrite to replace it")


def _need(module, extra="export"):
    try:
        return __import__(module)
    except ImportError:
        raise ValueError(f"this needs the {module!r} package: pip install \"minicnn-numpy[{extra}]\"") from None


def build_parser():
    p = argparse.ArgumentParser(prog="python -m minicnn export", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="a checkpoint written by training (e.g. runs/mnist/checkpoint.npz)")
    p.add_argument("--onnx", metavar="FILE", help="write the ONNX graph here (e.g. model.onnx)")
    p.add_argument("--with-normalization", action="store_true",
                   help="put (x - mean) / std into the ONNX graph, so that it takes raw [0, 1] pixels")
    p.add_argument("--torch", metavar="FILE", help="write the weights for PyTorch here, as safetensors (e.g. model.safetensors)")
    p.add_argument("--print-code", metavar="FILE", help="with --torch: write the PyTorch code to FILE instead of printing it")
    p.add_argument("--overwrite", action="store_true", help="replace output files that exist (default: refuse)")
    p.add_argument("--input-shape", type=shape_type, metavar="C,H,W",
                   help="one input's shape, e.g. 1,16,16; only for a checkpoint that does not record it")
    p.add_argument("--mean", type=finite_float, help="the pixel mean of training (x - mean) / std; only for a "
                                                      "checkpoint that does not record it")
    p.add_argument("--std", type=float_in(0, low_open=True), help="the pixel standard deviation of training (> 0); only for "
                                                       "a checkpoint that does not record it")
    p.add_argument("--classes", type=names, metavar="NAME,NAME,...",
                   help="the class names, one per output; only for a checkpoint that does not record them")
    return p


def shape_type(text):
    """argparse type: ``C,H,W``, three whole numbers of at least 1."""
    try:
        shape = tuple(positive_int(part.strip()) for part in text.split(","))
    except argparse.ArgumentTypeError:
        shape = ()
    if len(shape) != 3:
        raise argparse.ArgumentTypeError(f"expected C,H,W, three whole numbers of at least 1 like 1,28,28, got {text!r}")
    return shape


def names(text):
    """argparse type: comma-separated non-empty names."""
    parts = [part.strip() for part in text.split(",")]
    if not all(parts):
        raise argparse.ArgumentTypeError(f"expected comma-separated names like cat,dog,bird, got {text!r}")
    return tuple(parts)


def what_it_takes(checkpoint, model, args):
    """``(input_shape, (mean, std), class names)``: from the checkpoint, or from the options where it records none.

    Refuses, naming the options, what neither gives; an option that contradicts the checkpoint; an input
    shape the network cannot take; a number of class names other than the network's outputs.
    """
    recorded = recorded_inputs(checkpoint)
    given = {"input_shape": args.input_shape, "mean": args.mean, "std": args.std, "classes": args.classes}
    flags = {"input_shape": "--input-shape", "mean": "--mean", "std": "--std", "classes": "--classes"}
    chosen, missing = {}, []
    for key, value in recorded.items():
        option = given[key]
        if value is not None and option is not None and not _same(value, option):
            raise ValueError(f"{checkpoint.path} records {key.replace('_', ' ')} {_show(value)}; "
                             f"{flags[key]} {_show(option)} contradicts it: drop {flags[key]}")
        chosen[key] = value if value is not None else option
        if chosen[key] is None:
            missing.append(key)
    outputs = _output_shape(model, chosen["input_shape"], checkpoint.path) if chosen["input_shape"] else None
    if missing:
        examples = {"input_shape": "--input-shape C,H,W (e.g. --input-shape 1,16,16)", "mean": "--mean M",
                    "std": "--std S", "classes": "--classes NAME,NAME,..."
                    + (f" ({outputs[0]} names)" if outputs and len(outputs) == 1 else "")}
        labels = {"input_shape": "input shape", "mean": "normalisation mean", "std": "normalisation std",
                  "classes": "class names"}
        raise ValueError(f"{checkpoint.path} does not record its "
                         + ", ".join(labels[k] for k in missing)
                         + " (it was saved without a training config); export assumes nothing: give "
                         + ", ".join(examples[k] for k in missing))
    if outputs != (len(chosen["classes"]),):
        raise ValueError(f"{checkpoint.path}: the network gives outputs of shape {outputs} per input, but there are "
                         f"{len(chosen['classes'])} class names ({', '.join(chosen['classes'][:5])}"
                         f"{', ...' if len(chosen['classes']) > 5 else ''}); expected one name per output")
    return chosen["input_shape"], (chosen["mean"], chosen["std"]), chosen["classes"]


def _same(a, b):
    if isinstance(a, float):
        return math.isclose(a, b, rel_tol=1e-6)
    return tuple(a) == tuple(b)


def _show(value):
    return ",".join(map(str, value)) if isinstance(value, tuple) else f"{value:g}"


def _output_shape(model, input_shape, path):
    """One output's shape for one input of ``input_shape`` (C, H, W), computed layer by layer (nothing run)."""
    shape = input_shape
    for i, layer in enumerate(model.layers):
        try:
            shape = layer.output_shape(shape)
        except ValueError as e:
            raise ValueError(f"{path}: the network cannot take inputs of shape {_show(tuple(input_shape))}: "
                             f"layer {i} ({type(layer).__name__}): {e}") from None
    return tuple(shape)


@command("export")
def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.onnx and not args.torch:
        raise ValueError("nothing to do: give --onnx FILE and/or --torch FILE")
    for path in (args.onnx, args.torch, args.print_code):
        if path:
            _refuse_existing(path, args.overwrite)
    model, checkpoint = load_model(args.checkpoint)
    input_shape, mean_std, class_names = what_it_takes(checkpoint, model, args)
    if args.onnx:
        _need("onnx")
        proto = to_onnx(model, input_shape, args.onnx, normalize=mean_std if args.with_normalization else None,
                        mean_std=mean_std, class_names=class_names, producer_note=str(args.checkpoint))
        print(f"wrote {args.onnx} ({Path(args.onnx).stat().st_size:,} bytes): ONNX opset "
              f"{proto.opset_import[0].version}, input 'input' (N, {', '.join(map(str, input_shape))}), output 'logits'; "
              + ("takes raw [0, 1] pixels" if args.with_normalization else
                 f"takes (pixels - {mean_std[0]}) / {mean_std[1]}, pixels in [0, 1]"))
    if args.torch:
        _need("safetensors")
        from safetensors.numpy import save
        metadata = {"format": "pt", "minicnn.mean": str(mean_std[0]), "minicnn.std": str(mean_std[1]),
                    "minicnn.class_names": json.dumps(list(class_names))}
        write_bytes_atomic(args.torch, save(to_torch_state_dict(model), metadata=metadata))
        code = torch_code(model, Path(args.torch).name)
        print(f"wrote {args.torch} ({Path(args.torch).stat().st_size:,} bytes), weights named as in this nn.Sequential:")
        if args.print_code:
            write_bytes_atomic(args.print_code, code.encode())
            print(f"wrote the PyTorch code to {args.print_code}")
        else:
            print(code)
    return 0
