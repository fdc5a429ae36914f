"""Experiment 2 (minicnn.edges.edge_task): edge detectors emerge in a classifier."""
import numpy as np
import pytest

from minicnn.edges.edge_task import build_model, match_kernels, train_edge_classifier
from minicnn.edges.filters import get_kernel


def test_edge_model_shapes_and_matching():
    rng = np.random.default_rng(0)
    model = build_model(8, 16, rng=rng)
    assert model.forward(np.zeros((2, 1, 16, 16), np.float32)).shape == (2, 8)
    model = build_model(4, 16, pool=7, classes=4, rng=rng)
    assert model.forward(np.zeros((2, 1, 16, 16), np.float32)).shape == (2, 4)
    W = np.stack([get_kernel("sobel_135"), -get_kernel("sobel_x")])[:, None]
    assert [(m.angle, m.polarity) for m in match_kernels(W)] == [(135, 1), (0, -1)]
    with pytest.raises(ValueError, match=r"\(F, 1, 3, 3\)"):
        match_kernels(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="pool"):
        build_model(8, 16, pool=20, rng=rng)


def test_edge_classifier_learns_edge_like_kernels_in_a_short_run():
    result = train_edge_classifier(rng=np.random.default_rng(0), n_train=1500, n_val=300, epochs=3)
    assert result["val_accuracy"] > 0.5  # chance is 1/8
    assert result["median_similarity"] > 0.75  # random 3x3 kernels score about 0.47
    assert len(result["matches"]) == 8
