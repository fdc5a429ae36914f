"""Checkpoints: everything a training run needs to continue, as plain arrays in one ``.npz``.

Layout of the archive (every entry a plain NumPy array; nothing is pickled)::

    minicnn/format        "minicnn-checkpoint"        0-d unicode: what this file is
    minicnn/version       2                           0-d int
    minicnn/architecture  '[{"type": "Conv2D", ...}]' 0-d unicode: the network as JSON
    minicnn/digest        hex SHA-256 of every other entry (names, dtypes, shapes, bytes)
    model/<name>          the weights, e.g. model/0.W (F, C, KH, KW), model/0.b (F,), then the
                          layers' buffers, e.g. model/1.running_mean (C,)
    optim/<key>           optimizer state: optim/type ("SGD", "Adam", ...), optim/lr, optim/steps,
                          one array per parameter and kind, e.g. optim/velocity/0.W, optim/exp_avg/0.W
    scheduler/<key>       learning-rate schedule state (t, base_lr)
    rng                   0-d unicode: JSON of the numpy Generator's bit_generator.state
    epoch, step           0-d ints: completed epochs; optimizer steps so far
    extra/<key>           anything else the caller keeps (arrays; strings as 0-d unicode)

Versions: 1 (minicnn 0.1) had no buffers and no ``optim/type`` (its optimizer
state is SGD's); version 2 added both.  Both are read; a file from a later
version is refused.

Weights come first, so tools that take "the first 4-D array whose key ends in W"
find the first convolution.  Writes are atomic: the archive is written to a
temporary file in the same folder and renamed over the target, so a crash
mid-write leaves the previous checkpoint as it was; the file gets the
permissions a plain ``open()`` would give it (0666 less the umask).  A process
killed mid-write (SIGKILL, power loss) can leave the temporary file behind:
``minicnn.utils.files.remove_stale_temporaries`` deletes those.  Loading uses
``allow_pickle=False`` and refuses, with a ``CheckpointError`` saying why, any
file that is not a complete, unmodified minicnn checkpoint of the expected
architecture.
"""
import hashlib
import json
from pathlib import Path

import numpy as np

from minicnn.data import npz
from minicnn.data.fetch import DATASETS
from minicnn.training import architectures
from minicnn.utils.files import atomic_write
from minicnn.utils.validation import check_rng

FORMAT = "minicnn-checkpoint"
VERSION = 2
OLDEST = 1    # the oldest version this minicnn still reads
_META = ("minicnn/format", "minicnn/version", "minicnn/architecture")
_DIGEST = "minicnn/digest"


class CheckpointError(ValueError):
    """A file that cannot be used as a checkpoint (corrupted, foreign, other architecture)."""


def _digest(arrays):
    """SHA-256 over every entry's name, dtype, shape and bytes, in sorted name order."""
    h = hashlib.sha256()
    for key in sorted(arrays):
        a = np.ascontiguousarray(arrays[key])
        h.update(f"{key}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def _plain(key, value):
    a = np.asarray(value)
    if a.dtype.kind not in "biufU":
        raise ValueError(f"checkpoint entry {key!r} must be a numeric or string array, got dtype {a.dtype}")
    return a


def rng_state_json(rng):
    """The state of a ``numpy.random.Generator`` as a JSON string (its ``bit_generator.state``)."""
    check_rng(rng, allow_none=False)
    return json.dumps(rng.bit_generator.state, default=lambda v: v.tolist() if isinstance(v, np.ndarray) else int(v))


def set_rng_state(rng, state_json):
    """Put a Generator back into the state ``rng_state_json`` recorded."""
    state = json.loads(state_json)
    name = type(rng.bit_generator).__name__
    if state.get("bit_generator") != name:
        raise CheckpointError(f"the checkpoint's random generator is {state.get('bit_generator')!r}, "
                              f"this run uses {name!r}")
    rng.bit_generator.state = state


def save_checkpoint(path, *, model, architecture=None, optimizer=None, scheduler=None, rng=None, epoch=0,
                    step=0, extra=None):
    """Write a checkpoint atomically (temporary file in the same folder, then ``os.replace``).

    Parameters
    ----------
    path : str or Path, e.g. ``runs/mnist/checkpoint.npz``
    model : Sequential
    architecture : list of layer dicts or JSON string; default: read from ``model``
    optimizer, scheduler : objects with ``state_dict()`` of plain arrays, optional
    rng : numpy.random.Generator, optional; its state is stored so shuffling resumes exactly
    epoch, step : int, completed epochs and optimizer steps
    extra : dict of str -> array or str, optional (strings are stored as 0-d unicode)
    """
    arch = architectures.to_json(model if architecture is None else architecture)
    if arch != architectures.to_json(model):
        raise ValueError("save_checkpoint: the architecture given does not describe the model")
    arrays = {"minicnn/format": np.array(FORMAT), "minicnn/version": np.array(VERSION),
              "minicnn/architecture": np.array(arch)}
    arrays.update({f"model/{k}": v for k, v in model.state_dict().items()})
    if optimizer is not None:
        arrays.update({f"optim/{k}": _plain(k, v) for k, v in optimizer.state_dict().items()})
    if scheduler is not None:
        arrays.update({f"scheduler/{k}": _plain(k, v) for k, v in scheduler.state_dict().items()})
    if rng is not None:
        arrays["rng"] = np.array(rng_state_json(rng))
    arrays["epoch"], arrays["step"] = np.array(int(epoch)), np.array(int(step))
    for k, v in (extra or {}).items():
        arrays[f"extra/{k}"] = _plain(k, v)
    arrays[_DIGEST] = np.array(_digest(arrays))

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as f:
        np.savez(f, **arrays)
    return path


class Checkpoint:
    """What ``load_checkpoint`` found, grouped: apply it with ``restore``.

    Attributes: ``architecture`` (JSON string), ``model`` / ``optim`` /
    ``scheduler`` / ``extra`` (dicts of arrays, prefixes stripped), ``rng``
    (JSON string or None), ``epoch``, ``step`` (ints), ``path``.
    """

    def __init__(self, path, arrays):
        self.path = path
        self.architecture = str(arrays["minicnn/architecture"])
        self.epoch, self.step = int(arrays["epoch"]), int(arrays["step"])
        self.rng = str(arrays["rng"]) if "rng" in arrays else None
        self.model, self.optim, self.scheduler, self.extra = {}, {}, {}, {}
        groups = {"model/": self.model, "optim/": self.optim, "scheduler/": self.scheduler, "extra/": self.extra}
        for key, value in arrays.items():
            for prefix, group in groups.items():
                if key.startswith(prefix):
                    group[key[len(prefix):]] = value

    def extra_str(self, key, default=None):
        """An ``extra`` entry saved as a string."""
        return str(self.extra[key]) if key in self.extra else default

    def restore(self, model, optimizer=None, scheduler=None, rng=None):
        """Load the saved state into a model (and optimizer, scheduler, rng when given).

        The model must have the checkpoint's architecture, and the optimizer be
        of the class (and options, e.g. momentum, amsgrad) the state was saved
        from; otherwise a ``CheckpointError`` says why and neither is changed.
        """
        check_architecture(self, model)
        before = optimizer.state_dict() if optimizer is not None else None
        try:
            if optimizer is not None:
                optimizer.load_state_dict(self.optim)
            model.load_state_dict(self.model)
        except CheckpointError:
            raise
        except ValueError as e:
            if before is not None:
                optimizer.load_state_dict(before)
            raise CheckpointError(f"{self.path} does not fit: {e}") from None
        if scheduler is not None:
            scheduler.load_state_dict(self.scheduler)
        if rng is not None:
            if self.rng is None:
                raise CheckpointError(f"{self.path} holds no random generator state")
            set_rng_state(rng, self.rng)


def check_architecture(checkpoint, expected):
    """Raise ``CheckpointError`` unless ``expected`` (spec, JSON or Sequential) is the checkpoint's network."""
    want = architectures.to_json(expected)
    if checkpoint.architecture != want:
        raise CheckpointError(
            f"{checkpoint.path} was saved from a different network:\n"
            f"  checkpoint: {architectures.describe(checkpoint.architecture)}\n"
            f"  expected:   {architectures.describe(want)}")


def _budget(architecture):
    """Bytes a checkpoint of this network may plausibly hold: 100 float64 copies of its parameters, plus 1 MiB."""
    spec = architectures.from_json(architectures.to_json(architecture))
    count = 0
    for layer in spec:
        if layer["type"] == "Conv2D":
            k = layer["kernel_size"]
            kh, kw = (k, k) if isinstance(k, int) else k
            count += layer["out_channels"] * (layer["in_channels"] * kh * kw + 1)
        elif layer["type"] == "Dense":
            count += (layer["in_features"] + 1) * layer["out_features"]
    return 100 * 8 * count + (1 << 20)


def load_checkpoint(path, architecture=None):
    """Read and verify a checkpoint written by ``save_checkpoint``.

    Parameters
    ----------
    path : str or Path
    architecture : spec, JSON string or Sequential, optional
        When given, a checkpoint of any other network is refused.

    Returns
    -------
    Checkpoint

    Raises
    ------
    CheckpointError (a ValueError) for a truncated, corrupted, modified, foreign or
    wrong-architecture file, one that is not a regular file (FIFO, device,
    directory), or one whose arrays declare more than is plausible: more than
    2 GiB, or, when ``architecture`` is given, more than 100 float64 copies of
    its parameters (checked from the zip's and the ``.npy`` headers' declared
    sizes before anything is decompressed); FileNotFoundError when there is no file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    max_bytes = npz.MAX_BYTES if architecture is None else min(npz.MAX_BYTES, _budget(architecture))
    try:
        with npz.NpzReader(path, max_bytes=max_bytes) as archive:
            keys = list(archive.shapes)
            if "minicnn/format" not in keys:
                raise CheckpointError(f"{path} is not a minicnn checkpoint (an .npz without a "
                                      f"'minicnn/format' entry; it holds {keys[:5]}{'...' if len(keys) > 5 else ''})")
            arrays = archive.read_all()
    except CheckpointError:
        raise
    except ValueError as e:
        raise CheckpointError(f"{path} is not a readable minicnn checkpoint (corrupted, truncated or not an "
                              f"npz archive): {e}") from None
    if str(arrays["minicnn/format"]) != FORMAT:
        raise CheckpointError(f"{path} is not a minicnn checkpoint: format {str(arrays['minicnn/format'])!r}")
    missing = [k for k in (*_META, _DIGEST, "epoch", "step") if k not in arrays]
    if missing:
        raise CheckpointError(f"{path} is an incomplete minicnn checkpoint: missing {missing}")
    try:
        version = int(arrays["minicnn/version"])
    except (TypeError, ValueError):
        raise CheckpointError(f"{path} has an unreadable version entry: {arrays['minicnn/version']!r}") from None
    if version > VERSION:
        raise CheckpointError(f"{path} is a version {version} minicnn checkpoint, from a newer minicnn; this one "
                              f"reads versions {OLDEST} to {VERSION}: upgrade minicnn to load it")
    if version < OLDEST:
        raise CheckpointError(f"{path} is a version {version} minicnn checkpoint; this minicnn reads versions "
                              f"{OLDEST} to {VERSION}")
    digest = str(arrays.pop(_DIGEST))
    if _digest(arrays) != digest:
        raise CheckpointError(f"{path} is corrupted: its contents do not match the SHA-256 recorded when it was saved")
    try:
        architectures.from_json(str(arrays["minicnn/architecture"]))
    except ValueError as e:
        raise CheckpointError(f"{path} has an unreadable architecture: {e}") from None
    checkpoint = Checkpoint(path, arrays)
    if architecture is not None:
        check_architecture(checkpoint, architecture)
    return checkpoint


def load_model(path):
    """``(model, checkpoint)``: the network a checkpoint describes, with its weights (and buffers), in eval mode."""
    checkpoint = load_checkpoint(path)
    model = architectures.build_model(checkpoint.architecture)
    checkpoint.restore(model)
    return model.eval(), checkpoint


def trained_on(checkpoint):
    """``(dataset, mean, std)``: the data set a run trained on and the normalisation of its inputs.

    From the run's saved config and normalisation; runs that saved neither trained on MNIST with its mean and std.
    """
    config = _json_or(checkpoint.extra_str("config"), {})
    dataset = str(config.get("dataset", "mnist")) if isinstance(config, dict) else "mnist"
    norm = _json_or(checkpoint.extra_str("normalization"), None)
    if isinstance(norm, dict) and {"mean", "std"} <= set(norm):
        return dataset, float(norm["mean"]), float(norm["std"])
    if dataset not in DATASETS:
        raise CheckpointError(f"{checkpoint.path} was trained on {dataset!r}, which this minicnn does not know")
    spec = DATASETS[dataset].spec
    return dataset, spec.mean, spec.std


def _json_or(text, default):
    try:
        return json.loads(text) if text else default
    except json.JSONDecodeError:
        return default
