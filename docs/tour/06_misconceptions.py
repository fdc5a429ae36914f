# %% [markdown]
# # 6. Four misconceptions, each refuted by a computation
#
# This chapter reads MNIST with `minicnn.data.mnist.load_mnist(download=True)` (fetched and checked
# the first time) and trains two small networks for one short pass.

# %%
import numpy as np

from minicnn import SGD, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, evaluate, fit
from minicnn.nn.reference import conv2d_naive
from minicnn.tour import below, image_row, mnist, show, vary
from minicnn.training.architectures import build_model, mnist_cnn

rng = np.random.default_rng(0)

# %% [markdown]
# ## "A convolutional network sees the whole image at once"
#
# Each value a layer computes depends on a patch of the input only, its *receptive field*. Measure
# it with the backward pass of the default MNIST network (random weights): send a gradient
# into one value in the middle of a layer's output, for 256 random inputs, and mark every input pixel
# that receives a non-zero gradient in any of them (ReLU and max-pooling pass the gradient only
# where they let the value through, so one input shows a subset, and even 64 inputs left a corner of
# the last field unmarked; 256 show all of it, every pixel of the square, as the checks assert).
#
# By the textbook rule each layer widens the field by (its window - 1) times the spacing, in input
# pixels, of the values it combines: 3 after the first convolution; 3 + 1 = 4 after the 2x2 pooling
# (two windows one pixel apart); 4 + 2 x 2 = 8 after the second convolution (three pooled values, two
# pixels apart); 8 + 2 = 10 after the second pooling. The measurement:

# %%
net = build_model(mnist_cnn(), rng=rng)
x = rng.standard_normal((256, 1, 28, 28)).astype(np.float32)


def field(upto):
    """Input pixels reaching one central output value of layers[:upto], over the 256 inputs. (28, 28) bool"""
    part = Sequential(net.layers[:upto])
    out = part.forward(x)
    dout = np.zeros_like(out)
    if out.ndim == 4:
        dout[:, 0, out.shape[2] // 2, out.shape[3] // 2] = 1.0
    else:
        dout[:, 0] = 1.0
    return np.any(part.backward(dout, need_input_grad=True)[:, 0] != 0, axis=0)


def extent(mask):
    rows, cols = np.nonzero(mask)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


fields = {}
for upto, name in ((1, "conv 1"), (2, "conv 1 + pool"), (4, "conv 2"), (6, "conv 2 + pool + ReLU"), (10, "a logit")):
    fields[name] = field(upto)
    h, w = extent(fields[name])
    print(f"{name:>21}: sees {h} x {w} pixels of the 28 x 28 image ({fields[name].sum()} pixels)")
show(image_row([fields[n].astype(float) for n in fields], list(fields), height=1.8, limits=(0, 1)))

# %% [markdown]
# Only the dense layers at the end see the whole image; every convolution looks through a small
# window, and the window grows only as layers are stacked.
#
# ## "Each position has its own weights"
#
# A convolution has one kernel per (output, input) channel pair, used at every position: its
# parameter count does not depend on the image size, every output value is that one kernel times
# its window, and the kernel's gradient is the sum of the windows, each weighted by the gradient
# arriving at its output.

# %%
layer = Conv2D(1, 1, 3, rng=rng, dtype=np.float64)
sizes = {n: layer.forward(rng.standard_normal((1, 1, n, n))).shape for n in (8, 28, 280)}
print("parameters:", {k: v.shape for k, v in layer.params.items()}, " outputs for 8, 28, 280 pixels:", list(sizes.values()))
image = rng.standard_normal((1, 1, 8, 8))
out = layer.forward(image)
kernel, bias = layer.params["W"][0, 0], layer.params["b"][0]
one_kernel = max(abs(out[0, 0, i, j] - (np.sum(image[0, 0, i:i + 3, j:j + 3] * kernel) + bias))
                 for i in range(6) for j in range(6))
dout = rng.standard_normal(out.shape)
layer.backward(dout)
windows = np.lib.stride_tricks.sliding_window_view(image[0, 0], (3, 3))          # (6, 6, 3, 3)
summed = np.einsum("ij,ijuv->uv", dout[0, 0], windows)
print(f"every output is the same kernel times its window: max difference {below(one_kernel)}")
print(f"dW = sum over the 36 windows of dout * window: max difference {below(np.abs(layer.grads['W'][0, 0] - summed).max())}")

# %% [markdown]
# ## "One filter is enough" (and "a filter is part of the picture")
#
# Train the same small network, `Conv2D(1, F, 3, same) -> ReLU -> MaxPool2D(2) -> Flatten -> Dense`, with
# F = 1 and F = 16 filters: same data (one pass over 3000 training images, batches of 32), same optimizer,
# same seed, tested on 1000 test images.

# %%
x_train, y_train, x_test, y_test = mnist(3000, 1000)


def small_net(filters, seed):
    r = np.random.default_rng(seed)
    return Sequential([Conv2D(1, filters, 3, padding="same", rng=r), ReLU(), MaxPool2D(2), Flatten(),
                       Dense(filters * 14 * 14, 10, rng=r)])


accuracy, nets = {}, {}
for filters in (1, 16):
    nets[filters] = small_net(filters, 1)
    fit(nets[filters], SGD(nets[filters], lr=0.02, momentum=0.9), x_train, y_train, epochs=1, batch_size=32,
        rng=np.random.default_rng(2), verbose=False)
    accuracy[filters] = evaluate(nets[filters], x_test, y_test)[1]
    print(f"{filters:>2} filter(s): {nets[filters].num_params():>6,} parameters, test accuracy {vary(accuracy[filters], '.1%', 3)}")

# %% [markdown]
# ## "... many layers stacked"
#
# The cheat sheet's answer to "one filter is enough" has a second half: many layers, stacked. The
# first half of this chapter measured what stacking does to the field of view (3, 4, 8, 10 pixels
# after each layer); here is what it does for the task. The same training, now with two layers of
# filters, 8 then 16, `[Conv -> ReLU -> MaxPool] x 2 -> Flatten -> Dense`: the second layer combines
# the first layer's answers over 8 x 8 pixels of the digit, and the network needs far fewer weights
# for the same accuracy, because the dense layer at the end reads 16 x 7 x 7 values instead of 16 x 14 x 14.

# %%
r = np.random.default_rng(1)
stacked = Sequential([Conv2D(1, 8, 3, padding="same", rng=r), ReLU(), MaxPool2D(2),
                      Conv2D(8, 16, 3, padding="same", rng=r), ReLU(), MaxPool2D(2), Flatten(), Dense(16 * 7 * 7, 10, rng=r)])
fit(stacked, SGD(stacked, lr=0.02, momentum=0.9), x_train, y_train, epochs=1, batch_size=32, rng=np.random.default_rng(2), verbose=False)
accuracy["stacked"] = evaluate(stacked, x_test, y_test)[1]
print(f"two layers (8, 16): {stacked.num_params():>6,} parameters, test accuracy {vary(accuracy['stacked'], '.1%', 3)}")

# %% [markdown]
# One filter can ask one question of every window (say, "is it brighter to the right?"); sixteen
# ask sixteen, and the layer after them combines the answers. One filter is a magnifying glass, not
# a network.
#
# A learned filter is nine numbers, not a piece of a digit. Here is the single filter of the first
# network as weights, beside what it makes of two different digits: the weights stay the same,
# the responses are all that depends on the picture.

# %%
conv1 = nets[1].layers[0]
learned = conv1.params["W"][0, 0].copy()
print("the learned filter (weights):\n", learned.round(3), f"\nbias {conv1.params['b'][0]:+.3f}")
responses = [conv1.forward(x_test[i:i + 1])[0, 0] for i in (0, 1)]
show(image_row([learned, x_test[0, 0], responses[0], x_test[1, 0], responses[1]],
               ["the filter (3x3)", f"digit {y_test[0]}", "its response", f"digit {y_test[1]}", "its response"],
               height=1.9))

# %% [markdown]
# ## Checks

# %%
assert extent(fields["conv 1"]) == (3, 3) and extent(fields["conv 1 + pool"]) == (4, 4)
assert extent(fields["conv 2"]) == (8, 8) and extent(fields["conv 2 + pool + ReLU"]) == (10, 10)
for name, side in (("conv 1", 3), ("conv 1 + pool", 4), ("conv 2", 8), ("conv 2 + pool + ReLU", 10)):
    assert fields[name].sum() == side * side, f"{name}: all {side * side} pixels of the field appear"
assert fields["a logit"].mean() > 0.9, "only the dense layers see (nearly) every pixel"
assert layer.params["W"].shape == (1, 1, 3, 3) and all(s == (1, 1, n - 2, n - 2) for n, s in sizes.items())
assert one_kernel < 1e-12 and np.abs(layer.grads["W"][0, 0] - summed).max() < 1e-12
assert accuracy[16] > accuracy[1] + 0.02, "sixteen filters beat one"
assert stacked.num_params() * 3 < nets[16].num_params(), "stacking: fewer weights"
assert accuracy["stacked"] > accuracy[16] - 0.03, "stacking: as accurate"
assert np.array_equal(conv1.params["W"][0, 0], learned), "looking at pictures does not change the weights"
for i, r in zip((0, 1), responses):
    assert np.allclose(r, conv2d_naive(x_test[i:i + 1], conv1.params["W"], conv1.params["b"], padding=1)[0, 0], atol=1e-5)
assert np.abs(responses[0] - responses[1]).max() > 0.5, "the response is what changes with the picture"
print("the field is small, the kernel is one and shared, it is weights not picture, and one filter or one layer is not enough")
