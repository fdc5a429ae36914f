# %% [markdown]
# # 8. Edges from a task
#
# In chapter 7 the network was told the answer (Sobel's output). Here it is only told which digit
# each image shows. A small network, `[Conv -> ReLU -> MaxPool] x 2 -> Flatten -> Dense`, trains for
# one short pass over 4000 MNIST images (read with `minicnn.data.mnist.load_mnist(download=True)`,
# fetched and checked the first time), and we look at what its first layer became: each kernel beside
# the oriented Sobel kernel it matches best, with the similarity (`minicnn.edges.inspect_kernels.describe_kernels`,
# the same report as `python -m minicnn inspect`).
#
# The first layer starts from small random weights (He-normal times 0.1): a short run changes each
# weight by a few hundredths, which would be lost in full-size random weights (tried: from those, the
# median similarity barely moves in one pass), but is all there is in small ones.

# %%
import io

import numpy as np

from minicnn import SGD, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, evaluate, fit, softmax
from minicnn.analysis.featuremaps import feature_maps, maxima_text, plot_feature_maps
from minicnn.edges.inspect_kernels import describe_kernels, plot_kernel_report
from minicnn.tour import have_matplotlib, mnist, show_png

x_train, y_train, x_test, y_test = mnist(4000, 1000)
rng = np.random.default_rng(0)
model = Sequential([Conv2D(1, 8, 3, padding="same", rng=rng), ReLU(), MaxPool2D(2),
                    Conv2D(8, 16, 3, padding="same", rng=rng), ReLU(), MaxPool2D(2),
                    Flatten(), Dense(16 * 7 * 7, 10, rng=rng)])
model.layers[0].params["W"] *= 0.1          # small random start: what we see after a short run is what training put there
model.summary(input_shape=(1, 28, 28))
initial = model.layers[0].params["W"].copy()
fit(model, SGD(model, lr=0.02, momentum=0.9), x_train, y_train, epochs=1, batch_size=32, rng=rng, verbose=False)
accuracy = evaluate(model, x_test, y_test)[1]
print(f"test accuracy after one pass over 4000 images: {accuracy:.2%}")

# %% [markdown]
# ## The first layer's kernels

# %%
W = model.layers[0].params["W"]
text, matches = describe_kernels(W)
print(text)
if have_matplotlib():
    buffer = io.BytesIO()
    plot_kernel_report(W, matches, buffer, title="first-layer kernels (top) and the Sobel kernel each matches (bottom)")
    show_png(buffer.getvalue())

# %% [markdown]
# For comparison, the same kernels before training (random He-normal weights):

# %%
_, initial_matches = describe_kernels(initial)
trained_sims = np.array([m.similarity for m in matches])
initial_sims = np.array([m.similarity for m in initial_matches])
print(f"median similarity to the best Sobel match: {np.median(initial_sims):.3f} at the start, "
      f"{np.median(trained_sims):.3f} after training")
print("best match at any angle (minicnn.edges.filters.edge_orientation): "
      + ", ".join(f"{m.orientation:.0f} deg {m.orientation_similarity:+.2f}" for m in matches))

# %% [markdown]
# ## One digit through the network
#
# `minicnn.analysis.featuremaps.feature_maps` keeps the output of every convolution after its ReLU (the
# same function as `python -m minicnn featuremaps`). The pooling, flattening and dense layers after
# them: shapes, and the ten class scores at the end.

# %%
digit = x_test[:1]
maps = feature_maps(model, digit)
print(maxima_text(maps[1:2]))
if have_matplotlib():
    buffer = io.BytesIO()
    plot_feature_maps(maps, buffer, f"test image 0 (label {y_test[0]}) through the trained network")
    show_png(buffer.getvalue())

h = digit
for i, layer in enumerate(model.layers):
    h = layer.forward(h)
    print(f"{i}: {type(layer).__name__:<9} -> {h.shape}")
probabilities = softmax(h)[0]
print("class probabilities:", " ".join(f"{k}:{p:.2f}" for k, p in enumerate(probabilities)))
print(f"predicted {probabilities.argmax()}, label {y_test[0]}")

# %% [markdown]
# Nobody told the network about edges; a few of its kernels become edge detectors because telling
# digits apart starts with where strokes begin and end. In a pass this short the kernels are still
# on their way (`python experiments/train_mnist.py` trains for 8 epochs and ends with the same report).
#
# ## Checks

# %%
assert accuracy > 0.85
assert len(matches) == 8 and all(m is not None and m.similarity >= 0 for m in matches)
assert np.median(trained_sims) > np.median(initial_sims) + 0.15, "training moved the kernels towards edge detectors"
assert trained_sims.max() > 0.8
assert [m.shape for _, m in maps] == [(1, 28, 28), (8, 28, 28), (16, 14, 14)]
conv_relu = np.maximum(model.layers[0].forward(digit), 0)[0]
assert np.array_equal(maps[1][1], conv_relu), "feature_maps shows conv 1 after its ReLU"
assert h.shape == (1, 10) and probabilities.argmax() == y_test[0]
print("the kernels moved towards edge detectors, and the digit was read through them")

# %% [markdown]
# **Write it yourself.** `minicnn exercises` lists the rest (`relu_*`, `maxpool2d_*`, `dense_*`,
# `softmax_cross_entropy`); `minicnn train --mine minicnn-exercises` trains this network on MNIST with every
# exercise you passed in place of the library's math.
