# %% [markdown]
# # 7. Learning the kernel
#
# So far we chose the weights. Now a `Conv2D(1, 2, 3)` starts from random weights and is shown only
# examples: images, and the same images filtered with Sobel x and Sobel y. Gradient descent on the
# squared error moves the nine weights of each kernel until they *are* Sobel: the task is linear, so
# Sobel is the exact answer, and the cosine similarity between the learned and the true kernel
# (`minicnn.edges.filters.kernel_similarity`) says how far training got.
#
# First, one step of it by hand, on the course's 5x5 image (002): where the gradient of a kernel
# comes from, and why one step of gradient descent moves it towards Sobel. Then the whole training,
# written out and run twice: on synthetic images and targets from `minicnn.edges.sobel_task.make_data`
# (shapes with edges at every angle, standardised; targets divided by their own spread, a scale that is
# multiplied back before comparing), and on crops of the photograph.

# %%
import io

import numpy as np

from minicnn import SGD, Conv2D, Sequential, mse
from minicnn.edges.evolution import TITLE_SIZE, evolution_figsize, evolution_text, evolution_title, plot_evolution
from minicnn.edges.filters import get_kernel, kernel_similarity
from minicnn.edges.sobel_task import TARGETS, filter_valid, kernel_report, make_data
from minicnn.tour import below, draws_figures, photograph, show_png
from minicnn.utils.plotting import text_width

# %% [markdown]
# ## How a kernel learns: the gradient is a sum over positions
#
# The 5x5 image of chapter 2, its Sobel x map as the target, and a `Conv2D(1, 1, 3)` with random
# weights W. The loss is the mean squared error between the layer's 3x3 map and the target. Its
# gradient with respect to the output, `dout[i, j]`, says how much each output value should move; every
# output value was the window at (i, j) times W, so the kernel's gradient is
#
#     dL/dW[u, v] = sum over output positions (i, j) of dout[i, j] * image[i + u, j + v]
#
# every window, weighted by how wrong its output was: the sum over positions of chapter 5's weight
# sharing. `Conv2D.backward` computes exactly that; the loops below compute it again, one position at
# a time. Then one step of gradient descent, W - lr * dL/dW, and the kernel is closer to Sobel.

# %%
image = np.array([[1, 2, 3, 0, 1],
                  [0, 1, 2, 3, 1],
                  [1, 2, 1, 0, 0],
                  [2, 1, 0, 1, 2],
                  [0, 1, 2, 3, 1]], dtype=np.float64)[None, None]
sobel_x = get_kernel("sobel_x", np.float64)
teacher = Conv2D(1, 1, 3, bias=False, dtype=np.float64)
teacher.params["W"][:] = sobel_x
target = teacher.forward(image)                                   # (1, 1, 3, 3): what the kernel should produce
student = Conv2D(1, 1, 3, bias=False, dtype=np.float64, rng=np.random.default_rng(0))
model = Sequential([student])
loss, dout = mse(model.forward(image), target)
model.backward(dout)
dW = student.grads["W"][0, 0].copy()
by_positions = np.zeros((3, 3))
for i in range(3):
    for j in range(3):
        by_positions += dout[0, 0, i, j] * image[0, 0, i:i + 3, j:j + 3]   # this window, weighted by its error
print("dout (how each output should move):\n", dout[0, 0].round(4))
print("dL/dW from Conv2D.backward:\n", dW.round(4))
print(f"the sum over the 9 positions of dout[i, j] * window(i, j) differs from it by {below(np.abs(dW - by_positions).max())}")

lr = 0.01
before = kernel_similarity(student.params["W"][0, 0], sobel_x)
SGD(model, lr=lr).step()                                           # W <- W - lr * dL/dW
after = kernel_similarity(student.params["W"][0, 0], sobel_x)
loss_after, _ = mse(model.forward(image), target)
print(f"one SGD step (lr {lr}): loss {loss:.3f} -> {loss_after:.3f}, cosine with sobel_x {before:+.3f} -> {after:+.3f}")

# %% [markdown]
# One step moves the kernel a little of the way. One small image does not pin nine weights down
# quickly (its nine windows are much alike); many images and a few hundred steps, below, take it all
# the way. The studio steps through the same sum one position at a time: `python -m minicnn studio`, then the
# address it prints followed by `#view=backward&image=small`.
#
# ## The training loop

# %%
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


titles_fit = []        # each figure's title, as drawn (wrapped), fits in the figure's width


def report(kernels, cosines, title):
    labels = [f"step {s}" for s in SNAPSHOTS]
    print(evolution_text(kernels, labels))
    print("\n".join(f"{s:>4} steps: cosine with sobel_x {cx:+.5f}, with sobel_y {cy:+.5f}"
                    for s, (cx, cy) in zip(SNAPSHOTS, cosines)))
    print(f"both at 0.999 or above from step {first_at(cosines)} on (of the snapshots)")
    print("final kernels (Sobel units):\n", kernels[-1].round(2))
    width = evolution_figsize(len(SNAPSHOTS), kernels.shape[1])[0]
    drawn = evolution_title(title, kernels.shape[1])
    titles_fit.append(all(text_width(line, TITLE_SIZE) <= width for line in drawn.splitlines()))
    if draws_figures():
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
assert np.allclose(dW, by_positions, rtol=0, atol=1e-12), "dL/dW is the sum over positions"
assert loss_after < loss and after > before, "one step: a smaller loss, closer to Sobel"
assert titles_fit == [True, True], "no clipped titles"
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
