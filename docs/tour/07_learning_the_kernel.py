# %% [markdown]
# # 7. Learning the kernel
#
# So far we chose the weights. Now a `Conv2D(1, 2, 3)` starts from random weights and is shown only
# examples: images, and the same images filtered with Sobel x and Sobel y. Gradient descent on the
# squared error moves the nine weights of each kernel until they *are* Sobel: the task is linear, so
# Sobel is the exact answer, and the cosine similarity between the learned and the true kernel
# (`minicnn.edges.filters.kernel_similarity`) says how far training got.
#
# The images and targets come from `minicnn.edges.sobel_task.make_data` (synthetic shapes with edges
# at every angle, standardised; targets divided by their own spread, a scale that is multiplied back
# before comparing). The training loop is written out here, and run twice.

# %%
import io

import numpy as np

from minicnn import SGD, Conv2D, Sequential, mse
from minicnn.edges.evolution import evolution_text, plot_evolution
from minicnn.edges.filters import get_kernel
from minicnn.edges.sobel_task import TARGETS, filter_valid, kernel_report, make_data
from minicnn.tour import have_matplotlib, photograph, show_png

SNAPSHOTS = (0, 10, 25, 50, 100, 200, 400)


def learn(x, y, target_scale, rng, steps=SNAPSHOTS[-1], lr=0.2, batch_size=16):
    """SGD with momentum on mean squared error; the kernels (in Sobel units) and cosines at each snapshot."""
    model = Sequential([Conv2D(1, 2, 3, rng=rng)])
    optimizer = SGD(model, lr=lr, momentum=0.9)
    kernels, cosines = [], []
    for step in range(steps + 1):
        if step in SNAPSHOTS:
            report = kernel_report(model.layers[0].params["W"], target_scale)
            kernels.append([report[k]["kernel"] for k in TARGETS])
            cosines.append([report[k]["cosine"] for k in TARGETS])
        if step == steps:
            break
        idx = rng.choice(len(x), size=batch_size, replace=False)
        loss, dpred = mse(model.forward(x[idx]), y[idx])
        model.backward(dpred)
        optimizer.step()
    return np.array(kernels), np.array(cosines)


def first_at(cosines, level=0.999):
    return next(s for s, c in zip(SNAPSHOTS, cosines) if c.min() >= level)


def report(kernels, cosines, title):
    labels = [f"step {s}" for s in SNAPSHOTS]
    print(evolution_text(kernels, labels))
    print("\n".join(f"{s:>4} steps: cosine with sobel_x {cx:+.5f}, with sobel_y {cy:+.5f}"
                    for s, (cx, cy) in zip(SNAPSHOTS, cosines)))
    print(f"both at 0.999 or above from step {first_at(cosines)} on (of the snapshots)")
    print("final kernels (Sobel units):\n", kernels[-1].round(2))
    if have_matplotlib():
        buffer = io.BytesIO()
        plot_evolution(kernels, labels, buffer, title=title)
        show_png(buffer.getvalue())


# %% [markdown]
# ## On synthetic images

# %%
rng = np.random.default_rng(0)
x, y, scale = make_data(128, 24, rng=rng)
print(f"{len(x)} images {x.shape[2:]}, targets {y.shape[1:]} (sobel_x and sobel_y responses)")
synthetic_kernels, synthetic_cos = learn(x, y, scale, rng)
report(synthetic_kernels, synthetic_cos, "synthetic images: kernels (Sobel units) during training, and their match")

# %% [markdown]
# ## On the photograph
#
# The same loop, on 256 random 24x24 crops of the photograph (standardised the same way) and their
# Sobel responses: nothing about the method depends on where the images come from.

# %%
photo, about = photograph()
rng = np.random.default_rng(0)
rows = rng.integers(0, photo.shape[0] - 24, size=256)
cols = rng.integers(0, photo.shape[1] - 24, size=256)
crops = np.stack([photo[r:r + 24, c:c + 24] for r, c in zip(rows, cols)])[:, None]        # (256, 1, 24, 24)
crops = (crops - crops.mean()) / crops.std()
targets = np.concatenate([filter_valid(crops, get_kernel(k, np.float64)) for k in TARGETS], axis=1)
photo_scale = float(targets.std())
print(f"{about}: {len(crops)} crops of 24 x 24")
photo_kernels, photo_cos = learn(crops.astype(np.float32), (targets / photo_scale).astype(np.float32), photo_scale, rng)
report(photo_kernels, photo_cos, "photograph crops: kernels (Sobel units) during training, and their match")

# %% [markdown]
# The sliding window never changes, only where the weights come from: chosen by hand in the
# earlier chapters, found from examples here.
#
# ## Checks
#
# Both runs start far from Sobel (random weights), end at a cosine of at least 0.999 with both
# kernels, and climb on the way; the learned kernels are Sobel to within a few percent, entry by entry.

# %%
for name, kernels, cos in (("synthetic", synthetic_kernels, synthetic_cos), ("photograph", photo_kernels, photo_cos)):
    assert np.abs(cos[0]).max() < 0.9, name
    assert cos[-1].min() >= 0.999, (name, cos[-1])
    assert (np.diff(cos, axis=0)[2:] > -1e-3).all(), (name, "the climb")
    for f, k in enumerate(TARGETS):
        assert np.abs(kernels[-1, f] - get_kernel(k, np.float64)).max() < 0.1, (name, k)
print(f"after {SNAPSHOTS[-1]} steps: synthetic cosines {synthetic_cos[-1].round(5)}, photograph {photo_cos[-1].round(5)}")

# %% [markdown]
# **Write it yourself.** `minicnn exercises start conv2d_backward` and `sgd_momentum_step`; once they pass,
# `minicnn sobel --mine minicnn-exercises` learns the Sobel kernels with your own code.
