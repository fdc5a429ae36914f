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

# %%
import numpy as np

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
# ## Checks
#
# On paper, each output is (left column - right column) of its window, summed over its three rows:
#
#     (0, 0): (1-3) + (0-2) + (1-1) = -4    (0, 1): (2-0) + (1-3) + (2-0) = 2    (0, 2): (3-1) + (2-1) + (1-0) = 4
#     (1, 0): (0-2) + (1-1) + (2-0) =  0    (1, 1): (1-3) + (2-0) + (1-1) = 0    (1, 2): (2-1) + (1-0) + (0-2) = 0
#     (2, 0): (1-1) + (2-0) + (0-2) =  0    (2, 1): (2-0) + (1-1) + (1-3) = 0    (2, 2): (1-0) + (0-2) + (2-1) = 0

# %%
expected = np.array([[-4, 2, 4], [0, 0, 0], [0, 0, 0]], dtype=np.float64)   # worked on paper, below
assert np.array_equal(by_loops, expected)
assert np.array_equal(by_reference, by_loops) and np.array_equal(by_layer, by_loops)
assert (patch * kernel).sum() == -4
assert at_00.sum() == 0 and at_01.sum() == 3
assert np.array_equal(step_map, [[0, 3, 3]] * 3), "3 exactly where the window straddles the edge, 0 on the flat part"
print("all three agree with the map worked on paper; the edge sits in columns 1-2 of the output")

# %% [markdown]
# **Write it yourself.** `minicnn exercises start conv2d_single` writes the loops of this chapter for you to fill in;
# `minicnn exercises check minicnn-exercises/conv2d_single.py` checks them, starting with this 5x5 map.
