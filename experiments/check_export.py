"""Export a checkpoint to ONNX and PyTorch and check that both compute minicnn's logits.

    python experiments/check_export.py runs/mnist/checkpoint.npz --out runs/export

Writes model.onnx (and model_raw.onnx, with the normalisation in the graph) and
model.safetensors under --out, runs the first --images test images through
minicnn, ONNX Runtime and (when installed) PyTorch, and prints the largest
logit difference of each, the argmax agreement and the file sizes; also as JSON.
Needs the export extra: pip install "minicnn-numpy[export]".
"""
import argparse
from pathlib import Path

import numpy as np

from minicnn import predict
from minicnn.data.fetch import DATASETS
from minicnn.data.images import standardize, to_float32
from minicnn.export import OPSET, to_onnx, to_torch_state_dict, torch_code
from minicnn.training.checkpoint import load_model, trained_on
from minicnn.utils.cli import positive_int, run_command, write_json


def build_parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--images", type=positive_int, default=1000, help="test images compared (default: 1000)")
    p.add_argument("--data", default=None, help="the data set's folder (default: the checkpoint's data set's)")
    p.add_argument("--out", default="runs/export", help="folder for the exported files (default: runs/export)")
    return p


def _report(name, expected, got):
    diff = float(np.max(np.abs(got - expected)))
    same = float(np.mean(got.argmax(axis=1) == expected.argmax(axis=1)))
    print(f"{name:<34} largest |logit difference| {diff:.2e}   same argmax {same:.2%}")
    return {"max_abs_diff": diff, "same_argmax": same}


def main(argv=None):
    import onnxruntime as ort
    from safetensors.numpy import save

    args = build_parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    model, checkpoint = load_model(args.checkpoint)
    dataset, mean, std = trained_on(checkpoint)
    known = DATASETS[dataset]
    _, _, images, _ = known.load(args.data, download=True)
    raw = to_float32(images[:args.images])
    x = standardize(images[:args.images], mean, std)
    expected = predict(model, x, return_logits=True)
    shape = x.shape[1:]
    result = {"checkpoint": str(args.checkpoint), "images": len(x), "opset": OPSET, "files": {}}
    for name, normalize, inputs in (("model.onnx", None, x), ("model_raw.onnx", (mean, std), raw)):
        path = out / name
        to_onnx(model, shape, path, normalize=normalize, mean_std=(mean, std), class_names=known.spec.class_names)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        got = session.run(["logits"], {"input": inputs})[0]
        result[name] = _report(f"ONNX Runtime, {name}", expected, got)
        result["files"][name] = path.stat().st_size
    weights = out / "model.safetensors"
    weights.write_bytes(save(to_torch_state_dict(model)))
    result["files"]["model.safetensors"] = weights.stat().st_size
    try:
        import torch
    except ImportError:
        print("PyTorch is not installed: its comparison is skipped (pip install torch)")
    else:
        namespace = {}
        exec(compile(torch_code(model, weights), "printed code", "exec"), namespace)
        with torch.no_grad():
            got = namespace["model"](torch.from_numpy(x)).numpy()
        result["torch"] = _report("PyTorch, printed code + safetensors", expected, got)
    for name, size in result["files"].items():
        print(f"{name:<20} {size:>10,} bytes")
    write_json(out / "check_export.json", result)
    return 0


if __name__ == "__main__":
    raise SystemExit(run_command(main))
