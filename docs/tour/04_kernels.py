# %% [markdown]
# # 4. Different kernels, different questions
#
# The sliding window is always the same; only the nine weights change, and with them the question
# each position answers. Four classics from `minicnn.edges.filters`, on the photograph:
#
# - **box blur**, all weights 1/9: *what is the average brightness around here?*
# - **sharpen** `[[0, -1, 0], [-1, 5, -1], [0, -1, 0]]`: *how much brighter than its four neighbours
#   is this pixel?*, added to the pixel itself (5 = 1 + 4), so differences are exaggerated.
# - **Gaussian** `[[1, 2, 1], [2, 4, 2], [1, 2, 1]] / 16`: *the average around here, the nearer the
#   more it counts*; a gentler blur than the box.
# - **Sobel x**: *how much brighter is the right than the left?*, an edge detector.

# %%
import numpy as np

from minicnn import Conv2D
from minicnn.edges.filters import get_kernel
from minicnn.tour import image_row, photograph, show

names = ["box_blur", "sharpen", "gaussian", "sobel_x"]
kernels = np.stack([get_kernel(n, np.float64) for n in names])
for n, k in zip(names, kernels):
    print(f"{n}: weights add up to {k.sum():+.3f}\n{np.round(k, 4)}")

photo, about = photograph()
layer = Conv2D(1, len(names), 3, bias=False, dtype=np.float64)   # no padding: only windows inside the image
layer.params["W"][:] = kernels[:, None]
maps = layer.forward(photo[None, None])[0]
print(f"\n{about}: {photo.shape} -> maps {maps.shape}")
show(image_row([photo[1:-1, 1:-1], *maps], ["input", *names], height=2.4))

# %% [markdown]
# The weights' sum tells what a kernel does to a flat patch: 1 for the blurs and for sharpen (the
# brightness is kept), 0 for Sobel (flat gives nothing, only change shows). How much detail each map
# keeps, measured as the mean absolute difference between horizontal neighbours:

# %%
inner = photo[1:-1, 1:-1]
detail = {"input": np.abs(np.diff(inner, axis=1)).mean()}
detail.update({n: np.abs(np.diff(m, axis=1)).mean() for n, m in zip(names, maps)})
for n, d in detail.items():
    print(f"{n:>9}: {d:.4f}")
flat = np.full((1, 1, 6, 6), 0.5)
on_flat = layer.forward(flat)[0, :, 1, 1]
print("on a flat grey patch (0.5):", ", ".join(f"{n} {v + 0.0:.6f}" for n, v in zip(names, on_flat)))

# %% [markdown]
# ## Checks
#
# Both blurs remove detail (the box more than the Gaussian), sharpen adds it, the blurs and sharpen
# keep a flat patch as it is, and Sobel answers 0 there; Sobel's strongest responses are where the
# brightness changes from left to right the most.

# %%
assert detail["box_blur"] < detail["gaussian"] < detail["input"] < detail["sharpen"]
assert np.allclose(on_flat[:3], 0.5) and abs(on_flat[3]) < 1e-12
horizontal_change = photo[1:-1, 2:] - photo[1:-1, :-2]               # right minus left, two apart: (198, 169)
top = np.argsort(np.abs(maps[3]).ravel())[-200:]                      # Sobel's 200 strongest positions
ratio = np.abs(horizontal_change.ravel()[top]).mean() / np.abs(horizontal_change).mean()
print(f"at Sobel's 200 strongest positions the left-right change is {ratio:.1f} times its average")
assert ratio > 5
print("the blurs smooth, sharpen sharpens, and Sobel's strongest answers sit on steep left-right changes")
