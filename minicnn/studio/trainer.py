"""Learn it yourself: a small network trained from random weights, a few steps at a time, for the studio's page.

Three tasks, each from the code that runs it on the command line:

- ``sobel``: ``Conv2D(1, 2, 3)`` learns Sobel x and y from filtered images
  (``minicnn.edges.sobel_task``: its data, its target scale and its report);
- ``edges``: the tiny classifier of ``minicnn.edges.edge_task`` tells which way
  a noisy edge gets brighter, and its 8 first-layer kernels become edge detectors;
- ``mnist``: a narrow ``mnist_cnn`` (8 and 16 channels) on the first
  ``MNIST_IMAGES`` training digits.

A trainer owns its model, optimizer, data and ``np.random.Generator`` (from
one seed), so the same seed and the same number of steps give the same kernels
however the steps are split into calls.  It keeps the first layer's kernels and
the loss after every step (``snapshots``, up to ``MAX_SNAPSHOT_NUMBERS`` numbers),
which the page's timeline shows again exactly.  It is not thread-safe by itself: the
studio holds a lock around each one.
"""
import numpy as np

from minicnn.data.synthetic import orientation_dataset
from minicnn.edges import edge_task, sobel_task
from minicnn.edges.filters import get_kernel, kernel_similarity, match_kernel
from minicnn.nn.losses import mse, softmax_cross_entropy
from minicnn.nn.optim import SGD
from minicnn.training import architectures

TASKS = ("sobel", "edges", "mnist")
DEFAULT_LR = {"sobel": 0.2, "edges": 0.1, "mnist": 0.05}
MNIST_IMAGES = 10000
MAX_SNAPSHOT_NUMBERS = 2_000_000   # kernel numbers kept per trainer for the timeline (16 MB); later steps are not kept


class Trainer:
    """One run of one task: ``step()`` trains on one mini-batch, ``state()`` says where it is.

    Parameters
    ----------
    task : one of ``TASKS``
    seed : int, the one source of randomness (data, initial weights, batches)
    lr : float, SGD's learning rate (momentum 0.9)
    mnist : (x (N, 1, 28, 28) float32, y (N,) int64), needed only for the ``mnist`` task
    """

    def __init__(self, task, seed, lr, mnist=None):
        if task not in TASKS:
            raise ValueError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
        self.task, self.seed, self.lr = task, int(seed), float(lr)
        self.rng = np.random.default_rng(self.seed)
        self.steps = 0
        self.batch_size = 16 if task == "sobel" else 32
        if task == "sobel":
            self.x, self.y, self.target_scale = sobel_task.make_data(128, 24, rng=self.rng)
            self.model = architectures.build_model([{"type": "Conv2D", "in_channels": 1, "out_channels": 2,
                                                     "kernel_size": 3}], rng=self.rng)
            self.loss = mse
            weight_decay = 0.0
        elif task == "edges":
            self.x, self.y = orientation_dataset(2000, 16, rng=self.rng, noise=0.2, min_contrast=0.5, classes=8)
            self.x -= np.float32(0.5)  # centred, as edge_task does
            self.model = edge_task.build_model(8, 16, rng=self.rng)
            self.loss = softmax_cross_entropy
            weight_decay = 1e-3
        else:
            if mnist is None:
                raise ValueError("the mnist task needs the MNIST training images")
            self.x, self.y = mnist
            self.model = architectures.build_model(architectures.mnist_cnn(channels=(8, 16), hidden=32), rng=self.rng)
            self.loss = softmax_cross_entropy
            weight_decay = 0.0
        self.optimizer = SGD(self.model, lr=self.lr, momentum=0.9, weight_decay=weight_decay)
        self.snapshots = [(self.kernels(), None)]   # [(kernels (F, 3, 3) after step s, its loss)], s = 0, 1, ...

    def step(self):
        """One SGD step on a random mini-batch; returns its loss."""
        idx = self.rng.choice(len(self.x), size=self.batch_size, replace=False)
        loss, dpred = self.loss(self.model.forward(self.x[idx]), self.y[idx])
        if not np.isfinite(loss):
            raise ValueError(f"the loss became {loss} at step {self.steps + 1}: the learning rate {self.lr} is "
                             f"too large for this task; press Reset and try a smaller one")
        self.model.backward(dpred, need_input_grad=False)
        self.optimizer.step()
        self.steps += 1
        kernels = self.kernels()
        if len(self.snapshots) == self.steps and (self.steps + 1) * kernels.size <= MAX_SNAPSHOT_NUMBERS:
            self.snapshots.append((kernels, float(loss)))
        return loss

    def kernels(self):
        """The first layer's kernels, (F, 3, 3) float64; the Sobel task's in Sobel units (times the target scale)."""
        W = self.model.layers[0].params["W"][:, 0].astype(np.float64)
        return W * self.target_scale if self.task == "sobel" else W

    def matches(self, kernels=None):
        """Per kernel (of ``kernels``, default the current ones): the kernel it is compared with and the similarity.

        The Sobel task's kernel f is compared with its own target (sobel_x, sobel_y);
        the others with the best oriented Sobel match (``match_kernel``).
        """
        out = []
        for f, k in enumerate(self.kernels() if kernels is None else kernels):
            if self.task == "sobel":
                name = sobel_task.TARGETS[f]
                out.append({"label": name, "similarity": kernel_similarity(k, get_kernel(name, np.float64))})
            else:
                m = match_kernel(k)
                out.append({"label": m.label, "similarity": m.similarity})
        return out
