"""The inputs every check runs, in order: the course's examples first, then random shapes.

``cases(name, rng)`` -> list of ``(words, args)``: ``words`` says the case to a learner
("stride 2, padding 1, 2 images of 3x7x5, 4 filters 3x2"), ``args`` is the call's arguments (float64).
"""
import numpy as np

COURSE_IMAGE = np.array([[1, 2, 3, 0, 1], [0, 1, 2, 3, 1], [1, 2, 1, 0, 0], [2, 1, 0, 1, 2], [0, 1, 2, 3, 1]], float)
COURSE_KERNEL = np.array([[1, 0, -1], [1, 0, -1], [1, 0, -1]], float)
COURSE_MAP = np.array([[-4, 2, 4], [0, 0, 0], [0, 0, 0]], float)
SOBEL_X = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], float)
EDGE_7x7 = np.array([[0, 0, 0, 9, 9, 9, 9]] * 7, float)   # chapter 003: dark on the left, bright on the right

COURSE_SINGLE = [("the course's 5x5 example (chapter 002)", (COURSE_IMAGE, COURSE_KERNEL)),
                 ("the course's 7x7 edge with Sobel x (chapter 003)", (EDGE_7x7, SOBEL_X))]

# (N, C, H, W, F, KH, KW, stride, padding)
CONV_SHAPES = [(1, 1, 6, 6, 1, 3, 3, 1, 0), (1, 3, 5, 4, 2, 3, 3, 1, 0), (5, 3, 7, 5, 4, 3, 2, 1, 0),
               (2, 3, 7, 5, 4, 3, 3, 2, 1), (1, 2, 8, 9, 3, 2, 3, 3, 2), (5, 2, 6, 7, 3, 3, 3, 1, 1),
               (2, 1, 9, 8, 2, 3, 2, 2, 0), (1, 2, 7, 7, 2, 4, 3, 3, 1), (2, 2, 5, 6, 2, 3, 3, 2, 2)]


def conv_words(N, C, H, W, F, KH, KW, stride, padding):
    images = "1 image" if N == 1 else f"{N} images"
    filters = "1 filter" if F == 1 else f"{F} filters"
    return f"stride {stride}, padding {padding}, {images} of {C}x{H}x{W}, {filters} {KH}x{KW}"


def _conv(rng, with_dout):
    out = [("the course's 5x5 example (chapter 002) as 1 image of 1x5x5", (COURSE_IMAGE[None, None], COURSE_KERNEL[None, None],
                                                                    np.zeros(1), 1, 0)),
           ("the course's 7x7 edge with Sobel x (chapter 003)", (EDGE_7x7[None, None], SOBEL_X[None, None], np.zeros(1), 1, 0))]
    for N, C, H, W, F, KH, KW, s, p in CONV_SHAPES:
        args = (rng.normal(size=(N, C, H, W)), rng.normal(size=(F, C, KH, KW)), rng.normal(size=F), s, p)
        out.append((conv_words(N, C, H, W, F, KH, KW, s, p), args))
    if with_dout:
        from minicnn.exercises import reference
        out = [(w, (rng.normal(size=reference.conv2d_forward(*a).shape), *a)) for w, a in out]
    return out


def _im2col(rng):
    out = [("the course's 5x5 example (chapter 002), kernel 3x3", (COURSE_IMAGE[None, None], (3, 3), 1, 0))]
    for N, C, H, W, _, KH, KW, s, p in CONV_SHAPES[1:]:
        out.append((f"kernel {KH}x{KW}, " + conv_words(N, C, H, W, 1, KH, KW, s, p).rsplit(",", 1)[0],
                    (rng.normal(size=(N, C, H, W)), (KH, KW), s, p)))
    return out


POOL_SHAPES = [(1, 1, 4, 4, 2, 2), (5, 3, 6, 8, 2, 2), (2, 2, 7, 5, 3, 2), (1, 2, 5, 6, 2, 1), (2, 1, 9, 9, 3, 3)]


def _pool(rng, with_dout):
    out = [("a 4x4 map with ties (equal values in a window)", (np.array([[[[1, 1, 2, 0], [0, 1, 2, 2], [3, 0, 1, 1],
                                                                            [0, 3, 1, 1]]]], float), 2, 2))]
    for N, C, H, W, size, s in POOL_SHAPES:
        out.append((f"size {size}, stride {s}, {N} image{'s' * (N > 1)} of {C}x{H}x{W}", (rng.normal(size=(N, C, H, W)), size, s)))
    if with_dout:
        from minicnn.exercises import reference
        out = [(w, (rng.normal(size=reference.maxpool2d_forward(*a).shape), *a)) for w, a in out]
    return out


def cases(name, rng):
    """The list of ``(words, args)`` for exercise ``name``."""
    if name == "conv2d_single":
        return COURSE_SINGLE + [(f"a random {h}x{w} image, kernel {k}x{k2}", (rng.normal(size=(h, w)), rng.normal(size=(k, k2))))
                                for h, w, k, k2 in [(6, 6, 3, 3), (7, 5, 3, 2), (4, 9, 2, 4)]]
    if name == "conv2d_forward":
        return _conv(rng, False)
    if name == "conv2d_backward":
        return _conv(rng, True)
    if name == "im2col":
        return _im2col(rng)
    if name == "maxpool2d_forward":
        return _pool(rng, False)
    if name == "maxpool2d_backward":
        return _pool(rng, True)
    if name in ("relu_forward", "relu_backward"):
        shapes = [(1, 5), (5, 3, 4, 6), (2, 7)]
        xs = [(f"{'x'.join(map(str, s))} values", rng.normal(size=s)) for s in shapes]
        if name == "relu_forward":
            return [(w, (x,)) for w, x in xs]
        return [(w, (rng.normal(size=x.shape), x)) for w, x in xs]
    if name in ("dense_forward", "dense_backward"):
        out = []
        for N, D, K in [(1, 4, 3), (5, 6, 2), (3, 2, 7)]:
            args = (rng.normal(size=(N, D)), rng.normal(size=(D, K)), rng.normal(size=K))
            words = f"batch {N}, {D} inputs, {K} outputs"
            out.append((words, args if name == "dense_forward" else (rng.normal(size=(N, K)), *args)))
        return out
    if name == "softmax_cross_entropy":
        return [(f"batch {N}, {K} classes", (rng.normal(size=(N, K)) * 3, rng.integers(0, K, size=N)))
                for N, K in [(1, 3), (5, 10), (4, 2)]]
    if name == "sgd_momentum_step":
        return [(f"lr {lr}, momentum {m}, velocity {'zero' if z else 'not zero'}",
                 (rng.normal(size=(3, 4)), rng.normal(size=(3, 4)), np.zeros((3, 4)) if z else rng.normal(size=(3, 4)), lr, m))
                for lr, m, z in [(0.1, 0.9, True), (0.1, 0.9, False), (0.05, 0.5, False)]]
    raise KeyError(name)
