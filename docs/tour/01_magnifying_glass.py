# %% [markdown]
# # 1. The magnifying glass
#
# A convolution slides a small grid of weights, the *kernel*, over an image. At every position it
# multiplies the kernel with the patch of pixels under it and adds the products up: one number per
# position, and all of them together make a new image, the *feature map*. The kernel is a magnifying
# glass that looks for one thing: which thing depends only on its nine numbers.
#
# Written out, for an image I and a K x K kernel W, the feature map is
#
#     out[i, j] = sum over u, v of I[i + u, j + v] * W[u, v]        (u, v = 0 ... K - 1)
#
# (chapter 2 shows that this is, strictly, *cross-correlation*, and what the kernel flip of a true
# convolution changes). Three kernels to start with:
#
# - `[[-1, 0, 1]] * 3`: right column minus left column. Large where the image gets brighter to the
#   right, i.e. at a **vertical edge**; zero where the patch is flat. This is the "bright on the
#   right" kernel of the course texts 000 and 004; chapter 2 uses its negation `[1, 0, -1]` (001, 002).
# - its transpose: bottom row minus top row, a **horizontal edge** detector.
# - the 3x3 **box blur**: every weight 1/9, the average of the patch.
#
# We apply them with `minicnn.Conv2D` (weights set by hand, no bias, `padding=1` so the maps keep the
# input's size) to an MNIST digit and to a real photograph. MNIST is read with
# `minicnn.data.mnist.load_mnist(download=True)`: fetched and checked the first time; the photograph
# comes with matplotlib.
#
# ## 004's patch table
#
# The course's cheat sheet (004) works the bright-on-the-right filter by hand on two patches: an edge
# (`0 0 1` in each row) and a flat one (`1 1 1` in each row). Each row gives `0·-1 + 0·0 + 1·1 = 1`, so
# the edge totals 3, "edge detected"; the flat patch gives `1·-1 + 1·0 + 1·1 = 0` per row, "no edge".

# %%
import numpy as np

from minicnn import Conv2D
from minicnn.edges.filters import get_kernel
from minicnn.tour import below, image_row, mnist, photograph, show

vertical = np.array([[-1, 0, 1]] * 3, dtype=np.float64)
horizontal = vertical.T
blur = get_kernel("box_blur", np.float64)
print("vertical edge:\n", vertical, "\nhorizontal edge (its transpose):\n", horizontal, "\nbox blur:\n", blur.round(3))

conv = Conv2D(1, 3, 3, padding=1, bias=False, dtype=np.float64)
conv.params["W"][:] = np.stack([vertical, horizontal, blur])[:, None]   # (F=3, C=1, 3, 3)


def feature_maps(image):
    """(H, W) image -> (3, H, W): the vertical-edge, horizontal-edge and blur maps."""
    return conv.forward(image[None, None])[0]


edge_patch = np.array([[0, 0, 1]] * 3, dtype=np.float64)
flat_patch = np.ones((3, 3))
table = {}
for name, patch in (("edge", edge_patch), ("flat", flat_patch)):
    each_row = [float(row @ vertical[0]) for row in patch]
    table[name] = (each_row, float(feature_maps(patch)[0, 1, 1]))    # the centre: its window is the whole patch
    print(f"{name}: {' / '.join(' '.join(f'{v:.0f}' for v in row) for row in patch)}   each row {each_row[0]:.0f}"
          f"   total {table[name][1]:.0f}")


# %% [markdown]
# ## On a digit

# %%
_, _, x_test, y_test = mnist(0, 1)
digit = x_test[0, 0].astype(np.float64)
maps = feature_maps(digit)
print(f"test digit 0 (label {y_test[0]}): input {digit.shape}, feature maps {maps.shape}")
show(image_row([digit, *maps], ["input", "vertical edges", "horizontal edges", "box blur"]))

# %% [markdown]
# Red is positive (brighter to the right, or below), blue negative. The vertical-edge map lights up
# on the left and right sides of each stroke with opposite signs, and is zero inside the background
# and small along horizontal strokes; the horizontal-edge map does the same for tops and bottoms.
#
# All but a frame: along the border both edge maps show a line of about ±1.27. The digit is
# standardised, so its background is not 0 but -0.42, and the zero padding outside the image is
# *brighter* than that: three padding pixels against three background pixels give 3 x 0.42 = 1.27,
# an edge that is in the padding, not in the digit. Shift the digit so that its background is 0 (or
# pad with the background's value) and the frame is gone: the two panels on the right.

# %%
background = float(digit.min())
maps_zero_background = feature_maps(digit - background)
show(image_row([*maps[:2], *maps_zero_background[:2]],
               ["vertical edges", "horizontal edges", "vertical, background 0", "horizontal, background 0"],
               symmetric=True))
strength = np.abs(maps[:2]).sum(axis=(1, 2))
print(f"total |response|: vertical {strength[0]:.1f}, horizontal {strength[1]:.1f}")
frame = np.ones(digit.shape, dtype=bool)
frame[1:-1, 1:-1] = False
window_all_background = np.pad(digit == background, 1, constant_values=True)
quiet = np.all([window_all_background[i:i + 28, j:j + 28] for i in range(3) for j in range(3)], axis=0)
print(f"background {background:.4f}; where a window sees only background, the edge maps reach "
      f"{np.abs(maps[:2][:, quiet]).max():.4f} on the border (3 x {-background:.4f} = {-3 * background:.4f}) "
      f"and {np.abs(maps[:2][:, quiet & ~frame]).max():.4f} inside; with the background at 0, "
      f"{np.abs(maps_zero_background[:2][:, quiet]).max():.4f} everywhere")

# %% [markdown]
# ## On a photograph
#
# matplotlib ships a photograph of Grace Hopper in its sample data; nothing is downloaded.

# %%
photo, about = photograph()
print(f"{about}: {photo.shape[0]} x {photo.shape[1]} pixels, grey values in [0, 1]")
photo_maps = feature_maps(photo)
show(image_row([photo, *photo_maps], ["input", "vertical edges", "horizontal edges", "box blur"], height=2.6))

# %% [markdown]
# ## In colour: one kernel per input channel, summed
#
# The course (002) says the input can be grayscale or multi-channel (RGB). A colour image has three
# channels, so a filter has three 3x3 kernels, one per channel: a layer's weights are F x C x K x K
# (here 1 x 3 x 3 x 3). Each kernel slides over its own channel, and the three maps are **added** into
# one: one output channel per filter, however many input channels there are.

# %%
colour, _ = photograph(colour=True)                                  # (3, H, W): red, green, blue
rgb = Conv2D(3, 1, 3, padding=1, bias=False, dtype=np.float64)
rgb.params["W"][:] = vertical                                        # the same edge kernel on each channel
print(f"colour photograph {colour.shape}, weights {rgb.params['W'].shape} (F x C x K x K), map {rgb.forward(colour[None]).shape}")
rgb_map = rgb.forward(colour[None])[0, 0]
per_channel = [feature_maps(channel)[0] for channel in colour]
print(f"map of the three channels at once vs the sum of three one-channel maps: max difference "
      f"{below(np.abs(rgb_map - sum(per_channel)).max())}")
grey_weights = np.array([0.299, 0.587, 0.114])                       # the weights of a grey conversion
rgb.params["W"][:] = grey_weights[None, :, None, None] * vertical
on_grey = feature_maps(np.tensordot(grey_weights, colour, axes=1))[0]
print(f"kernels weighted 0.299, 0.587, 0.114 per channel = the edge kernel on the grey image: max difference "
      f"{below(np.abs(rgb.forward(colour[None])[0, 0] - on_grey).max())}")
show(image_row([colour.transpose(1, 2, 0), *per_channel, rgb_map], ["input (RGB)", "red", "green", "blue", "sum: the filter's map"],
               height=2.0, limits=[(0, 1), None, None, None, None]))


# %% [markdown]
# ## Checks
#
# What the pictures show, as numbers:
#
# 1. the vertical-edge map *is* "right neighbour minus left neighbour, summed over three rows",
#    computed here with plain NumPy slicing instead of a convolution;
# 2. the horizontal kernel is the vertical one transposed, so filtering the transposed image with the
#    vertical kernel gives the transposed horizontal map, exactly;
# 3. the blur is the average of each 3x3 patch, and it smooths: neighbouring pixels differ less;
# 4. on a flat patch every edge kernel gives 0 (its weights add up to 0), the blur gives the value itself.

# %%
def by_slicing(image):
    """Sum over three rows of (pixel to the right - pixel to the left), zeros outside the image."""
    p = np.pad(image, 1)
    rows = p[:-2] + p[1:-1] + p[2:]            # (H, W + 2): each column summed over three rows
    return rows[:, 2:] - rows[:, :-2]


for name, image, m in (("digit", digit, maps), ("photograph", photo, photo_maps)):
    assert m.shape == (3,) + image.shape, "padding 1 keeps the size"
    assert np.allclose(m[0], by_slicing(image), atol=1e-12), name
    assert np.allclose(feature_maps(image.T.copy())[0], m[1].T, atol=1e-12), name
    p = np.pad(image, 1)
    window_means = np.mean([p[i:i + image.shape[0], j:j + image.shape[1]] for i in range(3) for j in range(3)], axis=0)
    assert np.allclose(m[2], window_means, atol=1e-12), name
    inner = m[2][1:-1, 1:-1]
    assert np.abs(np.diff(inner, axis=1)).mean() < np.abs(np.diff(image[1:-1, 1:-1], axis=1)).mean(), name
    print(f"{name}: mean |left-right difference| {np.abs(np.diff(image, axis=1)).mean():.4f} before the blur, "
          f"{np.abs(np.diff(inner, axis=1)).mean():.4f} after")

assert table["edge"] == ([1.0, 1.0, 1.0], 3.0) and table["flat"] == ([0.0, 0.0, 0.0], 0.0), "004's table, verbatim"
assert np.isclose(np.abs(maps[:2][:, quiet]).max(), -3 * background, atol=1e-6), "the frame is 3 x the background"
assert np.abs(maps[:2][:, quiet & ~frame]).max() < 1e-6, "inside, the background gives 0"
assert np.abs(maps_zero_background[:2][:, quiet]).max() == 0, "exactly zero wherever the window sees only background"
assert np.abs(maps[:2]).max(axis=0)[quiet & frame].min() > 0.8, "the frame: on every border pixel of pure background"
assert np.allclose(rgb_map, sum(per_channel), atol=1e-12), "a multi-channel filter sums its channels' maps"
assert np.allclose(rgb.forward(colour[None])[0, 0], on_grey, atol=1e-12)

flat = np.full((5, 5), 0.7)
flat_maps = feature_maps(flat)[:, 1:-1, 1:-1]      # away from the zero padding
assert np.allclose(flat_maps[:2], 0) and np.allclose(flat_maps[2], 0.7)
print(f"flat patch: the edge kernels give {below(np.abs(flat_maps[:2]).max())} (zero but for rounding), "
      f"the blur gives {flat_maps[2].mean():.6f}")
