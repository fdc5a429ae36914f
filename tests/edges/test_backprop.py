"""The backward pass written out cell by cell: every sum equals what Conv2D.backward computed, and the
nudge and SGD behave as calculus says."""
import numpy as np
import pytest

from minicnn.edges import backprop
from minicnn.edges.explain import EXAMPLES
from minicnn.nn.reference import conv2d_naive

SMALL = np.array(EXAMPLES["small"]["image"], dtype=np.float64)
BRIGHT_LEFT = np.array([[1, 0, -1]] * 3, dtype=np.float64)   # 002's kernel


def test_the_5x5_example_by_hand():
    b = backprop.backward(SMALL, BRIGHT_LEFT)
    np.testing.assert_array_equal(b.fmap, [[-4, 2, 4], [0, 0, 0], [0, 0, 0]])       # 002's map
    np.testing.assert_array_equal(b.target, [[6, 0, -5], [0, -2, -1], [-2, 0, 2]])  # Sobel x's
    assert b.loss == pytest.approx(22.0)                                            # (100+4+81+0+4+1+4+0+4) / 9
    np.testing.assert_allclose(b.delta, 2 * (b.fmap - b.target) / 9)
    # dL/dW[0, 0] by hand: sum of delta times the top-left 3x3 of x
    assert b.dW[0, 0] == pytest.approx(float((b.delta * SMALL[:3, :3]).sum()))


@pytest.mark.parametrize("shape", [(5, 5), (7, 7), (4, 6), (10, 10)])
def test_every_written_sum_is_conv2d_backwards_number(shape):
    rng = np.random.default_rng(sum(shape))
    b = backprop.backward(rng.normal(size=shape), rng.normal(size=(3, 3)))
    for cell in backprop.dW_cells(b):
        assert cell.total == pytest.approx(b.dW[cell.row, cell.col], abs=1e-12)
    cells = backprop.dx_cells(b)
    assert len(cells) == shape[0] * shape[1]
    for cell in cells:
        assert cell.products.shape == (3, 3)
        assert cell.total == pytest.approx(b.dx[cell.row, cell.col], abs=1e-12)
    # and the full convolution with the flipped kernel is the textbook one, computed independently
    full = conv2d_naive(np.pad(b.delta, 2)[None, None], backprop.flipped(b.kernel)[None, None], np.zeros(1), 1, 0)
    np.testing.assert_allclose(full[0, 0], b.dx, atol=1e-12)


def test_the_flip_turns_the_kernel_180_degrees():
    np.testing.assert_array_equal(backprop.flipped(np.arange(9).reshape(3, 3)), [[8, 7, 6], [5, 4, 3], [2, 1, 0]])


@pytest.mark.parametrize("row, col", [(0, 0), (0, 1), (1, 2), (2, 0), (2, 2)])
def test_the_nudge_measures_the_gradient(row, col):
    n = backprop.nudge(SMALL, BRIGHT_LEFT, row, col, 1e-3)
    assert n["delta_loss"] / n["eps"] == pytest.approx(n["gradient"], rel=1e-6)
    assert n["predicted"] == pytest.approx(1e-3 * backprop.backward(SMALL, BRIGHT_LEFT).dW[row, col])
    assert n["loss_plus"] - n["loss"] != pytest.approx(n["loss"] - n["loss_minus"])   # the one-sided changes differ


def test_sgd_steps_turn_the_kernel_towards_sobel():
    path = backprop.sgd_path(SMALL, BRIGHT_LEFT, 0.05, 50)
    assert len(path) == 51
    losses = [loss for _, loss, _ in path]
    cosines = [cosine for _, _, cosine in path]
    assert losses[-1] < losses[0] / 10 and cosines[1] > cosines[0] and cosines[-1] > 0.4 > cosines[0]
    np.testing.assert_allclose(path[1][0], BRIGHT_LEFT - 0.05 * backprop.backward(SMALL, BRIGHT_LEFT).dW)
    with pytest.raises(ValueError, match="learning rate 10 is too large"):
        backprop.sgd_path(SMALL, BRIGHT_LEFT, 10.0, 200)


def test_bad_input():
    with pytest.raises(ValueError, match="kernel must be 3x3, got 2x2"):
        backprop.backward(SMALL, np.ones((2, 2)))
    with pytest.raises(ValueError, match="at least 3x3"):
        backprop.backward(np.ones((2, 5)), BRIGHT_LEFT)
    with pytest.raises(ValueError, match="row and column 0 to 2"):
        backprop.nudge(SMALL, BRIGHT_LEFT, 3, 0, 1e-3)
    with pytest.raises(ValueError, match="eps must be"):
        backprop.nudge(SMALL, BRIGHT_LEFT, 0, 0, 0.0)


def test_sgd_converges_below_the_stable_learning_rate_and_diverges_above():
    step = np.array(EXAMPLES["step"]["image"], dtype=np.float64)
    for image in (SMALL, step):
        stable = backprop.stable_lr(image)
        lr = backprop.suggested_lr(image)
        assert lr <= 0.75 * stable
        path = backprop.sgd_path(image, BRIGHT_LEFT, lr, 100)
        assert path[-1][1] < path[0][1]
        with pytest.raises(ValueError, match="too large"):
            backprop.sgd_path(image, BRIGHT_LEFT, 1.05 * stable, 500)
    assert backprop.suggested_lr(SMALL) == 0.05 and backprop.suggested_lr(step) == 0.001
