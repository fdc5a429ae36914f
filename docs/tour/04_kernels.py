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

# %% [markdown]
# The course's kernels, exactly as it prints them (000 and 003: the box blur, all weights 1/9; 001:
# sharpen and the Gaussian /16; 003: Sobel x), are the library's to the last bit:

# %%
course = {"box_blur": np.ones((3, 3)) / 9, "sharpen": np.array([[0, -1, 0], [-1, 5, -1], [0, -1, 0]]),
          "gaussian": np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16, "sobel_x": np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])}
same = {n: bool(np.array_equal(course[n], k)) for n, k in zip(names, kernels)}
print("the course's kernel = minicnn's:", ", ".join(f"{n} {v}" for n, v in same.items()))

# %% [markdown]
# To see what they do, a 60 x 60 crop (the face), every map on the input's grey scale, black 0 to
# white 1, so a brighter or darker pixel means the same in every panel: sharpen's values outside
# [0, 1] show as pure black or white, which is what sharpening does to a strong edge. Sobel has no
# brightness to keep; it is drawn on its own scale, mid grey for 0.

# %%
crop = (slice(20, 80), slice(50, 110))                    # rows, columns of the maps (the input one pixel further)
shown = {"input": photo[1:-1, 1:-1][crop]}
shown.update({n: m[crop] for n, m in zip(names, maps)})
sobel_limit = float(np.abs(shown["sobel_x"]).max())
show(image_row(list(shown.values()), list(shown), height=2.0,
               limits=[(0, 1)] * 4 + [(-sobel_limit, sobel_limit)]))
on_screen = {n: np.clip(v, 0, 1) for n, v in shown.items() if n != "sobel_x"}       # what the grey panels show
for n, v in on_screen.items():
    print(f"{n:>9}: mean |left-right difference| on screen {np.abs(np.diff(v, axis=1)).mean():.4f}, "
          f"{(v != shown[n]).mean():.0%} of its pixels beyond black or white")

# %% [markdown]
# The weights' sum tells what a kernel does to a flat patch: 1 for the blurs and for sharpen (the
# brightness is kept), 0 for Sobel (flat gives nothing, only change shows). How much detail the
# blurs and sharpen keep of the whole photograph, measured as the mean absolute difference between
# horizontal neighbours (Sobel is not in this list: its map is a measure of change, not a picture
# whose detail could be kept):

# %%
inner = photo[1:-1, 1:-1]
detail = {"input": np.abs(np.diff(inner, axis=1)).mean()}
detail.update({n: np.abs(np.diff(m, axis=1)).mean() for n, m in zip(names, maps) if n != "sobel_x"})
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
assert all(same.values()), "the course's kernels, exactly"
assert detail["box_blur"] < detail["gaussian"] < detail["input"] < detail["sharpen"]
screen = {n: np.abs(np.diff(v, axis=1)).mean() for n, v in on_screen.items()}
assert screen["box_blur"] < screen["gaussian"] < screen["input"] < screen["sharpen"], "the panels show it too"
if about.startswith("the photograph"):                    # (the synthetic stand-in has other proportions)
    assert screen["sharpen"] > 1.5 * screen["input"] and screen["input"] > 1.3 * screen["box_blur"], "visibly"
assert np.allclose(on_flat[:3], 0.5) and abs(on_flat[3]) < 1e-12
horizontal_change = photo[1:-1, 2:] - photo[1:-1, :-2]               # right minus left, two apart: (198, 169)
# Sobel's 200 strongest positions; rounded and sorted stably, so that responses equal but for rounding
# (the photograph's grey levels are multiples of 1/255) are ranked the same on every machine
top = np.argsort(np.round(np.abs(maps[3]), 9).ravel(), kind="stable")[-200:]
ratio = np.abs(horizontal_change.ravel()[top]).mean() / np.abs(horizontal_change).mean()
print(f"at Sobel's 200 strongest positions the left-right change is {ratio:.1f} times its average")
assert ratio > 5
print("the blurs smooth, sharpen sharpens, and Sobel's strongest answers sit on steep left-right changes")
