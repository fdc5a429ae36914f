"""``python -m minicnn export CHECKPOINT --onnx FILE | --torch FILE``: the trained network for ONNX Runtime or PyTorch.

--onnx writes an ONNX graph (opset 17, input ``input`` with a dynamic batch
dimension, output ``logits``; the training mean/std and the class names in its
metadata); --with-normalization also puts the normalisation in the graph, so
raw [0, 1] pixels can be fed.  --torch writes the weights as safetensors, named
as in an ``nn.Sequential`` of the same layers, and prints the PyTorch code that
builds it and loads them (--print-code FILE writes that code to a file).
An existing output file is refused unless --overwrite is given.
Needs the optional packages: pip install "minicnn[export]".
"""
import argparse
import json
from pathlib import Path

from minicnn.data.fetch import DATASETS
from minicnn.export.onnx_graph import to_onnx
from minicnn.export.torch_weights import to_torch_state_dict, torch_code
from minicnn.training.checkpoint import load_model, trained_on
from minicnn.utils.cli import command
from minicnn.utils.files import write_bytes_atomic


def _refuse_existing(path, overwrite):
    if Path(path).exists() and not overwrite:
        raise ValueError(f"{path} exists; pass --overwrite to replace it")


def _need(module, extra="export"):
    try:
        return __import__(module)
    except ImportError:
        raise ValueError(f"this needs the {module!r} package: pip install \"minicnn[{extra}]\"") from None


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
    return p


@command("export")
def main(argv=None):
    args = build_parser().parse_args(argv)
    if not args.onnx and not args.torch:
        raise ValueError("nothing to do: give --onnx FILE and/or --torch FILE")
    for path in (args.onnx, args.torch, args.print_code):
        if path:
            _refuse_existing(path, args.overwrite)
    model, checkpoint = load_model(args.checkpoint)
    dataset, mean, std = trained_on(checkpoint)
    if dataset not in DATASETS:
        raise ValueError(f"{checkpoint.path} was trained on {dataset!r}; export knows {sorted(DATASETS)}")
    spec = DATASETS[dataset].spec
    input_shape, mean_std, class_names = (1,) + spec.shapes["train_images"][1:], (mean, std), spec.class_names
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
