# %% [markdown]
# # 9. The pixel shuffle: what "ignores locality" means
#
# The course's cheat sheet (004) says a fully connected layer "treats neighboring pixels as unrelated,
# but shapes ARE local arrangements". A test of that sentence: shuffle the pixels of every image with
# one fixed permutation (the same for every image, training and test), so that neighbours are no
# longer neighbours but no information is lost, and train on the shuffled images.
#
# - A dense network cannot tell the difference. Its first layer multiplies every pixel by its own
#   weight, in any order: a dense network on shuffled pixels, with its first layer's rows shuffled the
#   same way, computes exactly the same function. It trains as well as on the real images.
# - A convolutional network can. Its 3x3 windows now hold pixels from all over the digit, and the
#   shared kernel has no neighbourhood left to find a stroke in.
#
# Both are trained the same way (SGD with momentum, one pass over 3000 MNIST training images in
# batches of 32), tested on 1000 test images, on the real and on the shuffled pixels.

# %%
import numpy as np

from minicnn import SGD, Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, evaluate, fit
from minicnn.tour import below, image_row, mnist, show, vary

x_train, y_train, x_test, y_test = mnist(3000, 1000)
permutation = np.random.default_rng(0).permutation(28 * 28)        # one fixed shuffle of the 784 pixels


def shuffle(x):
    """(N, 1, 28, 28) -> the same images with their pixels in the order of ``permutation``."""
    return x.reshape(len(x), -1)[:, permutation].reshape(x.shape)


show(image_row([x_test[0, 0], shuffle(x_test[:1])[0, 0], x_test[1, 0], shuffle(x_test[1:2])[0, 0]],
               [f"digit {y_test[0]}", "shuffled", f"digit {y_test[1]}", "shuffled"], height=1.9))

# %% [markdown]
# ## The dense network does not notice
#
# First without training: a dense layer on shuffled pixels, whose weight rows are shuffled the same
# way, gives the same outputs as the original layer on the original pixels (the sum has the same
# terms, in another order).

# %%
layer = Dense(784, 10, rng=np.random.default_rng(1), dtype=np.float64)
shuffled_layer = Dense(784, 10, dtype=np.float64)
shuffled_layer.params["W"][:] = layer.params["W"][permutation]
shuffled_layer.params["b"][:] = layer.params["b"]
flat, flat_shuffled = x_test[:100].reshape(100, -1).astype(np.float64), shuffle(x_test[:100]).reshape(100, -1).astype(np.float64)
same_function = np.abs(layer.forward(flat) - shuffled_layer.forward(flat_shuffled)).max()
print(f"dense layer, original pixels vs shuffled pixels with shuffled rows: max difference {below(same_function)}")


# %%
def dense_network(rng):
    return Sequential([Flatten(), Dense(784, 256, rng=rng), ReLU(), Dense(256, 10, rng=rng)])


def conv_network(rng):
    return Sequential([Conv2D(1, 8, 3, padding="same", rng=rng), ReLU(), MaxPool2D(2),
                       Conv2D(8, 16, 3, padding="same", rng=rng), ReLU(), MaxPool2D(2), Flatten(), Dense(16 * 7 * 7, 10, rng=rng)])


def accuracy(build, pixels):
    model = build(np.random.default_rng(1))
    train, test = (x_train, x_test) if pixels == "real" else (shuffle(x_train), shuffle(x_test))
    fit(model, SGD(model, lr=0.02, momentum=0.9), train, y_train, epochs=1, batch_size=32,
        rng=np.random.default_rng(2), verbose=False)
    return evaluate(model, test, y_test)[1]


results = {(name, pixels): accuracy(build, pixels)
           for name, build in (("dense", dense_network), ("convolutional", conv_network)) for pixels in ("real", "shuffled")}
print(f"{'network':>13}  {'real pixels':>12}  {'shuffled':>12}")
for name in ("dense", "convolutional"):
    print(f"{name:>13}  {vary(results[name, 'real'], '.1%', 3):>12}  {vary(results[name, 'shuffled'], '.1%', 3):>12}")

# %% [markdown]
# The dense network scores within a point or two on both (its training sees the same numbers in
# another order, and takes a slightly different path); the convolutional network, better on the real
# images, loses most of its advantage and falls well below the dense one on the shuffled ones. Its
# strength on images is exactly its assumption that neighbouring pixels belong together: take the
# neighbourhoods away and the assumption is wrong. This is what "fully connected ignores locality"
# means, measured: the dense layer has no notion of which pixels are neighbours, so it gains nothing
# from them and loses nothing without them.
#
# ## Checks

# %%
assert same_function < 1e-12, "a dense layer is the same function on shuffled pixels, rows shuffled alike"
assert abs(results["dense", "real"] - results["dense", "shuffled"]) < 0.03, "the dense network trains as well on shuffled pixels"
assert results["convolutional", "real"] > results["dense", "real"] - 0.03, "on real images the CNN is as good or better"
assert results["convolutional", "shuffled"] < results["convolutional", "real"] - 0.1, "the CNN suffers from the shuffle"
assert results["convolutional", "shuffled"] < results["dense", "shuffled"] - 0.05, "and falls below the dense network"
print("a dense network does not care where the pixels are; a convolutional network does")
