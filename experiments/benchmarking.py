"""Speed measurements behind ``experiments/benchmark.py``: the benchmark networks layer by layer, in training, and against PyTorch.

REF-CNN (issue 5): input 1x28x28, Conv2D(1->16, 3x3, pad 1), ReLU, MaxPool 2x2,
Conv2D(16->32, 3x3, pad 1), ReLU, MaxPool 2x2, Flatten (1568), Dense(1568->128),
ReLU, Dense(128->10).

BN-CNN (issue 13): input 1x28x28, Conv2D(1->16, 3x3, pad 1, no bias), BatchNorm2D(16),
ReLU, MaxPool 2x2, Conv2D(16->32, 3x3, pad 1, no bias), BatchNorm2D(32), ReLU,
MaxPool 2x2, Flatten (1568), Dense(1568->10); in training mode (batch statistics).

Both: softmax cross-entropy; SGD lr 0.05, momentum 0.9; float32.  ``NETWORKS``
maps each name ("ref-cnn", "bn-cnn") to its minicnn builder and its PyTorch twin.

Every time is a median over ``repeats`` calls after ``warmup`` calls.  PyTorch is
optional: ``torch_available()`` says whether it can be imported, and nothing
here imports it otherwise.
"""
import os
import platform
import resource
import sys
import time

import numpy as np

from minicnn.nn import LAYERS, BatchNorm2D, Conv2D, Dense, Flatten, MaxPool2D, ReLU, use_engine
from minicnn.nn.losses import softmax_cross_entropy
from minicnn.nn.model import Sequential
from minicnn.nn.ops import current_engine
from minicnn.nn.optim import SGD
from minicnn.nn.reference import conv2d_naive

CONV_SHAPES = {"conv1": (1, 16, 28), "conv2": (16, 32, 14)}   # C, F, H (=W) of REF-CNN's convolutions
LR, MOMENTUM = 0.05, 0.9


def ref_cnn(rng, dtype=np.float32):
    return Sequential([
        Conv2D(1, 16, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2D(2),
        Conv2D(16, 32, 3, padding=1, rng=rng, dtype=dtype), ReLU(), MaxPool2D(2),
        Flatten(), Dense(1568, 128, rng=rng, dtype=dtype), ReLU(), Dense(128, 10, rng=rng, dtype=dtype),
    ])


def bn_cnn(rng, dtype=np.float32):
    return Sequential([
        Conv2D(1, 16, 3, padding=1, bias=False, rng=rng, dtype=dtype), BatchNorm2D(16, dtype=dtype), ReLU(), MaxPool2D(2),
        Conv2D(16, 32, 3, padding=1, bias=False, rng=rng, dtype=dtype), BatchNorm2D(32, dtype=dtype), ReLU(), MaxPool2D(2),
        Flatten(), Dense(1568, 10, rng=rng, dtype=dtype),
    ])


def lookup_network(name):
    """(minicnn builder from an rng, PyTorch twin from a minicnn model) of the benchmark network ``name``."""
    if name not in NETWORKS:
        raise ValueError(f"unknown benchmark network {name!r}: expected one of {', '.join(NETWORKS)}")
    return NETWORKS[name]


def mnist_like(n, rng):
    """Random float32 images (n, 1, 28, 28) and labels 0..9 of MNIST's shape."""
    return rng.standard_normal((n, 1, 28, 28), dtype=np.float32), rng.integers(0, 10, n)


def median_ms(fn, repeats, warmup=2):
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1e3 * float(np.median(times))


def train_step(model, optimizer, x, y):
    """One minicnn training step: forward, loss, backward, SGD update."""
    loss, dout = softmax_cross_entropy(model.forward(x), y)
    model.backward(dout, need_input_grad=False)   # like torch, whose input has requires_grad False
    optimizer.step()
    return loss


# -- machine ----------------------------------------------------------------------------------

def machine_info():
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "platform": platform.platform(),
            "load_average_1_5_15": list(os.getloadavg()) if hasattr(os, "getloadavg") else None}


def engine_info():
    """Which implementation runs (``use_engine``), which BLAS the engine calls, how many threads it splits passes over,
    and the OpenBLAS idle-thread timeout."""
    from minicnn.engine import cblas, threads
    return {"implementation": current_engine(), "blas": cblas.BACKEND, "engine_threads": threads.threads(),
            "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT")}


def versions():
    import scipy
    out = {"python": platform.python_version(), "numpy": np.__version__, "scipy": scipy.__version__}
    if torch_available():
        import torch
        out["torch"] = torch.__version__
    return out


def sgemm_gflops(repeats, size=2048):
    """The machine's large-matrix float32 rate: a size x size matmul, in GFLOP/s."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((size, size)).astype(np.float32) for _ in range(2))
    out = np.empty_like(a)
    ms = median_ms(lambda: np.matmul(a, b, out=out), repeats, warmup=1)
    return 2 * size ** 3 / (ms * 1e-3) / 1e9


def peak_rss_mb():
    """Peak resident memory of this process so far (VmHWM, else ru_maxrss), in MB."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- 1. naive loops against Conv2D --------------------------------------------------------------

def naive_vs_conv(batches, repeats, naive_images, rng):
    """ms per image of conv2d_naive and Conv2D.forward on REF-CNN's conv shapes.

    The naive loop's cost per image does not depend on the batch, so it is timed
    on ``min(batch, naive_images)`` images (once, it is slow) and reported per image.
    """
    rows = []
    for name, (C, F, H) in CONV_SHAPES.items():
        layer = Conv2D(C, F, 3, padding=1, rng=rng)
        W, b = layer.params["W"], layer.params["b"]
        for batch in batches:
            x = rng.standard_normal((batch, C, H, H)).astype(np.float32)
            n_naive = min(batch, naive_images)
            naive = median_ms(lambda: conv2d_naive(x[:n_naive], W, b, 1, 1), repeats=1, warmup=0) / n_naive
            fast = median_ms(lambda: layer.forward(x), repeats) / batch
            rows.append({"layer": name, "batch": batch, "naive_ms_per_image": naive, "conv2d_ms_per_image": fast,
                         "speedup": naive / fast, "naive_images_timed": n_naive})
    return rows


# -- 2. layer by layer --------------------------------------------------------------------------

def conv_flops(layer, x_shape):
    """Multiply-adds x 2 of one forward pass (backward does twice as many: dW and dx)."""
    F, C, KH, KW = layer.params["W"].shape
    _, H_out, W_out = layer.output_shape(x_shape[1:])
    return 2 * x_shape[0] * F * H_out * W_out * C * KH * KW


def per_layer(batch, repeats, sgemm_rate, rng, network="ref-cnn"):
    """Forward and backward ms of each layer of a benchmark network at one batch size; conv GFLOP/s and share of sgemm."""
    model = lookup_network(network)[0](rng)
    x, y = mnist_like(batch, rng)
    inputs, h = [], x
    for layer in model.layers:
        inputs.append(h)
        h = layer.forward(h)
    dout = softmax_cross_entropy(h, y)[1]
    douts = [None] * len(model.layers)
    for i in reversed(range(len(model.layers))):
        douts[i] = dout
        dout = model.layers[i].backward(dout)
    rows = []
    for i, layer in enumerate(model.layers):
        fwd = median_ms(lambda: layer.forward(inputs[i]), repeats)
        bwd = median_ms(lambda: layer.backward(douts[i]), repeats)   # after a forward on the same input
        row = {"network": network, "batch": batch, "index": i, "layer": type(layer).__name__, "forward_ms": fwd, "backward_ms": bwd}
        if isinstance(layer, Conv2D):
            flops = conv_flops(layer, inputs[i].shape)
            row["gflops_forward"] = flops / (fwd * 1e-3) / 1e9
            row["gflops_backward"] = 2 * flops / (bwd * 1e-3) / 1e9
            row["gflops_total"] = 3 * flops / ((fwd + bwd) * 1e-3) / 1e9
            row["share_of_sgemm"] = row["gflops_total"] / sgemm_rate
        rows.append(row)
    return rows


# -- 2b. the layers beyond REF-CNN ---------------------------------------------------------------

# name -> (layer type, its config, input shape without the batch axis, the same layer in torch or None)
NEW_LAYERS = {
    "BatchNorm2D(16)": ("BatchNorm2D", {"num_features": 16}, (16, 28, 28), lambda nn: nn.BatchNorm2d(16)),
    "BatchNorm1D(128)": ("BatchNorm1D", {"num_features": 128}, (128,), None),
    "Dropout(0.5)": ("Dropout", {"p": 0.5}, (128,), lambda nn: nn.Dropout(0.5)),
    "AvgPool2D(2)": ("AvgPool2D", {"kernel_size": 2}, (16, 28, 28), None),
    "AvgPool2D(3, 1, 1)": ("AvgPool2D", {"kernel_size": 3, "stride": 1, "padding": 1}, (16, 28, 28), None),
    "GlobalAvgPool2D": ("GlobalAvgPool2D", {}, (32, 7, 7), None),
    "LeakyReLU": ("LeakyReLU", {}, (16, 28, 28), None),
    "Tanh": ("Tanh", {}, (128,), None),
    "Sigmoid": ("Sigmoid", {}, (128,), None),
}


def new_layers(batch, repeats, rng, use_torch=False, threads=1):
    """ms of forward and backward of each layer in NEW_LAYERS (training mode), images channels-last as conv hands them on.

    With ``use_torch`` the layers that have a PyTorch twin are timed there too
    (forward with a graph, then backward), and ``ratio`` is minicnn / torch for forward + backward.
    """
    rows = []
    for name, (kind, config, shape, make_torch) in NEW_LAYERS.items():
        x = rng.standard_normal((batch,) + shape, dtype=np.float32)
        if x.ndim == 4:
            x = np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
        layer = LAYERS[kind].from_config(config, rng=rng)
        dout = np.ones_like(layer.forward(x))
        fwd = median_ms(lambda: layer.forward(x), repeats)
        bwd = median_ms(lambda: layer.backward(dout), repeats)     # after a forward on the same input
        row = {"batch": batch, "layer": name, "input": [batch, *shape], "forward_ms": fwd, "backward_ms": bwd}
        if use_torch and make_torch is not None:
            import torch
            torch.set_num_threads(threads)
            module = make_torch(torch.nn).train()
            xt = torch.from_numpy(np.ascontiguousarray(x)).requires_grad_(True)
            if xt.ndim == 4:
                xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 2, 3, 1))).permute(0, 3, 1, 2)
                xt = xt.contiguous(memory_format=torch.channels_last).requires_grad_(True)
            dt = torch.ones_like(xt)
            t_fwd = median_ms(lambda: module(xt), repeats)
            t_both = median_ms(lambda: module(xt).backward(dt), repeats)
            row.update(torch_forward_ms=t_fwd, torch_backward_ms=t_both - t_fwd, ratio=(fwd + bwd) / t_both)
        rows.append(row)
    return rows


# -- 3. training throughput ---------------------------------------------------------------------

def training_throughput(batch, repeats, rng, network="ref-cnn"):
    """ms per training step (forward, loss, backward, SGD) of a benchmark network, images/s, and the 60,000-image epoch it implies."""
    model = lookup_network(network)[0](rng)
    optimizer = SGD(model, LR, momentum=MOMENTUM)
    x, y = mnist_like(batch, rng)
    ms = median_ms(lambda: train_step(model, optimizer, x, y), repeats, warmup=3)
    return {"network": network, "batch": batch, "step_ms": ms, "images_per_s": batch / (ms * 1e-3),
            "epoch_s_estimated": 60000 * ms * 1e-3 / batch}


def real_epoch(batch, n, rng):
    """Seconds for one pass of minicnn.training.loop.train_epoch over n random MNIST-shaped images (shuffling included)."""
    from minicnn.training.loop import train_epoch
    model = ref_cnn(rng)
    optimizer = SGD(model, LR, momentum=MOMENTUM)
    x, y = mnist_like(n, rng)
    record = train_epoch(model, optimizer, x, y, batch_size=batch, rng=rng, progress=False)
    return {"batch": batch, "images": n, "seconds": record["seconds"], "seconds_per_60000": record["seconds"] * 60000 / n}


# -- 4. peak memory (run in a fresh process per framework) -------------------------------------

def peak_memory_run(framework, batch, steps, threads, images=60000):
    """Train REF-CNN on ``images`` random MNIST-shaped images held in memory for ``steps`` minibatches.

    Returns the peak RSS before training (data loaded) and after, in MB.
    """
    rng = np.random.default_rng(0)
    x, y = mnist_like(images, rng)
    order = rng.permutation(len(x))
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)
        net, _ = torch_ref_cnn(ref_cnn(rng))
        opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)
        loss_fn = torch.nn.CrossEntropyLoss()
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        before = peak_rss_mb()
        for s in range(steps):
            idx = torch.from_numpy(np.resize(order, (s + 1) * batch)[s * batch:])
            opt.zero_grad()
            loss_fn(net(xt[idx]), yt[idx]).backward()
            opt.step()
    else:
        model = ref_cnn(rng)
        optimizer = SGD(model, LR, momentum=MOMENTUM)
        before = peak_rss_mb()
        for s in range(steps):
            idx = np.resize(order, (s + 1) * batch)[s * batch:]
            train_step(model, optimizer, x[idx], y[idx])
    return {"framework": framework, "batch": batch, "steps": steps, "images": images, "rss_with_data_mb": before,
            "peak_rss_mb": peak_rss_mb()}


# -- 5. PyTorch ---------------------------------------------------------------------------------

def torch_available():
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


# minicnn parameter name -> torch attribute, per layer type; Dense's W (in, out) goes in transposed, as Linear keeps (out, in)
_TORCH_NAMES = {Conv2D: {"W": "weight", "b": "bias"}, Dense: {"W": "weight", "b": "bias"},
                BatchNorm2D: {"gamma": "weight", "beta": "bias"}}


def _copy_into_torch(model, net):
    """Copy ``model``'s parameters and buffers into the layer-for-layer twin ``net``, in ``model``'s dtype.

    Returns (net, [(minicnn name, torch parameter)]) for every parameter of ``model``.
    """
    import torch
    net.to(torch.from_numpy(next(model.parameters())[1]).dtype)
    pairs = []
    with torch.no_grad():
        for i, layer in enumerate(model.layers):
            for key, value in layer.params.items():
                target = getattr(net[i], _TORCH_NAMES[type(layer)][key])
                target.copy_(torch.from_numpy(np.ascontiguousarray(value.T if isinstance(layer, Dense) and key == "W" else value)))
                pairs.append((f"{i}.{key}", target))
            for key, value in (getattr(layer, "buffers", None) or {}).items():
                getattr(net[i], key).copy_(torch.from_numpy(value))
    return net, pairs


def torch_ref_cnn(model):
    """The same REF-CNN in PyTorch with minicnn's weights copied in; returns (net, [(minicnn name, torch param)])."""
    import torch
    nn = torch.nn
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(1568, 128), nn.ReLU(), nn.Linear(128, 10))
    return _copy_into_torch(model, net)


def torch_bn_cnn(model):
    """The same BN-CNN in PyTorch (BatchNorm2d with minicnn's eps and momentum) with minicnn's weights and running stats."""
    import torch
    nn = torch.nn
    bn1, bn2 = model.layers[1], model.layers[5]
    net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1, bias=False),
                        nn.BatchNorm2d(16, eps=bn1.eps, momentum=bn1.momentum), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Conv2d(16, 32, 3, padding=1, bias=False),
                        nn.BatchNorm2d(32, eps=bn2.eps, momentum=bn2.momentum), nn.ReLU(), nn.MaxPool2d(2),
                        nn.Flatten(), nn.Linear(1568, 10))
    return _copy_into_torch(model, net)


# name -> (minicnn model from an rng, its PyTorch twin from that model)
NETWORKS = {"ref-cnn": (ref_cnn, torch_ref_cnn), "bn-cnn": (bn_cnn, torch_bn_cnn)}


def compare_with_torch(batch, repeats, threads, rng, network="ref-cnn"):
    """Same logits, gradients and running statistics, then alternating timed steps; ratio = minicnn step time / torch step time.

    Both run in training mode; ``params_compared`` counts the gradients compared
    (every parameter), ``buffers_compared`` the running statistics after the step's forward
    (relative: max |ours - theirs| / max |ours| per array; gradients: / max |theirs|).
    """
    import torch
    torch.set_num_threads(threads)
    make, make_torch = lookup_network(network)
    model = make(rng)
    net, pairs = make_torch(model)
    net.train()
    x, y = mnist_like(batch, rng)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    loss_fn = torch.nn.CrossEntropyLoss()
    logits = model.forward(x)
    model.backward(softmax_cross_entropy(logits, y)[1])
    out = net(xt)
    loss_fn(out, yt).backward()
    logits_diff = float(np.max(np.abs(logits - out.detach().numpy())))
    grads = {name: g for name, _, g in model.parameters()}
    grad_err = 0.0
    for name, p in pairs:
        theirs = p.grad.numpy().T if name.endswith("W") and p.grad.ndim == 2 else p.grad.numpy()
        grad_err = max(grad_err, float(np.max(np.abs(grads[name] - theirs)) / max(1e-12, np.max(np.abs(theirs)))))
    torch_buffers = dict(net.named_buffers())
    buffer_diffs = [float(np.max(np.abs(value - torch_buffers[name].numpy())) / max(1e-12, np.max(np.abs(value))))
                    for name, value in model.buffers()]   # both named "<layer index>.running_mean" etc.
    buffer_err = max(buffer_diffs, default=0.0)
    optimizer = SGD(model, LR, momentum=MOMENTUM)
    opt = torch.optim.SGD(net.parameters(), lr=LR, momentum=MOMENTUM)

    def torch_step():
        opt.zero_grad()
        loss_fn(net(xt), yt).backward()
        opt.step()

    for _ in range(3):
        train_step(model, optimizer, x, y)
        torch_step()
    ours, theirs = [], []
    for _ in range(repeats):
        for fn, times in ((lambda: train_step(model, optimizer, x, y), ours), (torch_step, theirs)):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
    ours, theirs = np.array(ours), np.array(theirs)
    return {"network": network, "batch": batch, "logits_max_abs_diff": logits_diff, "logits_match": logits_diff < 1e-4,
            "grads_max_rel_diff": grad_err, "grads_match": grad_err < 1e-3, "params_compared": len(pairs),
            "running_stats_max_rel_diff": buffer_err, "running_stats_match": buffer_err < 1e-4,
            "buffers_compared": len(buffer_diffs),
            "minicnn_step_ms": 1e3 * float(np.median(ours)), "torch_step_ms": 1e3 * float(np.median(theirs)),
            "ratio_median_of_pairs": float(np.median(ours / theirs)),
            "ratio_of_medians": float(np.median(ours) / np.median(theirs)),
            "ratio_of_fastest": float(ours.min() / theirs.min()), "pairs": len(ours)}


def alone_step_ms(framework, batch, steps, threads, network="ref-cnn", engine="fast"):
    """Median ms of a training step of a benchmark network with only this framework in the process (no second thread pool around).

    minicnn runs on the implementation ``engine`` (``use_engine``).
    """
    with use_engine(engine):
        return _alone_step_ms(framework, batch, steps, threads, network)


def _alone_step_ms(framework, batch, steps, threads, network):
    rng = np.random.default_rng(0)
    make, make_torch = lookup_network(network)
    model = make(rng)
    x, y = mnist_like(batch, rng)
    if framework == "torch":
        import torch
        torch.set_num_threads(threads)
        step = _torch_step(make_torch, model, x, y)
    else:
        optimizer = SGD(model, LR, momentum=MOMENTUM)

        def step():
            train_step(model, optimizer, x, y)
    return {"framework": framework, "network": network, "batch": batch, "steps": steps,
            "step_ms": median_ms(step, steps, warmup=5), **({"engine": engine_info()} if framework == "minicnn" else {})}


def _torch_step(make_torch, model, x, y):
    """PyTorch's usual training step on the twin of ``model`` (its weights), SGD with momentum, as a function."""
    import torch
    net, _ = make_torch(model)
    opt = torch.optim.SGD(net.train().parameters(), lr=LR, momentum=MOMENTUM)
    loss_fn = torch.nn.CrossEntropyLoss()
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def step():
        opt.zero_grad()
        loss_fn(net(xt), yt).backward()
        opt.step()
    return step


def plain_step_ms(framework, batch, steps, network="ref-cnn"):
    """Median ms of a training step written as a user writes it, in a process where nothing was tuned.

    minicnn: the README's loop, ``loss, dlogits = softmax_cross_entropy(model.forward(x), y);
    model.backward(dlogits); optimizer.step()``, with the defaults (no engine, thread or
    ``need_input_grad`` setting).  PyTorch: ``opt.zero_grad(); loss_fn(net(x), y).backward(); opt.step()``
    with its default threads.  What the process got from its environment is in the result.
    """
    rng = np.random.default_rng(0)
    make, make_torch = lookup_network(network)
    model = make(rng)
    x, y = mnist_like(batch, rng)
    if framework == "torch":
        import torch
        step = _torch_step(make_torch, model, x, y)
        threads_used = torch.get_num_threads()
    else:
        optimizer = SGD(model, lr=LR, momentum=MOMENTUM)

        def step():
            loss, dlogits = softmax_cross_entropy(model.forward(x), y)
            model.backward(dlogits)
            optimizer.step()
        from minicnn.engine import threads
        threads_used = threads.threads()
    environment = {var: os.environ.get(var) for var in
                   ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_THREAD_TIMEOUT")}
    return {"framework": framework, "network": network, "batch": batch, "steps": steps, "threads": threads_used,
            "environment": environment, "step_ms": median_ms(step, steps, warmup=5)}


WORKER_USAGE = ("python experiments/benchmarking.py memory FRAMEWORK BATCH STEPS THREADS IMAGES   (REF-CNN)\n"
                "python experiments/benchmarking.py alone FRAMEWORK BATCH STEPS THREADS [NETWORK [ENGINE]]"
                "  (default ref-cnn, fast)\n"
                "python experiments/benchmarking.py plain FRAMEWORK BATCH STEPS THREADS [NETWORK]"
                "  (THREADS: only recorded; the environment sets them)\n"
                "FRAMEWORK: minicnn or torch; NETWORK: " + " or ".join(NETWORKS) + "; ENGINE: loops, textbook or fast")


def worker_main(argv=None):
    """One run in this process, printed as one line of JSON; the command lines are in ``WORKER_USAGE``."""
    import json
    argv = list(argv if argv is not None else sys.argv[1:])
    mode, rest = (argv[0], argv[5:]) if len(argv) >= 5 else (None, [])
    if mode not in ("memory", "alone", "plain") or argv[1] not in ("minicnn", "torch") or len(rest) > 2 \
            or (mode == "memory" and len(rest) != 1) or (mode == "plain" and len(rest) > 1):
        raise SystemExit(f"usage:\n{WORKER_USAGE}\ngot: {' '.join(argv)}")
    framework, batch, steps, threads = argv[1], int(argv[2]), int(argv[3]), int(argv[4])
    if mode == "memory":
        result = peak_memory_run(framework, batch, steps, threads, int(rest[0]))
    elif mode == "plain":
        result = plain_step_ms(framework, batch, steps, *rest)
    else:
        result = alone_step_ms(framework, batch, steps, threads, *rest)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(worker_main())
