import numpy as np
import pytest

from minicnn.data.synthetic import edge_images, orientation_dataset
from minicnn.edges.filters import get_kernel
from minicnn.edges.sobel_task import filter_valid


def orientation_histogram(images):
    """Share of Sobel gradient magnitude in 4 orientation bins centred on 0, 45, 90, 135 degrees (mod 180)."""
    gx = filter_valid(images.astype(np.float64), get_kernel("sobel_x", np.float64))
    gy = filter_valid(images.astype(np.float64), get_kernel("sobel_y", np.float64))
    magnitude = np.hypot(gx, gy).ravel()
    angle = np.degrees(np.arctan2(gy, gx)).ravel() % 180
    bins = np.round(angle / 45).astype(int) % 4
    hist = np.bincount(bins, weights=magnitude, minlength=4)
    return hist / hist.sum()


def test_edge_images_shape_dtype_and_range():
    x = edge_images(5, 20, 28, rng=np.random.default_rng(0))
    assert x.shape == (5, 1, 20, 28) and x.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1
    assert edge_images(2, 8, rng=np.random.default_rng(0), dtype=np.float64).dtype == np.float64
    assert edge_images(2, 8, rng=np.random.default_rng(0)).shape == (2, 1, 8, 8)


def test_edge_images_reproducible_per_seed():
    a = edge_images(4, 16, rng=np.random.default_rng(3), noise=0.1)
    b = edge_images(4, 16, rng=np.random.default_rng(3), noise=0.1)
    c = edge_images(4, 16, rng=np.random.default_rng(4), noise=0.1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_noise_has_the_requested_standard_deviation():
    clean = edge_images(50, 32, rng=np.random.default_rng(1), dtype=np.float64)
    noisy = edge_images(50, 32, rng=np.random.default_rng(1), noise=0.1, dtype=np.float64)
    assert np.std(noisy - clean) == pytest.approx(0.1, rel=0.02)
    assert np.mean(noisy - clean) == pytest.approx(0.0, abs=0.003)


def test_edge_images_have_edges_at_every_orientation():
    for seed in range(3):
        hist = orientation_histogram(edge_images(64, 32, rng=np.random.default_rng(seed)))
        assert hist.min() > 0.15, hist  # uniform would be 0.25 each


def test_edge_images_are_not_flat():
    x = edge_images(20, 32, rng=np.random.default_rng(0))
    assert np.all(x.std(axis=(1, 2, 3)) > 0.01)


def test_orientation_dataset_labels_match_the_measured_gradient():
    x, y = orientation_dataset(400, 16, rng=np.random.default_rng(0), noise=0.0, classes=4)
    assert x.shape == (400, 1, 16, 16) and x.dtype == np.float32 and y.dtype == np.int64
    assert set(np.unique(y)) == {0, 1, 2, 3}
    dominant = np.array([np.argmax(orientation_histogram(x[i:i + 1])) for i in range(len(x))])
    assert np.mean(dominant == y) > 0.95


def test_orientation_dataset_eight_directions():
    x, y = orientation_dataset(400, 16, rng=np.random.default_rng(1), noise=0.0, classes=8)
    assert set(np.unique(y)) == set(range(8))
    gx = filter_valid(x.astype(np.float64), get_kernel("sobel_x", np.float64)).sum(axis=(1, 2, 3))
    gy = filter_valid(x.astype(np.float64), get_kernel("sobel_y", np.float64)).sum(axis=(1, 2, 3))
    direction = np.round((np.degrees(np.arctan2(gy, gx)) % 360) / 45).astype(int) % 8
    assert np.mean(direction == y) > 0.95


def test_orientation_dataset_reproducible():
    a = orientation_dataset(10, rng=np.random.default_rng(2))
    b = orientation_dataset(10, rng=np.random.default_rng(2))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_bad_input():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="numpy.random.Generator"):
        edge_images(2, 8, rng=0)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        edge_images(0, 8, rng=rng)
    with pytest.raises(ValueError, match="height must be a positive integer"):
        edge_images(1, 2.5, rng=rng)
    with pytest.raises(ValueError, match="noise"):
        edge_images(1, 8, rng=rng, noise=-1)
    with pytest.raises(ValueError, match="shapes"):
        edge_images(1, 8, rng=rng, shapes=(3, 1))
    with pytest.raises(ValueError, match="classes must be 4"):
        orientation_dataset(4, rng=rng, classes=5)
    with pytest.raises(ValueError, match="jitter"):
        orientation_dataset(4, rng=rng, jitter=30)
