"""Random shifts and flips: exact, dtype kept, reproducible from the rng, bad input refused."""
import numpy as np
import pytest

from minicnn.data import augment
from minicnn.data.augment import random_flip, random_shift, shift


def test_each_image_moves_by_its_drawn_offset():
    x = np.arange(2 * 1 * 6 * 6, dtype=np.float32).reshape(2, 1, 6, 6) + 1
    out = random_shift(x, np.random.default_rng(3), max_shift=2, fill=0.0)
    dy, dx = np.random.default_rng(3).integers(-2, 3, size=(2, 2))
    for n in range(2):
        expected = np.zeros((6, 6), np.float32)
        for i in range(6):
            for j in range(6):
                if 0 <= i - dy[n] < 6 and 0 <= j - dx[n] < 6:
                    expected[i, j] = x[n, 0, i - dy[n], j - dx[n]]
        np.testing.assert_array_equal(out[n, 0], expected)


def test_shape_dtype_fill_and_reproducibility():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((16, 3, 8, 8)).astype(np.float32)
    a = random_shift(x, np.random.default_rng(1), max_shift=1)
    b = random_shift(x, np.random.default_rng(1), max_shift=1)
    assert a.shape == x.shape and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert a.min() >= x.min()  # the border is filled with the batch minimum
    x64 = x.astype(np.float64)
    assert random_shift(x64, rng).dtype == np.float64


def test_no_shift_is_a_copy():
    x = np.ones((2, 1, 4, 4), np.float32)
    out = random_shift(x, np.random.default_rng(0), max_shift=0)
    np.testing.assert_array_equal(out, x)
    assert out is not x


@pytest.mark.parametrize("x, rng, shift, message", [
    (np.zeros((4, 4), np.float32), np.random.default_rng(0), 1, r"shape \(N, C, H, W\)"),
    (np.zeros((1, 1, 4, 4), np.float32), 0, 1, "numpy.random.Generator"),
    (np.zeros((1, 1, 4, 4), np.float32), np.random.default_rng(0), -1, "max_shift must be an int >= 0"),
])
def test_bad_input(x, rng, shift, message):
    with pytest.raises(ValueError, match=message):
        random_shift(x, rng, shift)


def test_flip_mirrors_exactly_the_images_whose_coin_came_up():
    x = np.arange(6 * 2 * 3 * 4, dtype=np.float32).reshape(6, 2, 3, 4)
    out = random_flip(x, np.random.default_rng(5))
    flipped = np.random.default_rng(5).random(6) < 0.5
    assert 0 < flipped.sum() < 6                                    # both cases occur with this seed
    for n in range(6):
        expected = x[n, :, :, [3, 2, 1, 0]].transpose(1, 2, 0) if flipped[n] else x[n]  # by index, per column
        np.testing.assert_array_equal(out[n], expected)
    assert out.dtype == x.dtype and not np.shares_memory(out, x)


def test_flip_probability_ends_and_reproducibility():
    x = np.random.default_rng(0).random((8, 1, 2, 5)).astype(np.float64)
    np.testing.assert_array_equal(random_flip(x, np.random.default_rng(1), p=0), x)
    np.testing.assert_array_equal(random_flip(x, np.random.default_rng(1), p=1), x[..., ::-1])
    np.testing.assert_array_equal(random_flip(x, np.random.default_rng(2)), random_flip(x, np.random.default_rng(2)))
    assert random_flip(x, np.random.default_rng(1)).dtype == np.float64


@pytest.mark.parametrize("kwargs, message", [
    ({"x": np.zeros((2, 3, 3))}, r"random_flip expected an array of shape \(N, C, H, W\), got \(2, 3, 3\)"),
    ({"p": 1.5}, r"p must be a probability in \[0, 1\], got 1\.5"),
    ({"p": True}, r"p must be a probability"),
])
def test_flip_refuses_bad_input(kwargs, message):
    args = {"x": np.zeros((2, 1, 3, 3), np.float32), "rng": np.random.default_rng(0), **kwargs}
    with pytest.raises(ValueError, match=message):
        random_flip(**args)


def test_shift_moves_every_image_by_the_same_offset_and_fills_the_border():
    x = np.arange(2 * 1 * 3 * 4, dtype=np.float32).reshape(2, 1, 3, 4) + 1
    down_left = shift(x, 1, -1, fill=0)
    np.testing.assert_array_equal(down_left[:, :, 1:, :3], x[:, :, :2, 1:])
    assert (down_left[:, :, 0, :] == 0).all() and (down_left[:, :, :, 3] == 0).all()
    np.testing.assert_array_equal(shift(x, 0, 0), x)
    assert (shift(x, -1, 0)[:, :, -1] == x.min()).all()         # default fill: the batch's smallest value
    with pytest.raises(ValueError, match=r"shift by \(3, 0\) moves a 3x4 image out of its frame"):
        shift(x, 3, 0)


def test_test_time_copies_are_the_batch_then_its_moved_or_mirrored_copies():
    x = np.random.default_rng(0).standard_normal((3, 1, 5, 5)).astype(np.float32)
    assert len(augment.test_time_copies(x, "none")) == 1 and augment.test_time_copies(x, "none")[0] is x
    shifts = augment.test_time_copies(x, "shifts")
    assert len(shifts) == 9 and shifts[0] is x
    for dy, dx in {(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx}:      # each offset once
        assert sum(np.array_equal(c, shift(x, dy, dx)) for c in shifts[1:]) == 1, (dy, dx)
    flips = augment.test_time_copies(x, "flips")
    np.testing.assert_array_equal(flips[1], x[:, :, :, ::-1])
    both = augment.test_time_copies(x, "flips+shifts")
    assert len(both) == 10 and both[0] is x
    np.testing.assert_array_equal(both[1], x[:, :, :, ::-1])
    for image in (x, x[:, :, :, ::-1]):                                  # each of the two moved 4 ways, once
        for dy, dx in ((0, 1), (0, -1), (1, 0), (-1, 0)):
            assert sum(np.array_equal(c, shift(image, dy, dx)) for c in both[2:]) == 1, (dy, dx)
    with pytest.raises(ValueError, match="must be one of none, shifts, flips, flips\\+shifts, got 'rotations'"):
        augment.test_time_copies(x, "rotations")


def test_erase_blanks_one_rectangle_of_the_drawn_share_in_the_images_whose_coin_came_up():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((400, 2, 28, 28)).astype(np.float32) + 10     # no pixel equals the fill by chance
    out = augment.random_erase(x, np.random.default_rng(1), p=0.5, area=(0.02, 0.25), fill=-1.0)
    assert out.dtype == x.dtype and out.shape == x.shape and out is not x
    erased = (out == -1.0).any(axis=(1, 2, 3))
    assert 150 < erased.sum() < 250                                     # about half of 400
    np.testing.assert_array_equal(out[~erased], x[~erased])            # the others untouched
    for n in np.flatnonzero(erased):
        rows, cols = np.nonzero(out[n, 0] == -1.0)
        top, bottom, left, right = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
        blank = np.zeros((28, 28), bool)
        blank[top:bottom, left:right] = True
        for c in range(2):                                               # one whole rectangle, in every channel
            np.testing.assert_array_equal(out[n, c] == -1.0, blank)
            np.testing.assert_array_equal(out[n, c][~blank], x[n, c][~blank])
        share = (bottom - top) * (right - left) / 784
        assert 0.01 <= share <= 0.3, share                              # the drawn share, give or take rounding
        assert 1 / 3.6 <= (bottom - top) / (right - left) <= 3.6
    again = augment.random_erase(x, np.random.default_rng(1), p=0.5, area=(0.02, 0.25), fill=-1.0)
    np.testing.assert_array_equal(out, again)                           # one seed, one result


def test_erase_defaults_to_the_background_and_its_ends():
    x = np.zeros((50, 1, 8, 8), np.float32) + 2
    x[:, :, 0, 0] = -3                                                  # the batch's smallest value
    out = augment.random_erase(x, np.random.default_rng(0), p=0.999, area=(0.5, 0.5))
    assert ((out == -3).sum(axis=(1, 2, 3)) > 1).mean() > 0.9           # rectangles of the background
    np.testing.assert_array_equal(augment.random_erase(x, np.random.default_rng(0), p=0), x)
    assert augment.random_erase(x[:0], np.random.default_rng(0)).shape == (0, 1, 8, 8)


@pytest.mark.parametrize("kwargs, message", [
    ({"p": 1.5}, r"random_erase's p must be a probability in \[0, 1\], got 1.5"),
    ({"area": (0.3, 0.2)}, r"area must be \(low, high\) with 0 < low <= high <= 1, got \(0.3, 0.2\)"),
    ({"area": (0, 0.2)}, r"area must be \(low, high\) with 0 < low <= high <= 1"),
])
def test_erase_refuses_bad_input(kwargs, message):
    with pytest.raises(ValueError, match=message):
        augment.random_erase(np.zeros((2, 1, 4, 4), np.float32), np.random.default_rng(0), **kwargs)
    with pytest.raises(ValueError, match=r"random_erase expected an array of shape \(N, C, H, W\), got \(4, 4\)"):
        augment.random_erase(np.zeros((4, 4)), np.random.default_rng(0))
