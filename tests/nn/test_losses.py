import numpy as np
import pytest

from minicnn import mse, softmax_cross_entropy
from minicnn.nn.gradcheck import numerical_gradient, rel_error

pytestmark = pytest.mark.usefixtures("engine")   # every test on every implementation (tests/nn/conftest.py)


def test_cross_entropy_value_by_hand():
    logits = np.array([[0.0, 0.0], [np.log(3.0), 0.0]], dtype=np.float64)
    labels = np.array([0, 0])
    # row 0: p = 1/2 -> -log(1/2);  row 1: p = 3/4 -> -log(3/4)
    loss, dlogits = softmax_cross_entropy(logits, labels)
    assert loss == pytest.approx((np.log(2) - np.log(0.75)) / 2, rel=1e-12)
    np.testing.assert_allclose(dlogits, [[-0.25, 0.25], [-0.125, 0.125]], atol=1e-12)


def test_cross_entropy_gradient_is_checked_numerically():
    rng = np.random.default_rng(0)
    logits, labels = rng.standard_normal((5, 4)) * 3, rng.integers(0, 4, size=5)
    _, analytic = softmax_cross_entropy(logits, labels)
    numeric = numerical_gradient(lambda: softmax_cross_entropy(logits, labels)[0], logits)
    assert rel_error(analytic, numeric) < 1e-8


def test_label_smoothing_value_by_hand_and_its_gradient_is_checked_numerically():
    # Two classes, s = 0.2: the target of a row labelled 0 is (0.9, 0.1).  Row 0 has p = (1/2, 1/2),
    # so its loss is -log(1/2) whatever the target; row 1 has p = (3/4, 1/4).
    logits, labels = np.array([[0.0, 0.0], [np.log(3.0), 0.0]]), np.array([0, 0])
    loss, dlogits = softmax_cross_entropy(logits, labels, smoothing=0.2)
    assert loss == pytest.approx((np.log(2) - 0.9 * np.log(0.75) - 0.1 * np.log(0.25)) / 2, rel=1e-12)
    np.testing.assert_allclose(dlogits, [[-0.2, 0.2], [-0.075, 0.075]], atol=1e-12)
    rng = np.random.default_rng(1)
    logits, labels = rng.standard_normal((5, 4)) * 3, rng.integers(0, 4, size=5)
    _, analytic = softmax_cross_entropy(logits, labels, smoothing=0.1)
    numeric = numerical_gradient(lambda: softmax_cross_entropy(logits, labels, smoothing=0.1)[0], logits)
    assert rel_error(analytic, numeric) < 1e-8


@pytest.mark.parametrize("bad", [-0.1, 1.0, "0.1", True, float("nan")])
def test_label_smoothing_outside_0_1_is_refused(bad):
    with pytest.raises(ValueError, match=r"smoothing must be a number in \[0, 1\)"):
        softmax_cross_entropy(np.zeros((2, 3)), np.array([0, 1]), smoothing=bad)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cross_entropy_is_stable_for_huge_logits(dtype):
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]], dtype=dtype)
    loss, dlogits = softmax_cross_entropy(logits, np.array([1, 2]))
    assert np.isfinite(loss) and np.isfinite(dlogits).all() and dlogits.dtype == dtype
    assert loss == pytest.approx((2e4 + np.log(2)) / 2, rel=1e-6)


def test_cross_entropy_rejects_bad_labels():
    logits = np.zeros((3, 4), np.float32)
    with pytest.raises(ValueError, match=r"labels must lie in 0..3 for 4 classes, got values from 0 to 4"):
        softmax_cross_entropy(logits, np.array([0, 1, 4]))
    with pytest.raises(ValueError, match=r"labels must lie in 0..3.*from -1"):
        softmax_cross_entropy(logits, np.array([-1, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must be integers .* got dtype float64"):
        softmax_cross_entropy(logits, np.array([0.0, 1.0, 2.0]))
    with pytest.raises(ValueError, match=r"3 rows of logits, 2 labels"):
        softmax_cross_entropy(logits, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"logits must be a floating-point array of shape \(N, K\)"):
        softmax_cross_entropy(np.zeros(4, np.float32), np.array([0]))


def test_mse_value_gradient_and_dtype():
    pred = np.array([[1.0, 2.0], [3.0, 5.0]], dtype=np.float32)
    target = np.array([[1.0, 0.0], [3.0, 4.0]], dtype=np.float32)
    loss, dpred = mse(pred, target)
    assert loss == pytest.approx((0 + 4 + 0 + 1) / 4)
    np.testing.assert_allclose(dpred, [[0, 1.0], [0, 0.5]])  # 2 * diff / 4
    assert dpred.dtype == np.float32
    rng = np.random.default_rng(1)
    p, t = rng.standard_normal((3, 2, 4)), rng.standard_normal((3, 2, 4))
    assert rel_error(mse(p, t)[1], numerical_gradient(lambda: mse(p, t)[0], p)) < 1e-8
    with pytest.raises(ValueError, match=r"same shape, got \(2, 2\) and \(4,\)"):
        mse(pred, np.zeros(4))


@pytest.mark.parametrize("call", [lambda: softmax_cross_entropy(np.zeros((0, 3)), np.zeros(0, dtype=np.int64)),
                                  lambda: mse(np.zeros((0, 2)), np.zeros((0, 2)))])
def test_an_empty_batch_is_refused_as_undefined(call):
    with pytest.raises(ValueError, match="empty"):
        call()
