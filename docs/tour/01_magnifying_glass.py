# %% [markdown]
# # 1. The magnifying glass
#
# A convolution slides a small grid of weights, the *kernel*, over an image. At every position it
# multiplies the kernel with the patch of pixels under it and adds the products up: one number per
# position, and all of them together make a new image, the *feature map*. The kernel is a magnifying
# glass that looks for one thing: which thing depends only on its nine numbers.
#
# Three kernels to start with:
#
# - `[[-1, 0, 1]] * 3`: right column minus left column. Large where the image gets brighter to the
#   right, i.e. at a **vertical edge**; zero where the patch is flat.
# - its transpose: bottom row minus top row, a **horizontal edge** detector.
# - the 3x3 **box blur**: every weight 1/9, the average of the patch.
#
# We apply them with `minicnn.Conv2D` (weights set by hand, no bias, `padding=1` so the maps keep the
# input's size) to an MNIST digit and to a real photograph. MNIST is read with
# `minicnn.data.mnist.load_mnist(download=True)`: fetched and checked the first time, like everything else.

# %%
import numpy as np
from _tour import image_row, mnist, photograph, show

from minicnn import Conv2D
from minicnn.edges.filters import get_kernel

vertical = np.array([[-1, 0, 1]] * 3, dtype=np.float64)
horizontal = vertical.T
blur = get_kernel("box_blur", np.float64)
print("vertical edge:\n", vertical, "\nhorizontal edge (its transpose):\n", horizontal, "\nbox blur:\n", blur.round(3))

conv = Conv2D(1, 3, 3, padding=1, bias=False, dtype=np.float64)
conv.params["W"][:] = np.stack([vertical, horizontal, blur])[:, None]   # (F=3, C=1, 3, 3)


def feature_maps(image):
    """(H, W) image -> (3, H, W): the vertical-edge, horizontal-edge and blur maps."""
    return conv.forward(image[None, None])[0]


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
# on the left and right sides of each stroke with opposite signs, and stays near zero on the
# background and along horizontal strokes; the horizontal-edge map does the same for tops and bottoms.

# %%
show(image_row(maps[:2], ["vertical edges", "horizontal edges"], symmetric=True))
strength = np.abs(maps[:2]).sum(axis=(1, 2))
print(f"total |response|: vertical {strength[0]:.1f}, horizontal {strength[1]:.1f}")

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

flat = np.full((5, 5), 0.7)
flat_maps = feature_maps(flat)[:, 1:-1, 1:-1]      # away from the zero padding
assert np.allclose(flat_maps[:2], 0) and np.allclose(flat_maps[2], 0.7)
print(f"flat patch: the edge kernels give at most {np.abs(flat_maps[:2]).max():.0e} (zero but for rounding), "
      f"the blur gives {flat_maps[2].mean():.6f}")
