"""Experiment 1 (minicnn.edges.sobel_task): SGD recovers Sobel from random weights."""
import numpy as np
import pytest

from minicnn.edges.filters import get_kernel
from minicnn.edges.sobel_task import filter_valid, make_data, optimal_kernels, train_sobel
from minicnn.nn.reference import conv2d_naive


def test_filter_valid_matches_reference_loops():
    x = np.random.default_rng(0).standard_normal((2, 1, 6, 7))
    k = get_kernel("sobel_45", np.float64)
    expected = conv2d_naive(x, k[None, None], np.zeros(1), 1, 0)
    np.testing.assert_allclose(filter_valid(x, k), expected, atol=1e-12)


def test_targets_are_sobel_of_the_inputs():
    x, y, scale = make_data(4, 12, rng=np.random.default_rng(0), dtype=np.float64)
    assert x.shape == (4, 1, 12, 12) and y.shape == (4, 2, 10, 10)
    assert abs(x.mean()) < 1e-9 and x.std() == pytest.approx(1.0)
    np.testing.assert_allclose(y[:, :1] * scale, filter_valid(x, get_kernel("sobel_x", np.float64)), atol=1e-9)
    np.testing.assert_allclose(y[:, 1:] * scale, filter_valid(x, get_kernel("sobel_y", np.float64)), atol=1e-9)
    # least squares on noise-free data gives back Sobel itself (up to the target scale)
    np.testing.assert_allclose(optimal_kernels(x, y) * scale, [get_kernel("sobel_x"), get_kernel("sobel_y")], atol=1e-6)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_experiment1_recovers_sobel(seed):
    result = train_sobel(rng=np.random.default_rng(seed), steps=1000)
    assert result["converged"]
    assert min(result["cosine"].values()) >= 0.999
    assert max(result["relative_error"].values()) < 0.05  # right scale too, not just the right pattern
    np.testing.assert_allclose(result["kernels"], [get_kernel("sobel_x"), get_kernel("sobel_y")], atol=0.1)


def test_experiment1_with_noisy_images():
    result = train_sobel(rng=np.random.default_rng(0), steps=1000, noise=0.1)
    assert min(result["cosine"].values()) >= 0.99


def test_experiment1_clean_targets_approaches_the_least_squares_optimum():
    result = train_sobel(rng=np.random.default_rng(0), steps=600, noise=0.1, clean_targets=True)
    assert min(result["cosine_to_optimal"].values()) > 0.99
    assert not result["converged"]  # the denoising optimum is not Sobel itself


def test_experiment1_bad_arguments():
    with pytest.raises(ValueError, match="steps"):
        train_sobel(rng=np.random.default_rng(0), steps=0)
    with pytest.raises(ValueError, match="batch_size"):
        train_sobel(rng=np.random.default_rng(0), batch_size=1000)
