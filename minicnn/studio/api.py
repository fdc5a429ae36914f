"""The studio's endpoints as plain functions: a dict in, a dict out; every number the page shows comes from here.

Each endpoint is a thin layer over the functions the command line uses:

    GET  /api/info       what there is: the checkpoint's file name, the presets, the convolutions and their kernels
    POST /api/convolve   {image, kernel, stride, padding} -> every step of ``minicnn.edges.explain.slide``
    POST /api/kernel     {layer, filter, channel} -> one learned kernel of the checkpoint
    POST /api/predict    {png} -> the 28x28 the network sees (``minicnn.analysis.images``), the top 3 classes
                         (``views.predict``), the feature maps (``views.featuremaps``), the saliency (``views.saliency``)
    POST /api/crop       {png} -> a crop of the drawing, as a small grid for the stepper
    GET  /api/kernels    the first-layer kernels beside their best match (``edges.inspect_kernels``) and, when the
                         run kept them, their snapshots during training (``edges.evolution``)
    GET  /api/curves     the run's loss and accuracy per epoch (``views.curves``)
    POST /api/train/new  {task, seed, lr} -> a fresh network (``minicnn.studio.trainer``); its session id
    POST /api/train/step {session, steps} -> train that many steps; kernels, losses, similarities
    POST /api/train/at   {session, step} -> the kernels and loss as they were after that step (kept snapshots)
    POST /api/backward   {image, kernel | random_seed, lr, sgd_steps, nudge} -> the Sobel task's backward pass
                         cell by cell (``minicnn.edges.backprop``: every number from Conv2D.forward/backward)

Bad input raises :class:`ApiError` (status 400, 404 or 413 with a message for the page); nothing here reads a
file a request names: the checkpoint and the data folder are fixed when the studio starts.  Training sessions
have random ids (``secrets``); a drawing's size is read from its PNG header and checked before it is decoded.
The endpoints in ``HEAVY`` are the ones the server lets run only a few at a time.
"""
import base64
import binascii
import io
import json
import math
import secrets
import threading
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np

from minicnn.analysis.common import Run
from minicnn.analysis.curves import curves, read_history
from minicnn.analysis.featuremaps import feature_maps
from minicnn.analysis.images import PNG_SIGNATURE, decode_grayscale, mnist_like
from minicnn.analysis.predict import top_classes
from minicnn.analysis.saliency import input_gradient
from minicnn.data.fetch import DATASETS
from minicnn.data.home import dataset_root
from minicnn.edges import backprop
from minicnn.edges.evolution import read_snapshots, similarities
from minicnn.edges.explain import EXAMPLES, check_against_conv2d, format_numbers, output_size, slide
from minicnn.edges.filters import get_kernel
from minicnn.edges.inspect_kernels import describe_kernels, match_records
from minicnn.nn import ops
from minicnn.nn.conv import Conv2D
from minicnn.studio.trainer import DEFAULT_LR, MNIST_IMAGES, TASKS, Trainer

DEFAULT_CHECKPOINT = Path("runs/mnist/checkpoint.npz")
HINT = ("no checkpoint: train one with 'minicnn train' (it writes runs/mnist/checkpoint.npz), "
        "then start 'minicnn studio' again; the convolution stepper and 'Learn it yourself' work without one")
IMAGE_PRESETS = {"small": EXAMPLES["small"]["image"], "step": EXAMPLES["step"]["image"]}
# the kernels offered by name, in the menu's order, each named by what it does (the two edge kernels of the
# course are negatives of each other: 002's [1, 0, -1] and 000's and 004's [-1, 0, 1])
KERNEL_PRESETS = {
    "edge_bright_left": ([[1, 0, -1]] * 3, "bright on the left: 1, 0, -1 in each row (chapter 002)"),
    "edge_bright_right": ([[-1, 0, 1]] * 3, "bright on the right: -1, 0, 1 in each row (chapters 000, 004)"),
    "sobel_x": (get_kernel("sobel_x", np.float64).tolist(), "Sobel x: bright on the right, middle row doubled (003)"),
    "sobel_y": (get_kernel("sobel_y", np.float64).tolist(), "Sobel y: bright below"),
    "box_blur": (get_kernel("box_blur", np.float64).round(6).tolist(), "blur: the mean of the window"),
    "gaussian": (get_kernel("gaussian", np.float64).tolist(), "Gaussian blur (001)"),
    "sharpen": (get_kernel("sharpen", np.float64).tolist(), "sharpen (001)"),
}
KERNEL_ALIASES = {"edge_vertical": "edge_bright_right"}   # the older name, still opened by links that carry it
EXAMPLE_KERNELS = {"small": "edge_bright_left", "step": "sobel_x"}   # each example opens with its chapter's kernel
MAX_IMAGE_SIDE = 16     # the stepper's image, in cells
MAX_KERNEL_SIDE = 7
MAX_STRIDE, MAX_PADDING = 8, 8
MAX_VALUE = 1e6         # largest |number| in a grid
MAX_TRAIN_STEPS = 500   # per "train" request
TRAIN_BUDGET = 2.0      # seconds of training per request, at most
MAX_SESSIONS = 16       # training sessions kept (the least recently used goes first)
MAX_SGD_STEPS = 500     # SGD steps of the backward stepper, replayed from the first kernel at each request
HEAVY = ("/api/predict", "/api/crop", "/api/train/new", "/api/train/step")   # the endpoints that compute for long
MAX_PNG_BYTES = 512 * 1024
MAX_DRAWING_SIDE = 1024
CROP_SIDE = 10


class ApiError(ValueError):
    """A request the studio cannot answer: ``status`` (400, 404, 409) and a message saying what was expected."""

    def __init__(self, message, status=400):
        super().__init__(message)
        self.status = status


# ---------------------------------------------------------------- checking what a request holds

def _shown(value):
    """A value as the page sent it, in JSON's words (null, true, "text"), short."""
    try:
        text = json.dumps(value)
    except (TypeError, ValueError):
        text = type(value).__name__
    return text if len(text) <= 40 else text[:37] + "..."


def _field(body, key):
    if not isinstance(body, dict):
        raise ApiError(f"expected a JSON object, got {type(body).__name__}")
    if key not in body:
        raise ApiError(f"missing field {key!r}")
    return body[key]


def _int(body, key, lo, hi, default=None):
    value = body.get(key, default) if isinstance(body, dict) and default is not None else _field(body, key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ApiError(f"{key} must be a whole number from {lo} to {hi}, got {_shown(value)}")
    if not lo <= value <= hi:
        raise ApiError(f"{key} must be from {lo} to {hi}, got {value}")
    return value


def _number(body, key, lo, hi, default=None):
    value = body.get(key, default) if isinstance(body, dict) and default is not None else _field(body, key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ApiError(f"{key} must be a finite number from {lo} to {hi}, got {_shown(value)}")
    if not lo <= value <= hi:
        raise ApiError(f"{key} must be from {lo} to {hi}, got {value}")
    return float(value)


def _matrix(body, key, max_side):
    """A rectangular list of lists of finite numbers, 1..max_side each way -> float64 (H, W)."""
    value = _field(body, key)
    expected = f"{key} must be a list of 1 to {max_side} rows of 1 to {max_side} numbers each"
    if not isinstance(value, list) or not 1 <= len(value) <= max_side:
        raise ApiError(f"{expected}, got " + (f"{len(value)} rows" if isinstance(value, list) else _shown(value)))
    if not all(isinstance(row, list) and 1 <= len(row) <= max_side for row in value):
        raise ApiError(f"{expected}: every row a list of 1 to {max_side} numbers")
    if len({len(row) for row in value}) != 1:
        raise ApiError(f"{key} rows must all have the same length, got lengths {[len(r) for r in value]}")
    for r, row in enumerate(value, 1):
        for c, v in enumerate(row, 1):
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or abs(v) > MAX_VALUE:
                raise ApiError(f"{key}: row {r}, column {c} must be a number of at most {MAX_VALUE:g} in size, "
                               f"got {_shown(v)}")
    return np.array(value, dtype=np.float64)


def _png(body, key="png"):
    """A PNG sent as base64 (a ``data:image/png;base64,...`` URL or the bare base64) -> grayscale (H, W)."""
    value = _field(body, key)
    if not isinstance(value, str):
        raise ApiError(f"{key} must be a PNG as a base64 string (canvas.toDataURL()), got {type(value).__name__}")
    if value.startswith("data:"):
        head, _, value = value.partition(",")
        if head != "data:image/png;base64":
            raise ApiError(f"{key} must be a data:image/png;base64 URL, got one starting {head[:40]!r}")
    try:
        data = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(f"{key} is not valid base64") from None
    if len(data) > MAX_PNG_BYTES:
        raise ApiError(f"{key} holds {len(data)} bytes; at most {MAX_PNG_BYTES} are accepted", 413)
    if not data.startswith(PNG_SIGNATURE):
        raise ApiError(f"{key} is not a PNG picture")
    try:  # the size is read from the PNG's header, and a drawing too large is refused before any pixel is decoded
        return decode_grayscale(io.BytesIO(data), "the drawing", max_side=MAX_DRAWING_SIDE)
    except ValueError as e:
        raise ApiError(str(e)) from None


def _rounded(a, decimals=5):
    return np.round(np.asarray(a, dtype=np.float64), decimals).tolist()


def _finite_or_none(values):
    return [None if not math.isfinite(v) else v for v in (float(x) for x in values)]


# ---------------------------------------------------------------- the studio

class Studio:
    """Everything the page asks for, computed by minicnn.

    Parameters
    ----------
    checkpoint : path of a checkpoint (or its run folder), or None for none; fixed for the studio's life
    data_root : the MNIST folder for the "Learn it yourself" MNIST task (default: the data set's default folder)
    engine : the implementation every endpoint computes on (``minicnn.nn.ops``; "fast" by default); each
        answer names it under ``"engine"``
    """

    def __init__(self, checkpoint=None, data_root=None, engine="fast"):
        if engine not in ops.implementations():
            raise ValueError(f"engine must be one of {ops.implementations()}, got {engine!r}")
        self.engine = engine
        self.run = Run(checkpoint) if checkpoint is not None else None
        self.metrics_path = None
        if self.run is not None and (self.run.path.parent / "metrics.json").is_file():
            self.metrics_path = self.run.path.parent / "metrics.json"
        self.data_root = dataset_root(DATASETS["mnist"].spec, data_root)
        self._model_lock = threading.Lock()      # the checkpoint's model keeps each forward's inputs for backward
        self._sessions = OrderedDict()           # id -> (lock, Trainer)
        self._sessions_lock = threading.Lock()
        self._mnist, self._mnist_lock = None, threading.Lock()
        self.routes = {key: self._on_engine(endpoint) for key, endpoint in {
            ("GET", "/api/info"): self.info,
            ("POST", "/api/convolve"): self.convolve,
            ("POST", "/api/kernel"): self.kernel,
            ("POST", "/api/predict"): self.predict,
            ("POST", "/api/crop"): self.crop,
            ("GET", "/api/kernels"): self.kernels,
            ("GET", "/api/curves"): self.curves,
            ("POST", "/api/train/new"): self.train_new,
            ("POST", "/api/train/step"): self.train_step,
            ("POST", "/api/train/at"): self.train_at,
            ("POST", "/api/backward"): self.backward,
        }.items()}

    def _on_engine(self, endpoint):
        """The endpoint run on the studio's engine (``minicnn.nn.ops``), its answer saying which code computed it."""
        def answer(body=None):
            with ops.use_engine(self.engine):
                result = endpoint(body)
                if isinstance(result, dict):
                    result = {**result, "engine": ops.describe(ops.OPS)}
            return result
        answer.__name__ = endpoint.__name__
        return answer

    def _need_run(self):
        if self.run is None:
            raise ApiError(HINT, 409)
        return self.run

    # ------------------------------------------------------------ info

    def info(self, body=None):
        layers = []
        if self.run is not None:
            for i, layer in enumerate(self.run.model.layers):
                if isinstance(layer, Conv2D):
                    F, C, KH, KW = layer.params["W"].shape
                    layers.append({"layer": i, "filters": F, "channels": C, "height": KH, "width": KW})
        return {
            "checkpoint": self.run.path.name if self.run is not None else None,   # its name: where it lives is no page's business
            "hint": None if self.run is not None else HINT,
            "classes": list(self.run.classes) if self.run is not None else None,
            "dataset": self.run.dataset if self.run is not None else None,
            "metrics": self.metrics_path is not None,
            "images": IMAGE_PRESETS,
            "kernels": {name: grid for name, (grid, _) in KERNEL_PRESETS.items()},
            "kernel_labels": {name: label for name, (_, label) in KERNEL_PRESETS.items()},
            "kernel_aliases": KERNEL_ALIASES,
            "example_kernels": EXAMPLE_KERNELS,
            "conv_layers": layers,
            "sessions": len(self._sessions),   # training sessions kept now (their ids stay with the pages that made them)
            "tasks": {task: {"lr": DEFAULT_LR[task]} for task in TASKS},
            "limits": {"image_side": MAX_IMAGE_SIDE, "kernel_side": MAX_KERNEL_SIDE, "stride": MAX_STRIDE,
                       "padding": MAX_PADDING, "train_steps": MAX_TRAIN_STEPS, "sgd_steps": MAX_SGD_STEPS},
        }

    # ------------------------------------------------------------ the convolution stepper

    def convolve(self, body):
        """Every step of sliding ``kernel`` over ``image``: window, products, the sum written out, the output.

        Returns ``fits: False`` and an ``explanation`` in words when the kernel does not fit.
        """
        image = _matrix(body, "image", MAX_IMAGE_SIDE)
        kernel = _matrix(body, "kernel", MAX_KERNEL_SIDE)
        stride = _int(body, "stride", 1, MAX_STRIDE)
        padding = _int(body, "padding", 0, MAX_PADDING)
        (H, W), (KH, KW) = image.shape, kernel.shape
        H_out, W_out = output_size(H, KH, stride, padding), output_size(W, KW, stride, padding)
        formula = {
            "rows": f"floor(({H} + 2*{padding} - {KH}) / {stride}) + 1 = {H_out}",
            "cols": f"floor(({W} + 2*{padding} - {KW}) / {stride}) + 1 = {W_out}",
        }
        result = {"formula": formula, "padded": np.pad(image, padding).tolist(), "input_shape": [H, W],
                  "kernel_shape": [KH, KW], "stride": stride, "padding": padding}
        if H_out < 1 or W_out < 1:
            side, n, k = ("tall", H, KH) if H_out < 1 else ("wide", W, KW)
            result.update(fits=False, explanation=(
                f"impossible: the {KH}x{KW} kernel is {k} cells {side}, but the image padded with {padding} "
                f"ring(s) of zeros is only {n + 2 * padding} ({n} + 2*{padding}), so the window fits nowhere "
                f"and the output would have {min(H_out, W_out)} cells that way. Add padding, or use a smaller "
                f"kernel or a larger image."))
            return result
        notes = []
        for what, n, k, out in (("rows", H, KH, H_out), ("columns", W, KW, W_out)):
            left = (n + 2 * padding - k) % stride
            if left:
                notes.append(f"the last {left} padded {what} are never covered: floor rounds down "
                             f"({n + 2 * padding - k} is not a multiple of the stride {stride})")
        steps, fmap = [], np.zeros((H_out, W_out))
        for step in slide(image, kernel, stride, padding):
            fmap[step.row, step.col] = step.total
            f = format_numbers(step.products)  # as explain writes them: integers bare, others with up to 4 decimals
            terms = " + ".join(f(v) if v >= 0 else f"({f(v)})" for v in step.products.ravel())
            steps.append({"row": step.row, "col": step.col, "top": step.row * stride, "left": step.col * stride,
                          "products": step.products.round(10).tolist(), "total": round(step.total, 10),
                          "product_texts": [f(v) for v in step.products.ravel()],
                          "text": f"{terms} = {f(step.total)}", "total_text": f(step.total)})
        difference = check_against_conv2d(image, kernel, stride, padding, fmap)
        result.update(fits=True, output_shape=[H_out, W_out], steps=steps, output=fmap.round(10).tolist(),
                      output_texts=[[format_numbers(fmap)(v) for v in row] for row in fmap], notes=notes,
                      conv2d_max_difference=difference)
        return result

    def kernel(self, body):
        """One learned kernel of the checkpoint: ``{layer, filter, channel}`` -> (KH, KW)."""
        run = self._need_run()
        layer = _int(body, "layer", 0, len(run.model.layers) - 1)
        conv = run.model.layers[layer]
        if not isinstance(conv, Conv2D):
            convs = [i for i, lay in enumerate(run.model.layers) if isinstance(lay, Conv2D)]
            raise ApiError(f"layer {layer} is a {type(conv).__name__}, not a convolution; the convolutions are "
                           f"layers {', '.join(map(str, convs))}")
        F, C = conv.params["W"].shape[:2]
        f = _int(body, "filter", 0, F - 1)
        c = _int(body, "channel", 0, C - 1, default=0) if C > 1 else _int(body, "channel", 0, 0, default=0)
        with self._model_lock:
            k = conv.params["W"][f, c].astype(np.float64)
        return {"layer": layer, "filter": f, "channel": c, "kernel": k.round(4).tolist(),
                "label": f"layer {layer}, filter {f}" + (f", channel {c}" if C > 1 else "")}

    # ------------------------------------------------------------ draw a digit

    def _prepared(self, body):
        gray = _png(body)
        try:
            return mnist_like(gray)
        except ValueError as e:
            raise ApiError(f"the drawing: {e}") from None

    def predict(self, body):
        """A drawing -> what the network sees, its top 3 classes, every convolution's maps and the saliency."""
        run = self._need_run()
        start = time.perf_counter()
        raw = self._prepared(body)
        x = run.prepare(raw[None])
        with self._model_lock:
            classes, probs = top_classes(run.model, x)
            maps = feature_maps(run.model, x)[1:]
            logits, cls, grad = input_gradient(run.model, x)
        heat = np.abs(grad).max(axis=0)  # (H, W): the largest over input channels, as the saliency command
        return {
            "image": raw.tolist(),
            "top": [{"class": int(c), "name": run.classes[c], "probability": round(float(p), 6)}
                    for c, p in zip(classes, probs)],
            "featuremaps": [{"name": name, "shape": list(m.shape), "maps": _rounded(m, 3)} for name, m in maps],
            "saliency": {"class": int(cls), "name": run.classes[cls], "gradient": _rounded(grad[0], 8),
                         "magnitude": _rounded(heat, 8)},
            "seconds": round(time.perf_counter() - start, 4),
        }

    def crop(self, body):
        """The middle ``CROP_SIDE`` x ``CROP_SIDE`` of the drawing as the network sees it, scaled to 0..9."""
        raw = self._prepared(body)
        top = (raw.shape[0] - CROP_SIDE) // 2
        window = raw[top:top + CROP_SIDE, top:top + CROP_SIDE].astype(np.float64)
        return {"image": np.round(window / 255 * 9).astype(int).tolist(),
                "about": f"rows and columns {top}..{top + CROP_SIDE - 1} of the 28x28 drawing, 0..255 scaled to 0..9"}

    # ------------------------------------------------------------ kernels and curves of the run

    def kernels(self, body=None):
        run = self._need_run()
        first = next(i for i, lay in enumerate(run.model.layers) if isinstance(lay, Conv2D))
        with self._model_lock:
            W = run.model.layers[first].params["W"].astype(np.float64)
        _, matches = describe_kernels(W)
        records = match_records(W, matches)
        for record, m in zip(records, matches):
            record["reference"] = m.reference().tolist() if m is not None else None
        out = {"layer": first, "shape": list(W.shape), "kernels": records, "evolution": None}
        if self.metrics_path is not None:
            try:
                labels, snaps = read_snapshots(self.metrics_path)
            except ValueError as e:
                out["evolution_missing"] = str(e)
            else:
                out["evolution"] = [{"label": label, "kernels": snap.tolist(),
                                     "matches": [{"label": m.label, "similarity": round(m.similarity, 6)} for m in ms]}
                                    for label, snap, ms in zip(labels, snaps, similarities(snaps))]
        return out

    def curves(self, body=None):
        self._need_run()
        if self.metrics_path is None:
            raise ApiError(f"the run {self.run.path.parent.name} has no metrics.json beside its {self.run.path.name}", 409)
        try:
            c = curves(read_history(self.metrics_path))
        except ValueError as e:
            raise ApiError(str(e), 409) from None
        return {key: _finite_or_none(values) for key, values in c.items()}

    # ------------------------------------------------------------ learn it yourself

    def _mnist_data(self):
        with self._mnist_lock:
            if self._mnist is None:
                known = DATASETS["mnist"]
                try:
                    images, labels, _, _ = known.load(self.data_root, download=False)
                except (ValueError, OSError) as e:
                    raise ApiError(f"MNIST is not at {self.data_root} ({e}); fetch it with "
                                   f"'minicnn fetch mnist', or start the studio with --data DIR", 409) from None
                x = ((images[:MNIST_IMAGES].astype(np.float32) / 255 - known.spec.mean) / known.spec.std)[:, None]
                self._mnist = (x.astype(np.float32), labels[:MNIST_IMAGES].astype(np.int64))
            return self._mnist

    def train_new(self, body):
        """A fresh network for ``task`` from ``seed`` (0..2**32-1) with learning rate ``lr``; its session id."""
        task = _field(body, "task")
        if task not in TASKS:
            raise ApiError(f"task must be one of {', '.join(TASKS)}, got {_shown(task)}")
        seed = _int(body, "seed", 0, 2**32 - 1)
        lr = _number(body, "lr", 1e-5, 1.0)
        trainer = Trainer(task, seed, lr, mnist=self._mnist_data() if task == "mnist" else None)
        with self._sessions_lock:
            session = secrets.token_urlsafe(16)   # unguessable: only the page that made it can drive it
            self._sessions[session] = (threading.Lock(), trainer)
            while len(self._sessions) > MAX_SESSIONS:
                self._sessions.popitem(last=False)
        return {"session": session, **self._train_state(trainer, [])}

    def train_step(self, body):
        """Train session ``session`` for ``steps`` (1..MAX_TRAIN_STEPS) steps, or until TRAIN_BUDGET seconds pass."""
        _field(body, "session")
        steps = _int(body, "steps", 1, MAX_TRAIN_STEPS)
        lock, trainer = self._session(body)
        session = body["session"]
        losses = []
        with lock:
            start = time.perf_counter()
            try:
                for _ in range(steps):
                    losses.append(trainer.step())
                    if time.perf_counter() - start > TRAIN_BUDGET:
                        break
            except ValueError as e:
                raise ApiError(str(e)) from None
            seconds = time.perf_counter() - start
            return {"session": session, "seconds": round(seconds, 4), **self._train_state(trainer, losses)}

    def _session(self, body):
        session = _field(body, "session")
        with self._sessions_lock:
            entry = self._sessions.get(session) if isinstance(session, str) else None
            if entry is not None:
                self._sessions.move_to_end(session)
        if entry is None:
            raise ApiError(f"no training session {_shown(session)} (the studio keeps the last {MAX_SESSIONS}); "
                           f"press Reset to start a new one", 404)
        return entry

    def train_at(self, body):
        """The kernels and the loss of session ``session`` as they were after ``step`` steps (0 = the start):
        the snapshot the trainer kept then, so the scrubber shows exactly what training showed."""
        lock, trainer = self._session(body)
        with lock:
            step = _int(body, "step", 0, trainer.steps)
            if step >= len(trainer.snapshots):
                raise ApiError(f"step {step} is past the {len(trainer.snapshots) - 1} steps whose kernels were kept")
            kernels, loss = trainer.snapshots[step]
            return {"step": step, "steps": trainer.steps, "loss": None if loss is None else _significant(loss),
                    **self._kernel_state(trainer, kernels)}

    @staticmethod
    def _kernel_state(trainer, kernels):
        matches = trainer.matches(kernels)
        return {"kernels": kernels.round(5).tolist(),
                "matches": [{"label": m["label"], "similarity": round(m["similarity"], 6)} for m in matches],
                "median_similarity": round(float(np.median([abs(m["similarity"]) for m in matches])), 6)}

    def _train_state(self, trainer, losses):
        return {"task": trainer.task, "seed": trainer.seed, "lr": trainer.lr, "step": trainer.steps,
                "losses": [_significant(v) for v in losses], **self._kernel_state(trainer, trainer.kernels())}

    # ------------------------------------------------------------ the backward stepper

    def backward(self, body):
        """The Sobel task's backward pass on one image, cell by cell (``minicnn.edges.backprop``).

        ``image`` (3..16 a side), a 3x3 ``kernel`` (or ``random_seed``: a kernel of N(0, 1) numbers, 2 decimals),
        ``lr`` (default: a round one below the image's ``stable_lr``, ``backprop.suggested_lr``) and
        ``sgd_steps`` (the kernel shown is the one after that many SGD steps from the given one),
        and optionally ``nudge`` ``{row, col, eps}``: the loss with that weight moved by +-eps.
        """
        image = _matrix(body, "image", MAX_IMAGE_SIDE)
        if min(image.shape) < 3:
            raise ApiError(f"image must be at least 3x3 for a 3x3 kernel, got {image.shape[0]}x{image.shape[1]}")
        if isinstance(body, dict) and "random_seed" in body and "kernel" not in body:
            seed = _int(body, "random_seed", 0, 2**32 - 1)
            start = np.random.default_rng(seed).normal(0.0, 1.0, (3, 3)).round(2)
        else:
            start = _matrix(body, "kernel", MAX_KERNEL_SIDE)
        if start.shape != (3, 3):
            raise ApiError(f"kernel must be 3x3 (the loss compares its map with Sobel x's, a 3x3 kernel), got "
                           f"{start.shape[0]}x{start.shape[1]}")
        stable = backprop.stable_lr(image)
        lr = _number(body, "lr", 1e-5, 1.0) if "lr" in body else max(1e-5, backprop.suggested_lr(image))
        sgd_steps = _int(body, "sgd_steps", 0, MAX_SGD_STEPS, default=0) if "sgd_steps" in body else 0
        try:
            path = backprop.sgd_path(image, start, lr, sgd_steps + 1)
        except ValueError as e:
            raise ApiError(str(e)) from None
        kernel, _, cosine = path[sgd_steps]
        b = backprop.backward(image, kernel)
        f = _four

        def cell(c):
            return {"row": c.row, "col": c.col, "top": c.top, "left": c.left, "products": c.products.tolist(),
                    "product_texts": [f(v) for v in c.products.ravel()], "total": c.total,
                    "text": " + ".join(f(v) if v >= 0 else f"({f(v)})" for v in c.products.ravel()) + f" = {f(c.total)}"}

        after, loss_after, cosine_after = path[sgd_steps + 1]
        result = {
            "image": image.tolist(), "initial_kernel": start.tolist(), "kernel": kernel.tolist(),
            "sobel": get_kernel(backprop.TARGET, np.float64).tolist(), "flipped": backprop.flipped(kernel).tolist(),
            "fmap": b.fmap.tolist(), "target": b.target.tolist(), "loss": b.loss, "delta": b.delta.tolist(),
            "delta_padded": backprop.padded_delta(b).tolist(), "dW": b.dW.tolist(), "dx": b.dx.tolist(),
            "dW_cells": [cell(c) for c in backprop.dW_cells(b)], "dx_cells": [cell(c) for c in backprop.dx_cells(b)],
            "sgd": {"lr": lr, "stable_lr": stable if math.isfinite(stable) else None,
                    "suggested_lr": backprop.suggested_lr(image), "steps": sgd_steps, "cosine": cosine, "loss": b.loss,
                    "history": [{"loss": loss, "cosine": cos} for _, loss, cos in path[:sgd_steps + 1]],
                    "next": {"kernel": after.tolist(), "loss": loss_after, "cosine": cosine_after}},
            "nudge": None,
        }
        if isinstance(body, dict) and body.get("nudge") is not None:
            n = _field(body, "nudge")
            row, col = _int(n, "row", 0, 2), _int(n, "col", 0, 2)
            eps = _number(n, "eps", 1e-8, 1.0)
            result["nudge"] = backprop.nudge(image, kernel, row, col, eps)
        return result


def _significant(v, digits=6):
    """A float kept to ``digits`` significant digits (a loss of 1e-9 stays 1e-9, not 0)."""
    return float(f"{v:.{digits}g}")


def _four(v):
    """A number as the page writes it: up to 4 decimals, no trailing zeros, "0" for a zero of either sign."""
    text = f"{v:.4f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "0", "") else text


def default_checkpoint():
    """The default MNIST run's checkpoint when it exists, else None."""
    return DEFAULT_CHECKPOINT if DEFAULT_CHECKPOINT.is_file() else None

