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
import math
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
                    step=0, extra=None, before_replace=None):
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
    before_replace : optional callable run once the file is completely written, right before it replaces ``path``
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
    with atomic_write(path, before_replace) as f:
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


# What the metadata entries must be, checked in the .npy headers before any of them is read:
# (dtype kinds, most bytes).  Text is 0-d unicode; numbers are 0-d ints.
_TEXT, _NUMBER = ("U", 1 << 20), ("iu", 8)
_HEADERS = {"minicnn/format": _TEXT, "minicnn/version": _NUMBER, "minicnn/architecture": _TEXT,
            _DIGEST: _TEXT, "epoch": _NUMBER, "step": _NUMBER, "rng": _TEXT}


def load_checkpoint(path, architecture=None, *, weights_only=False):
    """Read and verify a checkpoint written by ``save_checkpoint``: the one reader every tool goes through.

    Parameters
    ----------
    path : str or Path
    architecture : spec, JSON string or Sequential, optional
        When given, a checkpoint of any other network is refused.
    weights_only : bool
        True, for tools that only use the network: keep the weights, buffers and text entries (the run's
        config, normalisation, history); every other entry (optimizer state, ...) is verified but not kept.

    Returns
    -------
    Checkpoint

    The checks run from cheap to costly, so a crafted file is refused before it costs memory:

    1. the zip's and every ``.npy`` header's declared sizes (nothing decompressed; see ``minicnn.data.npz``);
    2. the metadata entries: present, of the right kind and small; then read (a few bytes) and checked:
       format, version, the architecture JSON;
    3. the parameter and buffer shapes the architecture declares, computed from its arguments
       (``architectures.state_shapes``, nothing allocated), against the ``model/`` entries' headers:
       the same names, the same shapes, floating-point dtypes; the optimizer's per-parameter state too;
    4. the SHA-256 over every entry, streamed a block at a time: only the arrays kept are ever whole
       in memory, so peak memory is those arrays plus one block;
    5. every weight, buffer and optimizer array finite.

    Raises
    ------
    CheckpointError (a ValueError), one line naming the file and, where there is one, the entry, for a
    truncated, corrupted, modified, foreign or wrong-architecture file, one that is not a regular file
    (FIFO, device, directory), one whose arrays declare more than 2 GiB (or, when ``architecture`` is
    given, more than 100 float64 copies of its parameters), whose declared network is not what it stores,
    or whose weights are not finite floating-point numbers; FileNotFoundError when there is no file.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {path}")
    max_bytes = npz.MAX_BYTES if architecture is None else min(npz.MAX_BYTES, _budget(architecture))
    try:
        with npz.NpzReader(path, max_bytes=max_bytes) as archive:
            meta = _read_metadata(path, archive)
            shapes = _declared_state(path, archive, meta["minicnn/architecture"])
            _check_stored_state(path, archive, shapes)
            keep = {k for k in archive.shapes
                    if not weights_only or k.startswith("model/") or archive.dtypes[k].kind == "U"}
            arrays = _verify_digest(path, archive, meta, keep)
    except CheckpointError:
        raise
    except ValueError as e:
        raise CheckpointError(f"{path} is not a readable minicnn checkpoint (corrupted, truncated or not an "
                              f"npz archive): {e}") from None
    for key, value in arrays.items():
        if key.startswith(("model/", "optim/")) and value.dtype.kind == "f":
            _check_finite(path, key, value)
    checkpoint = Checkpoint(path, arrays)
    if architecture is not None:
        check_architecture(checkpoint, architecture)
    return checkpoint


def _read_metadata(path, archive):
    """The metadata entries, checked in their headers first and then read: ``{name: array}``."""
    names = list(archive.shapes)
    if "minicnn/format" not in names:
        raise CheckpointError(f"{path} is not a minicnn checkpoint (an .npz without a 'minicnn/format' entry; "
                              f"it holds {names[:5]}{'...' if len(names) > 5 else ''})")
    for key, (kinds, most) in _HEADERS.items():
        if key not in names:
            continue
        shape, dtype = archive.shapes[key], archive.dtypes[key]
        if shape != () or dtype.kind not in kinds or dtype.itemsize > most:
            want = "a text" if kinds == "U" else "an integer"
            raise CheckpointError(f"{path}: entry {key!r} must be {want} (a 0-d array of at most {most} bytes), "
                                  f"got {dtype} of shape {shape}")
    form = str(archive.read("minicnn/format"))
    if form != FORMAT:
        raise CheckpointError(f"{path} is not a minicnn checkpoint: format {form!r}")
    missing = [k for k in (*_META, _DIGEST, "epoch", "step") if k not in names]
    if missing:
        raise CheckpointError(f"{path} is an incomplete minicnn checkpoint: missing {missing}")
    meta = {key: archive.read(key) for key in _HEADERS if key in names}
    version = int(meta["minicnn/version"])
    if version > VERSION:
        raise CheckpointError(f"{path} is a version {version} minicnn checkpoint, from a newer minicnn; this one "
                              f"reads versions {OLDEST} to {VERSION}: upgrade minicnn to load it")
    if version < OLDEST:
        raise CheckpointError(f"{path} is a version {version} minicnn checkpoint; this minicnn reads versions "
                              f"{OLDEST} to {VERSION}")
    return meta


def _declared_state(path, archive, architecture):
    """``{name: shape}`` of the parameters and buffers the stored architecture declares (nothing allocated)."""
    try:
        return architectures.state_shapes(str(architecture))
    except ValueError as e:
        raise CheckpointError(f"{path} has an unreadable architecture: {e}") from None


def _check_stored_state(path, archive, declared):
    """The ``model/`` entries' headers must be exactly the declared network, in floating point; the
    optimizer's per-parameter state must have its parameter's shape."""
    stored = {k[len("model/"):]: archive.shapes[k] for k in archive.shapes if k.startswith("model/")}
    count = lambda shapes: sum(math.prod(s) for s in shapes.values())
    if stored != declared:
        wrong = next((k for k in declared if k in stored and stored[k] != declared[k]), None)
        if wrong is not None:
            detail = (f"entry 'model/{wrong}' holds shape {stored[wrong]}, the architecture declares "
                      f"{declared[wrong]}")
        else:
            missing, unexpected = sorted(set(declared) - set(stored)), sorted(set(stored) - set(declared))
            detail = (f"missing {['model/' + k for k in missing]}" if missing else "") + \
                     ("; " if missing and unexpected else "") + \
                     (f"unexpected {['model/' + k for k in unexpected]}" if unexpected else "")
        raise CheckpointError(f"{path}: its architecture declares {count(declared):,} weights and buffers, the "
                              f"file stores {count(stored):,}: {detail}; refusing to build that network")
    for key in archive.shapes:
        dtype = archive.dtypes[key]
        if key.startswith("model/") and dtype.kind != "f":
            raise CheckpointError(f"{path}: entry {key!r} holds {dtype}; weights and buffers must be "
                                  f"floating-point numbers")
        slot, _, name = key[len("optim/"):].partition("/")
        if key.startswith("optim/") and name:
            if name not in declared or archive.shapes[key] != declared[name] or dtype.kind != "f":
                raise CheckpointError(f"{path}: entry {key!r} ({dtype} {archive.shapes[key]}) does not fit the "
                                      f"network: expected floating-point numbers of the shape of 'model/{name}' "
                                      f"({declared.get(name, 'no such parameter')})")


def _verify_digest(path, archive, meta, keep):
    """Hash every entry in sorted order (as ``_digest`` does), a block at a time; return the kept arrays."""
    h = hashlib.sha256()
    arrays = {}
    for key in sorted(archive.shapes):
        if key == _DIGEST:
            continue
        dtype, shape = archive.dtypes[key], archive.shapes[key] or (1,)  # _digest's ascontiguousarray: 0-d -> (1,)
        h.update(f"{key}|{dtype.str}|{shape}|".encode())
        if key in meta or key in keep:
            arrays[key] = meta[key] if key in meta else archive.read(key)
            h.update(np.ascontiguousarray(arrays[key]).tobytes())
        else:
            archive.stream(key, h.update)
    if h.hexdigest() != str(meta[_DIGEST]):
        raise CheckpointError(f"{path} is corrupted: its contents do not match the SHA-256 recorded when it was saved")
    return arrays


def _check_finite(path, key, value, block=1 << 20):
    flat = value.reshape(-1)
    bad = 0
    for start in range(0, flat.size, block):     # a block at a time: the check holds no array of the weights' size
        chunk = flat[start:start + block]
        bad += chunk.size - int(np.count_nonzero(np.isfinite(chunk)))
    if bad:
        raise CheckpointError(f"{path}: entry {key!r} holds {bad} NaN or infinite values out of {flat.size}; "
                              f"the run that wrote it diverged, or the file was edited")


def load_model(path):
    """``(model, checkpoint)``: the network a checkpoint describes, with its weights (and buffers), in eval mode.

    Goes through ``load_checkpoint`` (every check before the network is built), keeping only the weights.
    """
    checkpoint = load_checkpoint(path, weights_only=True)
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


def recorded_inputs(checkpoint):
    """What a checkpoint records about its inputs: ``{"input_shape", "mean", "std", "classes"}``, None where it does not.

    A run of ``minicnn train`` records its data set in its config (runs saved before the
    ``--dataset`` option were MNIST runs) and its normalisation; the data set gives the input shape
    ``(1, H, W)`` and the class names.  A checkpoint saved without a config records neither (only a
    normalisation, when it has one): nothing is assumed for it.
    """
    found = {"input_shape": None, "mean": None, "std": None, "classes": None}
    config = _json_or(checkpoint.extra_str("config"), None)
    if isinstance(config, dict):
        dataset = str(config.get("dataset", "mnist"))
        if dataset not in DATASETS:
            raise CheckpointError(f"{checkpoint.path} was trained on {dataset!r}, which this minicnn does not know "
                                  f"(it knows {sorted(DATASETS)})")
        spec = DATASETS[dataset].spec
        found.update(input_shape=(1, *spec.shapes["train_images"][1:]), mean=spec.mean, std=spec.std,
                     classes=tuple(spec.class_names))
    norm = _json_or(checkpoint.extra_str("normalization"), None)
    if isinstance(norm, dict) and {"mean", "std"} <= set(norm):
        found.update(mean=float(norm["mean"]), std=float(norm["std"]))
    return found


def _json_or(text, default):
    try:
        return json.loads(text) if text else default
    except json.JSONDecodeError:
        return default
