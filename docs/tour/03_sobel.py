# %% [markdown]
# # 3. Sobel, and the size of the output
#
# The Sobel kernel for vertical edges weighs the middle row twice, a little smoothing along the edge:
#
#     sobel_x = [[-1, 0, 1],
#                [-2, 0, 2],
#                [-1, 0, 1]]
#
# (right minus left, so it is positive where the image gets brighter to the right). On a 7x7 image,
# dark on the left and bright on the right, its 5x5 map is large exactly at the edge and zero on the flat parts.

# %%
import numpy as np

from minicnn import Conv2D
from minicnn.edges.filters import get_kernel

sobel_x = get_kernel("sobel_x", np.float64)
image = np.array([[0, 0, 0, 9, 9, 9, 9]] * 7, dtype=np.float64)
layer = Conv2D(1, 1, 3, bias=False, dtype=np.float64)
layer.params["W"][:] = sobel_x
out = layer.forward(image[None, None])[0, 0]
print("image:\n", image, "\nsobel_x map:\n", out)

# %% [markdown]
# Columns 1 and 2 of the output are the windows that contain the step (9 - 0 per row, weights 1 + 2 + 1):
# 4 * 9 = 36. The windows that see only 0s or only 9s give 0: the kernel's weights add up to zero.
#
# ## How big is the output?
#
# A K x K kernel fits into N pixels at N - K + 1 positions: 7 - 3 + 1 = 5. With a stride S (the step
# between positions) and P zeros of padding on each side:
#
#     N_out = floor((N + 2P - K) / S) + 1
#
# "valid" means P = 0; "same" (stride 1) adds P = (K - 1) / 2 zeros so that N_out = N (an even kernel
# puts its extra row and column bottom and right, as PyTorch does). The table checks the formula against
# `Conv2D(...).output_shape`, which is what a network uses to plan its layers.

# %%
def formula(N, K, stride, pad_before, pad_after):
    return (N + pad_before + pad_after - K) // stride + 1


cases = [(7, 3, 1, 0), (28, 3, 1, 1), (28, 5, 1, 2), (28, 3, 2, 1), (28, 3, 2, 0), (32, 5, 3, 0),
         (10, 4, 2, 1), (5, 5, 1, 0), (13, 3, 1, "valid"), (13, 3, 1, "same"), (13, 4, 1, "same"), (28, 7, 1, "same")]
print(f"{'N':>3} {'K':>2} {'stride':>6} {'padding':>8} | {'formula':>7} {'Conv2D':>6}")
rows = []
for N, K, S, P in cases:
    conv = Conv2D(1, 1, K, stride=S, padding=P)
    got = conv.output_shape((1, N, N))[1]
    if P == "valid":
        before = after = 0
    elif P == "same":
        before, after = (K - 1) // 2, K // 2
    else:
        before = after = P
    want = formula(N, K, S, before, after)
    rows.append((N, K, S, P, want, got))
    print(f"{N:>3} {K:>2} {S:>6} {str(P):>8} | {want:>7} {got:>6}")

# %% [markdown]
# The planned size is also the size the layer produces: run a random image through each of them.

# %%
rng = np.random.default_rng(0)
for N, K, S, P, want, got in rows:
    y = Conv2D(1, 1, K, stride=S, padding=P, rng=rng).forward(rng.standard_normal((1, 1, N, N)).astype(np.float32))
    assert y.shape == (1, 1, want, want), (N, K, S, P, y.shape)
print("every forward pass produced the planned size")

# %% [markdown]
# ## Stride as values, not only sizes
#
# Stride 2 "skips every other pixel" (001): the kernel visits every second position. So the values
# of a stride-2 map are those of the stride-1 map, every second row and column: the same
# multiply-and-add at the positions it still visits, nothing averaged or merged.

# %%
photo_like = rng.standard_normal((1, 1, 13, 13))
strided = {}
for S in (1, 2, 3):
    layer_s = Conv2D(1, 1, 3, stride=S, padding=1, bias=False, dtype=np.float64)
    layer_s.params["W"][:] = sobel_x
    strided[S] = layer_s.forward(photo_like)[0, 0]
    print(f"stride {S}: map {strided[S].shape}")
print("stride 2 = stride 1 at every second row and column:", np.allclose(strided[2], strided[1][::2, ::2], rtol=0, atol=1e-12),
      "  stride 3 = every third:", np.allclose(strided[3], strided[1][::3, ::3], rtol=0, atol=1e-12))
small = Conv2D(1, 1, 3, stride=2, bias=False, dtype=np.float64)
small.params["W"][:] = sobel_x
print("the 7x7 edge image, stride 2, no padding:\n", small.forward(image[None, None])[0, 0])

# %% [markdown]
# ## Checks

# %%
assert out.shape == (5, 5) == (7 - 3 + 1,) * 2
assert np.array_equal(out[:, 1:3], np.full((5, 2), 36.0)), "large exactly at the edge"
assert np.abs(out[:, [0, 3, 4]]).max() < 1e-12, "zero on the flat parts"
assert all(want == got for *_, want, got in rows)
assert Conv2D(1, 1, 3, padding="same").output_shape((1, 13, 13)) == (1, 13, 13)
for S in (2, 3):
    assert np.allclose(strided[S], strided[1][::S, ::S], rtol=0, atol=1e-12), f"stride {S} = stride 1 subsampled"
assert np.array_equal(small.forward(image[None, None])[0, 0], out[::2, ::2]), "stride 2 on the 7x7 image: out[::2, ::2]"
print("sobel_x marks the edge with 36 and the flat parts with 0; the formula matches Conv2D in all",
      len(rows), "cases")

# %% [markdown]
# The course (003) promises to "pick this animation back up, with learnable kernels": chapter 7 does,
# starting from the gradient of one kernel on this kind of image. In the studio (`python -m minicnn studio`,
# then the address it prints followed by `#view=stepper&image=step&kernel=sobel_x`, this chapter's 7x7
# image) the kernel slides one position at a time; `#view=backward&image=step` shows the same positions adding up the
# kernel's gradient.
#
# **Write it yourself.** `minicnn exercises start conv2d_forward` (a batch, channels, stride and padding) and
# `minicnn exercises start im2col` (every window as a column); `minicnn exercises check minicnn-exercises`
# checks them, starting with this chapter's 7x7 image and Sobel.
