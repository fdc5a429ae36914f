"""``minicnn train``: train minicnn's default CNN on MNIST (or Fashion-MNIST), then compare its first-layer kernels with Sobel.

    minicnn train                                  # the default run (fetches MNIST on first use)
    minicnn train --dataset fashion-mnist          # clothing: its own recipe (batch norm, 3 convs, flips)
    minicnn train --resume runs/mnist/checkpoint.npz

(``python -m minicnn train`` and, in the source, ``python experiments/train_mnist.py`` are the same.)
The data set is read from its folder in the data folder (``minicnn fetch --where``), fetched there on
first use, unless --data names another; the run goes to runs/DATASET under the current folder unless
--out names another.

Writes under --out: checkpoint.npz (every epoch; Ctrl-C or SIGTERM saves one
too and exits with 130 or 143), metrics.json (test accuracy, history, kernels,
timings, first-layer kernels at step 0 and after every epoch) and kernels.png
and curves.png when matplotlib is installed.  Prints one line per
epoch and, at the end, every first-layer kernel beside its best-matching
oriented Sobel kernel.

One run per folder: a run holds --out (a lock on --out/.minicnn.lock) from
start to exit, and a second run into it is refused, naming the process that
holds it.  A folder that already holds a run's checkpoint is not reused by a
new run: continue that run with --resume, or replace it with --overwrite,
which keeps the old run until the new one's first checkpoint is written.

A closed output is not a finished run: when whoever reads stdout or stderr
goes away (minicnn train | head -1), the run goes on
without printing and ends as it would have: checkpoint, metrics.json,
pictures, exit status.

Exit status: 0 done, 1 training diverged (NaN or infinite loss), 2 bad options
or files, a folder in use by another run, or an output that could not be
written, 130/143 stopped by Ctrl-C/SIGTERM.

Threads: the engine shares each step out between as many threads as NumPy's
OpenBLAS has (the cores, or OPENBLAS_NUM_THREADS), with BLAS on one thread in
each part (``minicnn.engine.threads``); OPENBLAS_NUM_THREADS=1 runs everything on
one thread.  Any other BLAS call runs on one thread too unless OPENBLAS_NUM_THREADS,
OMP_NUM_THREADS or MKL_NUM_THREADS is set (see ``one_blas_thread``).
A resumed run ends bit-identical to an uninterrupted one with the same BLAS
thread setting on the same machine (other threads or CPUs round differently).
"""
import argparse
import contextlib
import json
import math
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np

from minicnn import SGD, CosineLR, use_engine
from minicnn.analysis.curves import plot_training_curves
from minicnn.data.augment import TEST_TIME, random_erase, random_flip, random_shift, test_time_copies
from minicnn.data.fetch import DATASETS
from minicnn.data.home import dataset_root
from minicnn.data.images import standardize
from minicnn.edges.evolution import snapshot
from minicnn.edges.inspect_kernels import describe_kernels, match_records, plot_kernel_report
from minicnn.engine import cblas
from minicnn.engine import threads as engine_threads
from minicnn.exercises.adapters import NAME as MINE
from minicnn.exercises.adapters import describe_mine, use_mine
from minicnn.nn import ops
from minicnn.nn.ops import BUILT_IN as ENGINES
from minicnn.nn.ops import describe as describe_engine
from minicnn.training import architectures
from minicnn.training.checkpoint import CheckpointError, check_architecture, load_checkpoint
from minicnn.training.loop import NonFiniteLossError, evaluate
from minicnn.training.run_folder import FolderBusy, RunFolder
from minicnn.training.runner import TrainingInterrupted, train_resumable
from minicnn.utils.cli import (
    error_message,
    float_in,
    has_advice,
    int_in,
    nonnegative_int,
    outputs_may_close,
    positive_int,
    run_command,
    write_json,
)

BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
# Options that define the run; a resumed run takes them from its checkpoint.
RUN_OPTIONS = ("dataset", "architecture", "channels", "hidden", "dropout", "epochs", "batch_size", "lr", "momentum",
               "weight_decay", "warmup", "max_shift", "flip", "erase", "label_smoothing", "test_time", "seed", "limit_train",
               "limit_test")
# Each data set's default run; every entry can be changed with its command-line option (--help lists both).
# Digits: the small CNN, no batch norm, no flips (a mirrored digit is another digit or none); label smoothing,
# and the test images' predictions averaged over one-pixel shifts (docs/recipes.md gives the runs that chose them).
# Clothing: wider, with batch norm after each conv, which lets the learning rate double, a third conv on the 7x7
# maps, left-right flips (a mirrored shirt is a shirt), also at test time, a blanked rectangle in half the training
# images, label smoothing, 15 epochs, and the test images' predictions averaged over the image, its mirror and
# their one-pixel moves (docs/recipes.md gives the runs).
RECIPES = {
    "mnist": {"architecture": "mnist_cnn", "channels": "16,32", "hidden": 128, "dropout": 0.0, "epochs": 8,
              "batch_size": 64, "lr": 0.05, "momentum": 0.9, "weight_decay": 5e-4, "warmup": 0.3, "max_shift": 2,
              "flip": False, "erase": 0.0, "label_smoothing": 0.1, "test_time": "shifts"},
    "fashion-mnist": {"architecture": "fashion_cnn", "channels": "24,48,64", "hidden": 128, "dropout": 0.0,
                      "epochs": 15, "batch_size": 64, "lr": 0.1, "momentum": 0.9, "weight_decay": 5e-4,
                      "warmup": 0.3, "max_shift": 2, "flip": True, "erase": 0.5, "label_smoothing": 0.1,
                      "test_time": "flips+shifts"},
}
# Options added after runs were saved without them: what those runs used.
_BEFORE_RECIPES = {"architecture": "mnist_cnn", "dropout": 0.0, "erase": 0.0, "label_smoothing": 0.0, "test_time": "none"}
# The run's files in --out (the checkpoint first); --overwrite replaces them all, the views' figures included,
# so that nothing of the old run is left beside the new one.
RUN_FILES = ("checkpoint.npz", "metrics.json", "kernels.png", "curves.png", "featuremaps.png", "saliency.png",
             "confusion.png", "mistakes.png", "checkpoint_kernels.png", "evolution.png")
# The ranges of the number options (argparse checks them; a resumed run's saved options are checked the same way).
MAX_PARAMS = 10_000_000     # 40 MB of float32 weights; the default network has ~0.2 M
MAX_CHANNELS = 512          # per conv layer: 64 images x 512 maps x 28 x 28 float32 is 100 MB per activation
NUMBER_TYPES = {
    "hidden": positive_int, "epochs": int_in(1, 100_000), "batch_size": int_in(1, 4096),
    "lr": float_in(0, 10, low_open=True), "momentum": float_in(0, 1, high_open=True),
    "weight_decay": float_in(0), "warmup": float_in(0), "max_shift": nonnegative_int,
    "seed": nonnegative_int, "limit_train": positive_int, "limit_test": positive_int,
}


def recipe_default(key):
    """The help text's default of a recipe option: one value, or one per data set."""
    values = {name: recipe[key] for name, recipe in RECIPES.items()}
    show = lambda v: ("on" if v else "off") if isinstance(v, bool) else str(v)
    if len(set(map(show, values.values()))) == 1:
        return f"(default: {show(values['mnist'])})"
    return "(default: " + ", ".join(f"{show(v)} for {name}" for name, v in values.items()) + ")"


def build_parser(defaults=True):
    p = argparse.ArgumentParser(prog="minicnn train", description=__doc__.replace("``", "'"),
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                argument_default=None if defaults else argparse.SUPPRESS)
    d = (lambda value: value) if defaults else (lambda value: argparse.SUPPRESS)
    from_recipe = d(None)  # a recipe option: None until fill_recipe puts in the data set's value
    p.add_argument("--dataset", choices=list(DATASETS), default=d("mnist"),
                   help="mnist (digits) or fashion-mnist (clothing); picks the recipe, the defaults of the "
                        "options below that name both (default: mnist)")
    p.add_argument("--architecture", choices=list(architectures.ARCHITECTURES), default=from_recipe,
                   help="the network, a function in minicnn/training/architectures.py "
                        + recipe_default("architecture"))
    p.add_argument("--channels", type=channels_type, default=from_recipe,
                   help=f"filters of the conv layers, each 1 to {MAX_CHANNELS}: two numbers, or three for fashion_cnn "
                        f"(a third conv on the 7x7 maps); with --hidden, at most "
                        f"{MAX_PARAMS:,} parameters " + recipe_default("channels"))
    p.add_argument("--hidden", type=NUMBER_TYPES["hidden"], default=from_recipe,
                   help=f"units of the hidden dense layer; with --channels, at most {MAX_PARAMS:,} parameters "
                        + recipe_default("hidden"))
    p.add_argument("--dropout", type=probability, default=from_recipe,
                   help="dropout before the last dense layer, 0 for none " + recipe_default("dropout"))
    p.add_argument("--epochs", type=NUMBER_TYPES["epochs"], default=from_recipe,
                   help="passes over the training set " + recipe_default("epochs"))
    p.add_argument("--batch-size", type=NUMBER_TYPES["batch_size"], default=from_recipe,
                   help="1 to 4096 " + recipe_default("batch_size"))
    p.add_argument("--lr", type=NUMBER_TYPES["lr"], default=from_recipe,
                   help="peak learning rate, in (0, 10] " + recipe_default("lr"))
    p.add_argument("--momentum", type=NUMBER_TYPES["momentum"], default=from_recipe,
                   help="SGD momentum, Nesterov, in [0, 1) " + recipe_default("momentum"))
    p.add_argument("--weight-decay", type=NUMBER_TYPES["weight_decay"], default=from_recipe,
                   help="L2 penalty, >= 0 " + recipe_default("weight_decay"))
    p.add_argument("--warmup", type=NUMBER_TYPES["warmup"], default=from_recipe,
                   help="epochs of linear warm-up before the cosine decay to 0, >= 0 " + recipe_default("warmup"))
    p.add_argument("--max-shift", type=NUMBER_TYPES["max_shift"], default=from_recipe,
                   help="augmentation: random shifts of up to this many pixels, 0 for none, less than half the "
                        "image side " + recipe_default("max_shift"))
    p.add_argument("--flip", dest="flip", action="store_true", default=from_recipe,
                   help="augmentation: random left-right flips " + recipe_default("flip"))
    p.add_argument("--no-flip", dest="flip", action="store_false", default=from_recipe, help="no flips")
    p.add_argument("--erase", type=probability, default=from_recipe,
                   help="augmentation: blank a random rectangle (2-25%% of the image) of each training image with "
                        "this probability, 0 for none " + recipe_default("erase"))
    p.add_argument("--label-smoothing", type=probability, default=from_recipe,
                   help="train on targets (1 - s) one-hot + s / 10, s in [0, 1), 0 for none "
                        + recipe_default("label_smoothing"))
    p.add_argument("--test-time", choices=list(TEST_TIME), default=from_recipe,
                   help="the final test accuracy averages the predictions over copies of each test image: none, "
                        "shifts (the image and 8 copies moved by one pixel), flips (the image and its mirror) or flips+shifts "
                        "(both, each moved by one pixel across and up and down: 10 copies); "
                        "the accuracy on the images as they are is printed too " + recipe_default("test_time"))
    p.add_argument("--seed", type=NUMBER_TYPES["seed"], default=d(0), help="(default: 0)")
    p.add_argument("--engine", choices=ENGINES, default=d("fast"),
                   help="the code that computes every layer: loops (one window at a time, very slow), textbook "
                        "(minicnn/nn/textbook.py) or fast (minicnn/engine); a resumed run may change it (default: fast)")
    p.add_argument("--mine", default=d(None), metavar="DIR",
                   help="train with your passed exercises in DIR (minicnn exercises) in place of the library's math; "
                        "the rest runs on the textbook")
    p.add_argument("--limit-train", type=NUMBER_TYPES["limit_train"], default=d(None), metavar="N",
                   help="train on the first N training images only (default: all 60000)")
    p.add_argument("--limit-test", type=NUMBER_TYPES["limit_test"], default=d(None), metavar="N",
                   help="evaluate on the first N test images only (default: all 10000)")
    p.add_argument("--data", default=d(None), help="the data set's folder; fetched there if missing "
                   "(default: DATASET in the data folder, which 'minicnn fetch --where' prints)")
    p.add_argument("--out", default=d(None), help="output folder; with --resume, the checkpoint's "
                   "folder unless given (default: runs/DATASET)")
    p.add_argument("--resume", default=d(None), metavar="CHECKPOINT", help="continue the run saved in CHECKPOINT")
    p.add_argument("--overwrite", action="store_true", default=d(False),
                   help="start a new run even if --out holds another run's checkpoint, replacing it and its "
                        "metrics.json and pictures once the new run's first checkpoint is written; until then "
                        "(a crash, a refused option) the old run stays as it was (default: refuse)")
    p.add_argument("--progress", dest="progress", action="store_true", default=d(None),
                   help="force the tqdm bars on (default: on when stdout is a terminal)")
    p.add_argument("--no-progress", dest="progress", action="store_false", default=d(None),
                   help="turn the tqdm bars off")
    return p


def probability(text):
    """argparse type: a float in [0, 1)."""
    try:
        value = float(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {text!r}")
    return value


def channels_type(text):
    """argparse type: two whole numbers of at least 1, like ``16,32`` (kept as that text; ``check_run`` caps them)."""
    try:
        channels = tuple(int(c) for c in str(text).split(","))
    except ValueError:
        channels = ()
    if len(channels) not in (2, 3) or min(channels) < 1:
        raise argparse.ArgumentTypeError(f"expected two or three whole numbers of at least 1 like 16,32 (three: "
                                         f"fashion_cnn only), got {text!r}")
    return ",".join(map(str, channels))


def fill_recipe(args):
    """Every recipe option not given on the command line takes the data set's recipe value."""
    for key, value in RECIPES[args.dataset].items():
        if getattr(args, key) is None:
            setattr(args, key, value)


def parse_args(argv):
    args = build_parser().parse_args(argv)
    explicit = vars(build_parser(defaults=False).parse_args(argv))
    return args, explicit


def check_run(args):
    """What no single option can check alone: the shifts against the image side, the network's size.

    Returns an error message naming the options, or None.
    """
    side = min(DATASETS[args.dataset].spec.shapes["train_images"][1:])
    if args.max_shift >= side / 2:
        return (f"--max-shift {args.max_shift}: expected less than half the image side ({side} pixels for "
                f"{args.dataset}), i.e. at most {(side - 1) // 2}")
    channels = tuple(int(c) for c in args.channels.split(","))
    try:
        spec = network_spec(args, channels)
    except ValueError as e:
        return f"--channels {args.channels} with --architecture {args.architecture}: {e}"
    count = sum(math.prod(shape) for shape in architectures.state_shapes(spec).values())
    if count > MAX_PARAMS:   # counted from the layers' arguments: nothing is allocated
        return (f"--channels {args.channels} --hidden {args.hidden} give a network of {count:,} parameters, more "
                f"than the {MAX_PARAMS:,} this command trains; use smaller values")
    if max(channels) > MAX_CHANNELS:
        return (f"--channels {args.channels}: at most {MAX_CHANNELS} filters per conv layer (a batch of 64 images "
                f"then needs 100 MB per layer's output)")
    return None


def resolve_resume(args, explicit):
    """With --resume: load the checkpoint, take the run's options from it, refuse conflicting ones."""
    checkpoint = load_checkpoint(args.resume)
    saved = json.loads(checkpoint.extra_str("config", "null") or "null")
    if not isinstance(saved, dict):
        raise ValueError(f"{args.resume} holds no training configuration; it was not written by minicnn train")
    saved.setdefault("dataset", "mnist")  # runs saved before there was a choice were MNIST runs
    for k, value in _BEFORE_RECIPES.items():  # runs saved before recipes named their network
        saved.setdefault(k, value)
    saved.setdefault("flip", saved["dataset"] == "fashion-mnist")
    check_saved_options(saved, args.resume)
    conflicts = [f"--{k.replace('_', '-')} {explicit[k]} (the run used {saved.get(k)})"
                 for k in RUN_OPTIONS if k in explicit and explicit[k] != saved.get(k)]
    if conflicts:
        raise ValueError("a resumed run continues with its own options; drop " + ", ".join(conflicts))
    for k in RUN_OPTIONS:
        setattr(args, k, saved[k])
    problem = check_run(args)
    if problem:
        raise ValueError(f"{args.resume}: its saved options are not ones this command runs: {problem}")
    return checkpoint


def check_saved_options(saved, path):
    """A resumed run's options pass the checks the command line's would (a crafted config is refused)."""
    missing = [k for k in RUN_OPTIONS if k not in saved]
    if missing:
        raise ValueError(f"{path}: its training configuration lacks {', '.join(missing)}; it was not written by "
                         f"this command, or was edited")
    checks = {**NUMBER_TYPES, "channels": channels_type}
    for key, value in saved.items():
        try:
            if key in ("dataset", "architecture", "test_time"):
                choices = {"dataset": DATASETS, "architecture": architectures.ARCHITECTURES, "test_time": TEST_TIME}[key]
                if value not in choices:
                    raise argparse.ArgumentTypeError(f"expected one of {sorted(choices)}")
            elif key == "flip":
                if not isinstance(value, bool):
                    raise argparse.ArgumentTypeError("expected true or false")
            elif key in ("dropout", "erase", "label_smoothing"):
                probability(str(value))
            elif key in checks and not (value is None and key.startswith("limit_")):
                if isinstance(value, bool) or not isinstance(value, (int, float, str)):
                    raise argparse.ArgumentTypeError(f"expected a number, got {value!r}")
                if checks[key](str(value)) != value and key != "channels":
                    raise argparse.ArgumentTypeError(f"expected a number, got {value!r}")
        except argparse.ArgumentTypeError as e:
            raise ValueError(f"{path}: its saved option {key} = {value!r} is not one this command runs: {e}") from None


def network_spec(args, channels):
    """The spec of the run's network: its architecture function called with the run's sizes."""
    return architectures.ARCHITECTURES[args.architecture](channels=channels, hidden=args.hidden,
                                                          dropout=args.dropout)


def make_augment(max_shift, flip, erase=0.0):
    """The augmentation of a batch: ``(xb, rng) -> xb``, random shifts, then (for clothing) flips, then erased
    rectangles with probability ``erase``; None for none."""
    if not max_shift and not flip and not erase:
        return None

    def augment(xb, rng):
        xb = random_shift(xb, rng, max_shift) if max_shift else xb
        xb = random_flip(xb, rng) if flip else xb
        return random_erase(xb, rng, erase) if erase else xb
    return augment


def main(argv=None):
    """``minicnn train`` as a function: returns the exit status (see the module docstring)."""
    with one_blas_thread():
        return run_command(_main, argv)


@contextlib.contextmanager
def one_blas_thread():
    """BLAS on one thread while training, unless one of ``BLAS_THREAD_VARIABLES`` is set; then as it was.

    The fast engine runs its own products on one BLAS thread anyway (``minicnn.engine.threads``); this
    covers the rest (the textbook and loops engines, NumPy calls outside the engine).  When another
    program shares the cores, OpenBLAS's spinning threads wait on each other and an epoch can take
    10-20x longer. NumPy is loaded before this runs, so the limit is set at run time: with
    threadpoolctl when it is installed, else on NumPy's OpenBLAS (``minicnn.engine.cblas``).
    """
    if any(v in os.environ for v in BLAS_THREAD_VARIABLES):
        yield
        return
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        previous = cblas.set_blas_threads(1)
        try:
            yield
        finally:
            cblas.set_blas_threads(previous)
        return
    with threadpool_limits(1, user_api="blas"):
        yield


def error(message):
    print(f"error: {message}", file=sys.stderr)
    return 2


def prepare_out(out, checkpoint_path, args):
    """Check --out (held by this run) before the data is loaded; returns an error message or None.

    Refuses a folder holding another run's checkpoint unless --overwrite (resuming that very checkpoint is fine).
    """
    if not checkpoint_path.exists() or args.overwrite:
        return None
    if args.resume and Path(args.resume).resolve() == checkpoint_path.resolve():
        return None
    return (f"{out} already holds a run (its checkpoint.npz); continue it with "
            f"--resume {checkpoint_path}, or start a new run there with --overwrite (replaces it)")


def _main(argv):
    started = time.perf_counter()
    args, explicit = parse_args(argv)
    if not args.resume:
        fill_recipe(args)
        problem = check_run(args)
        if problem:   # refused like the options argparse checks alone: usage, one line, exit 2, nothing written
            build_parser().error(problem)
    args.out = args.out or (str(Path(args.resume).parent) if args.resume else f"runs/{args.dataset}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        return error(f"--out {out} is a file, not a folder; give a folder for the run's outputs")
    checkpoint_path = out / "checkpoint.npz"
    resume_hint = f"resume with: minicnn train --resume {checkpoint_path}"
    with outputs_may_close():   # a reader that goes away (| head -1) does not stop the run
        try:
            with RunFolder(out, RUN_FILES, log=lambda line: print(line, file=sys.stderr)) as folder:
                try:
                    checkpoint = resolve_resume(args, explicit) if args.resume else None
                except (ValueError, FileNotFoundError) as e:
                    return error(e)
                args.data = str(dataset_root(DATASETS[args.dataset].spec, args.data))
                problem = prepare_out(out, checkpoint_path, args)
                if problem:
                    return error(problem)
                replacing = folder.replacing() if args.overwrite and checkpoint is None else None
                if args.mine:
                    print(describe_mine(*use_mine(args.mine, nesterov=True), args.mine))
                with use_engine(MINE if args.mine else args.engine):
                    return train_and_report(args, checkpoint, out, checkpoint_path, resume_hint, started, replacing)
        except FolderBusy as e:
            return error(e)
        except KeyboardInterrupt as e:  # a Ctrl-C before the run's own handler was in place, or a second one
            code = 128 + getattr(e, "signum", signal.SIGINT)
            print(f"\nstopped at once: {saved_state(checkpoint_path, resume_hint)}", file=sys.stderr)
            return code
        except OSError as e:   # a failed write: advice that fits it, and what is left to come back to
            return error(f"{error_message(e)}\n{saved_state(checkpoint_path, resume_hint, retry=not has_advice(e))}")


def saved_state(checkpoint_path, resume_hint, retry=True):
    """What is on disk to come back to, in one sentence (after a stop or a failed write).

    ``retry``: whether running the same command again may work (not after a read-only or missing folder).
    """
    try:
        kept = load_checkpoint(checkpoint_path)
    except FileNotFoundError:
        return ("no checkpoint was saved yet, so there is nothing to resume"
                + ("; run the same command again" if retry else ""))
    except CheckpointError as e:
        return f"the checkpoint on disk cannot be used ({e}); start again"
    where = (f", {int(kept.extra['epoch_step'])} steps into epoch {kept.epoch + 1}"
             if "epoch_step" in kept.extra else "")
    return f"the checkpoint in {checkpoint_path} is intact ({kept.epoch} epochs done{where}); {resume_hint}"


def train_and_report(args, checkpoint, out, checkpoint_path, resume_hint, started, replacing=None):
    data = DATASETS[args.dataset]
    try:
        x_train, y_train, x_test, y_test = data.load(args.data, progress=args.progress)
    except (ValueError, OSError, RuntimeError) as e:
        return error(f"cannot read {data.spec.name} from --data {args.data}: {e}")
    scale = lambda x: standardize(x, data.spec.mean, data.spec.std)
    x_train, y_train = scale(x_train[:args.limit_train]), y_train[:args.limit_train].astype(np.int64)
    x_test, y_test = scale(x_test[:args.limit_test]), y_test[:args.limit_test].astype(np.int64)

    rng = np.random.default_rng(args.seed)
    spec = network_spec(args, tuple(int(c) for c in args.channels.split(",")))
    model = architectures.build_model(spec, rng=rng)
    if checkpoint is not None:
        try:
            check_architecture(checkpoint, model)
        except CheckpointError as e:
            return error(e)
    optimizer = SGD(model, lr=args.lr, momentum=args.momentum, nesterov=True, weight_decay=args.weight_decay)
    steps_per_epoch = -(-len(x_train) // args.batch_size)
    total = args.epochs * steps_per_epoch
    scheduler = CosineLR(optimizer, total_steps=total, warmup_steps=min(int(args.warmup * steps_per_epoch), total - 1))
    augment = make_augment(args.max_shift, args.flip, args.erase)
    config = {k: getattr(args, k) for k in RUN_OPTIONS}

    print(f"minicnn {data.spec.name}: {len(x_train)} training / {len(x_test)} test images; "
          f"{architectures.describe(spec)}; {model.num_params():,} parameters")
    print(f"SGD lr {args.lr} (warm-up {args.warmup} epochs, cosine to 0), Nesterov momentum {args.momentum}, "
          f"weight decay {args.weight_decay}, batch {args.batch_size}, shifts <= {args.max_shift}px"
          + (", left-right flips" if args.flip else "")
          + (f", erasing p {args.erase}" if args.erase else "")
          + (f", label smoothing {args.label_smoothing}" if args.label_smoothing else "")
          + (f", test-time {args.test_time}" if args.test_time != "none" else "") + f", seed {args.seed}")
    split = engine_threads.threads()
    print(f"engine: {describe_engine(ops.OPS)}" + (f"; its passes shared between {split} threads (OPENBLAS_NUM_THREADS=1: "
                                                   "one)" if split > 1 and args.engine == "fast" else ""))
    if checkpoint is not None:
        print(f"resuming {args.resume}: {checkpoint.epoch} of {args.epochs} epochs done"
              + (f", {int(checkpoint.extra['epoch_step'])} steps into epoch {checkpoint.epoch + 1}"
                 if "epoch_step" in checkpoint.extra else ""))
    # first-layer kernels at step 0 (kept in the checkpoint, so a resumed run still has them) and after each epoch
    initial = checkpoint.extra_str("initial_kernels") if checkpoint is not None else None
    initial = initial or json.dumps(snapshot(model.layers[0].params["W"], "step 0"))
    first_layer = lambda m: {"kernels_snapshot": snapshot(m.layers[0].params["W"], "")["kernels"]}
    try:
        history = train_resumable(model, optimizer, x_train, y_train, x_test, y_test, epochs=args.epochs,
                                  batch_size=args.batch_size, rng=rng, checkpoint_path=checkpoint_path,
                                  scheduler=scheduler, augment=augment, resume=checkpoint,
                                  extra={"config": json.dumps(config), "initial_kernels": initial,
                                         "normalization": json.dumps({"mean": data.spec.mean, "std": data.spec.std})},
                                  on_epoch=first_layer, progress=args.progress,
                                  log=lambda line: print(line, flush=True), replacing=replacing,
                                  label_smoothing=args.label_smoothing)
    except CheckpointError as e:
        return error(e)
    except TrainingInterrupted as e:
        print(f"\nstopped: {e}\n{resume_hint}")
        return 128 + e.signum
    except NonFiniteLossError as e:
        print(f"\ntraining stopped: {e}.\n{last_good(checkpoint_path)}; start again with a smaller --lr.",
              file=sys.stderr)
        return 1

    test_loss, test_accuracy = evaluate(model, x_test, y_test)
    as_they_are = test_accuracy
    if args.test_time != "none":
        test_loss, test_accuracy = evaluate(model, x_test, y_test,
                                            copies=lambda xb: test_time_copies(xb, args.test_time))
    W = model.layers[0].params["W"]
    text, matches = describe_kernels(W)
    kernels = match_records(W, matches)
    print("\nfirst-layer kernels beside the oriented Sobel kernel each matches best:\n")
    print(text)
    png = plot_kernel_report(W, matches, out / "kernels.png",
                             title=f"first-layer kernels of {checkpoint_path} (top) and their best Sobel match (bottom)")
    evolution = [json.loads(initial)] + [{"label": f"epoch {r['epoch']}", "kernels": r.pop("kernels_snapshot")}
                                         for r in history if "kernels_snapshot" in r]
    plot_training_curves(history, out / "curves.png", title=f"training of {checkpoint_path}")
    metrics = {"test_accuracy": test_accuracy, "test_loss": test_loss, "test_time": args.test_time,
               "test_accuracy_as_they_are": as_they_are, "epochs": len(history),
               "train_seconds": round(sum(r["seconds"] for r in history), 2),
               "wall_seconds_this_process": round(time.perf_counter() - started, 2),
               "train_images": len(x_train), "test_images": len(x_test), "config": config,
               "architecture": json.loads(architectures.to_json(model)), "history": history, "kernels": kernels,
               "kernel_evolution": evolution,
               "checkpoint": str(checkpoint_path), "kernels_png": str(png) if png else None}
    write_json(out / "metrics.json", metrics)
    tta = (f" (predictions averaged over {TEST_TIME[args.test_time]}; {as_they_are:.4f} on the images as they "
           f"are)") if args.test_time != "none" else ""
    print(f"\ntest accuracy {test_accuracy:.4f}{tta} after {len(history)} epochs; training took "
          f"{metrics['train_seconds']:.0f}s; wrote {out / 'metrics.json'}" + (f" and {png}" if png else ""))
    return 0


def last_good(checkpoint_path):
    """The checkpoint kept after a divergence (the runner never saves non-finite weights)."""
    try:
        kept = load_checkpoint(checkpoint_path)
    except (FileNotFoundError, CheckpointError):
        return "No usable checkpoint was saved"
    return f"The last good checkpoint ({kept.epoch} epochs done) is kept in {checkpoint_path}"


if __name__ == "__main__":
    sys.exit(main())
