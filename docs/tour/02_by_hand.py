# %% [markdown]
# # 2. By hand
#
# The whole of a convolution fits in four nested loops: over output rows and columns, and over the
# rows and columns of the kernel. Here is the textbook's 5x5 example worked three ways, which must
# agree to the last digit:
#
# 1. the four loops, written out in the cell below;
# 2. `minicnn.nn.reference.conv2d_naive`, the loop version every test of minicnn compares with;
# 3. `minicnn.Conv2D`, the layer a network uses (im2col and one matrix product, on the fast engine).
#
# No padding and stride 1, so a 3x3 kernel fits 5 - 3 + 1 = 3 times across and 3 times down.
#
# The kernel is the course's (001, 002): `[1, 0, -1]` in each row, left column minus right column,
# large where the image is **bright on the left**. It is the negation of chapter 1's `[-1, 0, 1]`
# (000, 004: bright on the right): the same edges, with the opposite sign.

# %%
import numpy as np
from scipy.signal import convolve2d, correlate2d

from minicnn import Conv2D
from minicnn.nn.reference import conv2d_naive

image = np.array([[1, 2, 3, 0, 1],
                  [0, 1, 2, 3, 1],
                  [1, 2, 1, 0, 0],
                  [2, 1, 0, 1, 2],
                  [0, 1, 2, 3, 1]], dtype=np.float64)
kernel = np.array([[1, 0, -1]] * 3, dtype=np.float64)

H, W = image.shape
KH, KW = kernel.shape
by_loops = np.zeros((H - KH + 1, W - KW + 1))
for i in range(H - KH + 1):            # output row
    for j in range(W - KW + 1):        # output column
        for u in range(KH):            # kernel row
            for v in range(KW):        # kernel column
                by_loops[i, j] += image[i + u, j + v] * kernel[u, v]

by_reference = conv2d_naive(image[None, None], kernel[None, None])[0, 0]
layer = Conv2D(1, 1, 3, bias=False, dtype=np.float64)
layer.params["W"][:] = kernel
by_layer = layer.forward(image[None, None])[0, 0]

print("the 3x3 feature map (four loops):\n", by_loops)
print("conv2d_naive agrees:", np.array_equal(by_reference, by_loops), "  Conv2D agrees:", np.array_equal(by_layer, by_loops))

# %% [markdown]
# One position spelled out: the window at the top-left corner holds rows 0-2, columns 0-2 of the image.

# %%
patch = image[0:3, 0:3]
print("patch:\n", patch, "\nkernel:\n", kernel, "\nproducts:\n", patch * kernel)
print("sum:", (patch * kernel).sum(), " (left column 1+0+1 = 2, minus right column 3+2+1 = 6)")

# %% [markdown]
# ## A vertical edge
#
# Now a 5x5 image whose every row is `[1, 1, 1, 0, 0]`: bright on the left, dark on the right, the
# edge between columns 2 and 3. The same kernel adds up the left column of each window and
# subtracts the right one.
#
# - At (0, 0) the window covers columns 0-2, all ones: (1 + 1 + 1) - (1 + 1 + 1) = **0**. Flat, no edge.
# - At (0, 1) it covers columns 1-3: left column ones, right column zeros: (1 + 1 + 1) - (0 + 0 + 0) = **3**.
#
# Every window that straddles the edge gives 3, the others 0: the output marks where the edge is.

# %%
step = np.array([[1, 1, 1, 0, 0]] * 5, dtype=np.float64)
step_map = layer.forward(step[None, None])[0, 0]
at_00 = step[0:3, 0:3] * kernel
at_01 = step[0:3, 1:4] * kernel
print(f"(0, 0): left column {step[0:3, 0].sum():.0f} - right column {step[0:3, 2].sum():.0f} = {at_00.sum():.0f}")
print(f"(0, 1): left column {step[0:3, 1].sum():.0f} - right column {step[0:3, 3].sum():.0f} = {at_01.sum():.0f}")
print("feature map:\n", step_map)

# %% [markdown]
# Step through it yourself, one position at a time as in the course's Step animation (001): run
# `python -m minicnn studio` and open the address it prints with `#view=stepper&image=small&kernel=edge_bright_left`
# after it (this kernel), or `#view=stepper&image=small&kernel=edge_bright_right` (chapter 1's).
#
# ## Two sign conventions, one edge
#
# The two kernels are negatives of each other, so their maps are too: on this bright-on-the-left
# edge, `[1, 0, -1]` answers +3 and `[-1, 0, 1]` answers -3. Which sign means "edge" is a convention;
# a network learns whichever its task needs.

# %%
bright_right = -kernel                                   # [-1, 0, 1] in each row: chapter 1's, 000's and 004's
layer_right = Conv2D(1, 1, 3, bias=False, dtype=np.float64)
layer_right.params["W"][:] = bright_right
step_map_right = layer_right.forward(step[None, None])[0, 0]
print("[-1, 0, 1] on the same image:\n", step_map_right)

# %% [markdown]
# ## The formula, and the flip
#
# What the loops compute is, for output position (i, j),
#
#     out[i, j] = sum over u, v of I[i + u, j + v] * K[u, v]
#
# which mathematics calls **cross-correlation**. The convolution of the textbooks, written I * K,
# turns the kernel around first:
#
#     (I * K)[i, j] = sum over u, v of I[i - u, j - v] * K[u, v]
#                   = cross-correlation of I with K flipped left-right and upside down
#
# CNN libraries (PyTorch, TensorFlow, minicnn) compute cross-correlation and call it convolution: the
# kernel is learned, so a flipped one is learned just as well. SciPy has both, which makes the
# difference measurable: `scipy.signal.correlate2d` is what `Conv2D` does, `scipy.signal.convolve2d`
# is the flipped one. And flipping reconciles the two signs: `[1, 0, -1]` flipped left-right is
# `[-1, 0, 1]`, so the *true* convolution with 002's kernel gives exactly chapter 1's
# bright-on-the-right map.

# %%
flipped = kernel[::-1, ::-1]
print("002's kernel flipped:\n", flipped)
by_correlate = correlate2d(image, kernel, mode="valid")
by_convolve = convolve2d(image, kernel, mode="valid")
layer_right.params["W"][:] = flipped
print("Conv2D = correlate2d:", np.array_equal(by_layer, by_correlate),
      "  convolve2d = Conv2D with the flipped kernel:", np.array_equal(by_convolve, layer_right.forward(image[None, None])[0, 0]))
print("true convolution with [1, 0, -1]:\n", by_convolve, "\ncross-correlation with [1, 0, -1] (the map above):\n", by_correlate)

# %% [markdown]
# ## Checks
#
# On paper, each output is (left column - right column) of its window, summed over its three rows:
#
#     (0, 0): (1-3) + (0-2) + (1-1) = -4    (0, 1): (2-0) + (1-3) + (2-0) = 2    (0, 2): (3-1) + (2-1) + (1-0) = 4
#     (1, 0): (0-2) + (1-1) + (2-0) =  0    (1, 1): (1-3) + (2-0) + (1-1) = 0    (1, 2): (2-1) + (1-0) + (0-2) = 0
#     (2, 0): (1-1) + (2-0) + (0-2) =  0    (2, 1): (2-0) + (1-1) + (1-3) = 0    (2, 2): (1-0) + (0-2) + (2-1) = 0
#
# (the map printed above; the same sums, worked on paper.)

# %%
expected = np.array([[-4, 2, 4], [0, 0, 0], [0, 0, 0]], dtype=np.float64)   # worked on paper, above
assert np.array_equal(by_loops, expected)
assert np.array_equal(by_reference, by_loops) and np.array_equal(by_layer, by_loops)
assert (patch * kernel).sum() == -4
assert at_00.sum() == 0 and at_01.sum() == 3
assert np.array_equal(step_map, [[0, 3, 3]] * 3), "3 exactly where the window straddles the edge, 0 on the flat part"
assert np.array_equal(bright_right, [[-1, 0, 1]] * 3) and np.array_equal(step_map_right, -step_map), "the negation: -3"
assert np.array_equal(flipped, bright_right), "flipping [1, 0, -1] gives [-1, 0, 1]"
assert np.array_equal(by_layer, by_correlate), "Conv2D computes cross-correlation"
assert np.array_equal(by_convolve, layer_right.forward(image[None, None])[0, 0]), "convolution = correlation with the flip"
assert not np.array_equal(by_convolve, by_correlate) and np.array_equal(by_convolve, -by_correlate), "here: the flip is the sign"
print("all three agree with the map worked on paper; the edge sits in columns 1-2 of the output")

# %% [markdown]
# **Write it yourself.** `minicnn exercises start conv2d_single` writes the loops of this chapter for you to fill in;
# `minicnn exercises check minicnn-exercises/conv2d_single.py` checks them, starting with this 5x5 map.
