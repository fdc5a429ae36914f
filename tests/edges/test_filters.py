import numpy as np
import pytest

from minicnn.edges.filters import ANGLES, FAMILIES, KERNEL_NAMES, best_match, edge_family, get_kernel, kernel_similarity, rotate45

EDGE_NAMES = ["sobel_x", "sobel_45", "sobel_y", "sobel_135"]


def test_get_kernel_values_dtype_and_fresh_copy():
    k = get_kernel("sobel_x")
    assert k.dtype == np.float32 and k.shape == (3, 3)
    np.testing.assert_array_equal(k, [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])
    np.testing.assert_array_equal(get_kernel("edge_vertical"), [[-1, 0, 1]] * 3)
    np.testing.assert_array_equal(get_kernel("edge_horizontal"), np.array([[-1, 0, 1]] * 3).T)
    np.testing.assert_allclose(get_kernel("gaussian", np.float64), np.array([[1, 2, 1], [2, 4, 2], [1, 2, 1]]) / 16)
    np.testing.assert_allclose(get_kernel("box_blur", np.float64), np.full((3, 3), 1 / 9))
    np.testing.assert_array_equal(get_kernel("sharpen"), [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    k[0, 0] = 99
    assert get_kernel("sobel_x")[0, 0] == -1
    assert get_kernel("SOBEL_Y", np.float64).dtype == np.float64


def test_get_kernel_unknown_name_lists_names():
    with pytest.raises(ValueError, match="unknown kernel 'sobel_z'.*sobel_x.*sharpen"):
        get_kernel("sobel_z")


def test_diagonals_are_the_ring_rotated_by_45_degrees():
    for family in FAMILIES:
        fam = edge_family(family)
        for a in (0, 45, 90):
            np.testing.assert_array_equal(rotate45(fam[a][1]), fam[a + 45][1])
        np.testing.assert_array_equal(rotate45(fam[135][1]), -fam[0][1])  # 180 degrees = inverted polarity


def test_similarity_with_itself_is_one_and_blind_to_scale_and_offset():
    for name in KERNEL_NAMES:
        if name == "box_blur":
            continue
        k = get_kernel(name, np.float64)
        assert kernel_similarity(k, k) == pytest.approx(1.0)
        assert kernel_similarity(0.003 * k + 7.0, k) == pytest.approx(1.0)
        assert kernel_similarity(250 * k, k) == pytest.approx(1.0)


def test_similarity_keeps_the_sign():
    k = get_kernel("sobel_45")
    assert kernel_similarity(-k, k) == pytest.approx(-1.0)
    assert kernel_similarity(-0.5 * k + 1, k) == pytest.approx(-1.0)


def test_similarity_hand_computed_values():
    # sobel_x . sobel_45 = 2 + 2 + 2 + 2 = 8; both have squared norm 12 and mean 0 -> 8 / 12
    assert kernel_similarity(get_kernel("sobel_x"), get_kernel("sobel_45")) == pytest.approx(2 / 3)
    assert kernel_similarity(get_kernel("sobel_x"), get_kernel("sobel_y")) == pytest.approx(0.0, abs=1e-12)
    # prewitt_x . sobel_x = 1+1+2+2+1+1 = 8, norms sqrt(6) and sqrt(12)
    assert kernel_similarity(get_kernel("prewitt_x"), get_kernel("sobel_x")) == pytest.approx(8 / np.sqrt(72))


def test_constant_kernels_have_similarity_zero():
    ref = get_kernel("sobel_x")
    assert kernel_similarity(np.zeros((3, 3)), ref) == 0.0
    assert kernel_similarity(get_kernel("box_blur"), ref) == 0.0
    assert kernel_similarity(ref, np.full((3, 3), 2.0)) == 0.0
    assert kernel_similarity(np.full((3, 3), 5.0), np.full((3, 3), 5.0)) == 0.0


def test_similarity_bad_input():
    with pytest.raises(ValueError, match="same shape"):
        kernel_similarity(np.zeros((3, 3)), np.zeros((5, 5)))
    with pytest.raises(ValueError, match="finite"):
        kernel_similarity(np.full((3, 3), np.nan), np.ones((3, 3)))


@pytest.mark.parametrize("index", range(4))
@pytest.mark.parametrize("polarity", [1, -1])
def test_best_match_finds_every_rotated_sobel(index, polarity):
    rng = np.random.default_rng(index)
    name = EDGE_NAMES[index]
    kernel = polarity * 0.3 * get_kernel(name, np.float64) + 0.2 + 0.02 * rng.standard_normal((3, 3))
    m = best_match(kernel)
    assert (m.name, m.angle, m.polarity) == (name, ANGLES[index], polarity)
    assert m.similarity * polarity > 0.98


def test_best_match_recognises_other_families_at_the_right_angle():
    for family in ("scharr", "prewitt"):
        for angle, (name, k) in edge_family(family).items():
            m = best_match(-k)
            assert m.angle == angle and m.polarity == -1 and m.similarity < -0.9, (name, m)
    m = best_match(get_kernel("scharr_45"), family="scharr")
    assert m == ("scharr_45", 45, 1, pytest.approx(1.0))


def test_best_match_bad_input():
    with pytest.raises(ValueError, match="3x3"):
        best_match(np.zeros((5, 5)))
    with pytest.raises(ValueError, match="unknown edge family 'roberts'"):
        best_match(np.eye(3), family="roberts")


def test_match_kernel_reports_the_similarity_to_the_kernel_that_matched():
    from minicnn.edges.filters import match_kernel

    m = match_kernel(-0.3 * get_kernel("sobel_y") + 0.1)
    assert (m.label, m.angle, m.polarity) == ("-sobel_y", 90, -1)
    assert m.similarity == pytest.approx(1.0) and m.orientation == pytest.approx(270.0)
    np.testing.assert_array_equal(m.reference(), -get_kernel("sobel_y", np.float64))


@pytest.mark.parametrize("theta", [0.0, 30.0, 100.0, 200.0, 333.0])
def test_edge_orientation_finds_the_angle_of_a_rotated_detector(theta):
    from minicnn.edges.filters import edge_orientation

    t = np.radians(theta)
    kernel = np.cos(t) * get_kernel("sobel_x", np.float64) + np.sin(t) * get_kernel("sobel_y", np.float64) + 0.7
    degrees, similarity = edge_orientation(kernel)
    assert degrees == pytest.approx(theta, abs=1e-9) and similarity == pytest.approx(1.0)
    # the closed form is the maximum over a fine scan of angles
    scan = np.radians(np.arange(0, 360, 0.5))
    sims = [kernel_similarity(kernel, np.cos(a) * get_kernel("sobel_x") + np.sin(a) * get_kernel("sobel_y")) for a in scan]
    assert similarity >= max(sims) - 1e-9
    assert edge_orientation(np.ones((3, 3))) == (0.0, 0.0)
