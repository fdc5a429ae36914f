"""Train minicnn's default CNN on MNIST, then compare its first-layer kernels with Sobel.

    python experiments/train_mnist.py                 # the default run (fetches MNIST on first use)
    python experiments/train_mnist.py --resume runs/mnist/checkpoint.npz

Writes under --out: checkpoint.npz (every epoch; Ctrl-C saves one too),
metrics.json (test accuracy, history, kernels, timings) and kernels.png when
matplotlib is installed.  Prints one line per epoch and, at the end, every
first-layer kernel beside its best-matching oriented Sobel kernel.

BLAS runs on one thread unless OPENBLAS_NUM_THREADS, OMP_NUM_THREADS or
MKL_NUM_THREADS is set (why: see the comment below).
A resumed run ends bit-identical to an uninterrupted one with the same BLAS
thread setting on the same machine (other threads or CPUs round differently).
"""
import os

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
if __name__ == "__main__" and not any(v in os.environ for v in BLAS_THREAD_VARIABLES):
    # One BLAS thread unless you set one of these variables. This network's matrix products are
    # small: a second OpenBLAS thread gains little on an idle 2-core machine and, when another
    # program shares the cores, its threads wait on each other and an epoch can take 10-20x longer.
    # (Must happen before NumPy is imported; importing this module from elsewhere changes nothing.)
    os.environ.update(dict.fromkeys(BLAS_THREAD_VARIABLES, "1"))

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from minicnn import SGD, CosineLR, architectures, viz
from minicnn.augment import random_shift
from minicnn.checkpoint import CheckpointError, check_architecture, load_checkpoint
from minicnn.datasets import load_mnist, normalize
from minicnn.kernels import best_match, get_kernel
from minicnn.runner import TrainingInterrupted, train_resumable
from minicnn.train import NonFiniteLossError, evaluate

# Options that define the run; a resumed run takes them from its checkpoint.
RUN_OPTIONS = ("epochs", "batch_size", "lr", "momentum", "weight_decay", "warmup", "max_shift", "channels",
               "hidden", "seed", "limit_train", "limit_test")


def build_parser(defaults=True):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=None if defaults else argparse.SUPPRESS)
    d = (lambda value: value) if defaults else (lambda value: argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, default=d(8), help="passes over the training set (default: 8)")
    p.add_argument("--batch-size", type=int, default=d(64), help="(default: 64)")
    p.add_argument("--lr", type=float, default=d(0.05), help="peak learning rate (default: 0.05)")
    p.add_argument("--momentum", type=float, default=d(0.9), help="SGD momentum, Nesterov (default: 0.9)")
    p.add_argument("--weight-decay", type=float, default=d(5e-4), help="L2 penalty (default: 5e-4)")
    p.add_argument("--warmup", type=float, default=d(0.3),
                   help="epochs of linear warm-up before the cosine decay to 0 (default: 0.3)")
    p.add_argument("--max-shift", type=int, default=d(2),
                   help="augmentation: random shifts of up to this many pixels, 0 for none (default: 2)")
    p.add_argument("--channels", type=str, default=d("16,32"), help="filters of the two conv layers (default: 16,32)")
    p.add_argument("--hidden", type=int, default=d(128), help="units of the hidden dense layer (default: 128)")
    p.add_argument("--seed", type=int, default=d(0), help="(default: 0)")
    p.add_argument("--limit-train", type=int, default=d(None), metavar="N",
                   help="train on the first N training images only (default: all 60000)")
    p.add_argument("--limit-test", type=int, default=d(None), metavar="N",
                   help="evaluate on the first N test images only (default: all 10000)")
    p.add_argument("--data", default=d("datasets/mnist"), help="MNIST folder; fetched there if missing "
                   "(default: datasets/mnist)")
    p.add_argument("--out", default=d("runs/mnist"), help="output folder; with --resume, the checkpoint's "
                   "folder unless given (default: runs/mnist)")
    p.add_argument("--resume", default=d(None), metavar="CHECKPOINT", help="continue the run saved in CHECKPOINT")
    p.add_argument("--progress", dest="progress", action="store_true", default=d(None),
                   help="force the tqdm bars on (default: on when stdout is a terminal)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=d(None),
                   help="turn the tqdm bars off")
    return p


def parse_args(argv):
    args = build_parser().parse_args(argv)
    explicit = vars(build_parser(defaults=False).parse_args(argv))
    return args, explicit


def resolve_resume(args, explicit):
    """With --resume: load the checkpoint, take the run's options from it, refuse conflicting ones."""
    checkpoint = load_checkpoint(args.resume)
    saved = json.loads(checkpoint.extra_str("config", "null") or "null")
    if not isinstance(saved, dict):
        raise ValueError(f"{args.resume} holds no training configuration; it was not written by this script")
    conflicts = [f"--{k.replace('_', '-')} {explicit[k]} (the run used {saved.get(k)})"
                 for k in RUN_OPTIONS if k in explicit and explicit[k] != saved.get(k)]
    if conflicts:
        raise ValueError("a resumed run continues with its own options; drop " + ", ".join(conflicts))
    for k in RUN_OPTIONS:
        setattr(args, k, saved[k])
    if "out" not in explicit:
        args.out = str(Path(args.resume).parent)
    return checkpoint


def kernel_report(W):
    """Each first-layer kernel against its best-matching oriented Sobel kernel.

    Returns (text, records); records are JSON-ready dicts (kernel, match, angle, polarity, similarity).
    """
    blocks, records = [], []
    for f, kernel in enumerate(np.asarray(W, dtype=np.float64)[:, 0]):
        m = best_match(kernel)
        reference = m.polarity * get_kernel(m.name, np.float64)
        sign = "" if m.polarity > 0 else "-"
        blocks.append(viz.kernel_vs_reference(kernel, reference, f"filter {f}", f"{sign}{m.name}", m.similarity))
        records.append({"filter": f, "kernel": kernel.round(6).tolist(), "match": m.name, "angle": m.angle,
                        "polarity": m.polarity, "similarity": round(m.similarity, 6)})
    rows = [viz.side_by_side([b.splitlines() for b in blocks[i:i + 2]], gap=8) for i in range(0, len(blocks), 2)]
    sims = np.abs([r["similarity"] for r in records])
    summary = (f"{len(records)} first-layer kernels; |similarity| to the best Sobel kernel: median {np.median(sims):.3f}, "
               f"max {sims.max():.3f}, {int(np.sum(sims >= 0.8))} at or above 0.8")
    return "\n\n".join(rows) + "\n\n" + summary, records


def main(argv=None):
    started = time.perf_counter()
    args, explicit = parse_args(argv)
    try:
        checkpoint = resolve_resume(args, explicit) if args.resume else None
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    out = Path(args.out)

    x_train, y_train, x_test, y_test = load_mnist(args.data, progress=args.progress)
    x_train, y_train = normalize(x_train[:args.limit_train]), y_train[:args.limit_train].astype(np.int64)
    x_test, y_test = normalize(x_test[:args.limit_test]), y_test[:args.limit_test].astype(np.int64)

    rng = np.random.default_rng(args.seed)
    channels = tuple(int(c) for c in args.channels.split(","))
    spec = architectures.mnist_cnn(channels=channels, hidden=args.hidden)
    model = architectures.build_model(spec, rng=rng)
    if checkpoint is not None:
        try:
            check_architecture(checkpoint, model)
        except CheckpointError as e:
            print(f"error: {e}", file=sys.stderr)
            return 2
    optimizer = SGD(model, lr=args.lr, momentum=args.momentum, nesterov=True, weight_decay=args.weight_decay)
    steps_per_epoch = -(-len(x_train) // args.batch_size)
    total = args.epochs * steps_per_epoch
    scheduler = CosineLR(optimizer, total_steps=total, warmup_steps=min(int(args.warmup * steps_per_epoch), total - 1))
    augment = (lambda xb, g: random_shift(xb, g, args.max_shift)) if args.max_shift else None
    config = {k: getattr(args, k) for k in RUN_OPTIONS}
    out.mkdir(parents=True, exist_ok=True)
    checkpoint_path = out / "checkpoint.npz"

    print(f"minicnn MNIST: {len(x_train)} training / {len(x_test)} test images; "
          f"{architectures.describe(spec)}; {model.num_params():,} parameters")
    print(f"SGD lr {args.lr} (warm-up {args.warmup} epochs, cosine to 0), Nesterov momentum {args.momentum}, "
          f"weight decay {args.weight_decay}, batch {args.batch_size}, shifts <= {args.max_shift}px, seed {args.seed}")
    if checkpoint is not None:
        print(f"resuming {args.resume}: {checkpoint.epoch} of {args.epochs} epochs done"
              + (f", {int(checkpoint.extra['epoch_step'])} steps into epoch {checkpoint.epoch + 1}"
                 if "epoch_step" in checkpoint.extra else ""))
    resume_hint = f"resume with: python experiments/train_mnist.py --resume {checkpoint_path}"
    try:
        history = train_resumable(model, optimizer, x_train, y_train, x_test, y_test, epochs=args.epochs,
                                  batch_size=args.batch_size, rng=rng, checkpoint_path=checkpoint_path,
                                  scheduler=scheduler, augment=augment, resume=checkpoint,
                                  extra={"config": json.dumps(config)}, progress=args.progress)
    except TrainingInterrupted as e:
        print(f"\nstopped: {e}\n{resume_hint}")
        return 130
    except KeyboardInterrupt:
        print(f"\nstopped at once: the checkpoint in {checkpoint_path} is the last one saved "
              f"(intact, from the last epoch or Ctrl-C); {resume_hint}")
        return 130
    except NonFiniteLossError as e:
        kept = load_checkpoint(checkpoint_path)
        print(f"\ntraining stopped: {e}.\nThe last good checkpoint ({kept.epoch} epochs done) is kept in "
              f"{checkpoint_path}; start again with a smaller --lr.", file=sys.stderr)
        return 1

    test_loss, test_accuracy = evaluate(model, x_test, y_test)
    W = model.layers[0].params["W"]
    text, kernels = kernel_report(W)
    print("\nfirst-layer kernels beside their best-matching oriented Sobel kernel:\n")
    print(text)
    refs = np.array([k["polarity"] * get_kernel(k["match"], np.float64) for k in kernels])
    png = viz.plot_kernel_matches(W[:, 0], refs, [f"{k['filter']}: {k['similarity']:+.2f}" for k in kernels],
                                  out / "kernels.png")
    metrics = {"test_accuracy": test_accuracy, "test_loss": test_loss, "epochs": len(history),
               "train_seconds": round(sum(r["seconds"] for r in history), 2),
               "wall_seconds_this_process": round(time.perf_counter() - started, 2),
               "train_images": len(x_train), "test_images": len(x_test), "config": config,
               "architecture": json.loads(architectures.to_json(model)), "history": history, "kernels": kernels,
               "checkpoint": str(checkpoint_path), "kernels_png": str(png) if png else None}
    (out / "metrics.json").write_text(json.dumps(metrics, indent=1))
    print(f"\ntest accuracy {test_accuracy:.4f} after {len(history)} epochs; training took "
          f"{metrics['train_seconds']:.0f}s; wrote {out / 'metrics.json'}" + (f" and {png}" if png else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
