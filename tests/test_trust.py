"""Threshold-fitting helpers of the calibration and trust measurement, checked against hand computation."""

from __future__ import annotations

import numpy as np
import pytest

from mushroom_id.core.catalog import default_catalog
from mushroom_id.core.images import load_image
from mushroom_id.engine.calibration import lowest_threshold
from mushroom_id.engine.metrics import auroc
from mushroom_id.engine.trust import (
    confidence_scores,
    non_fungus_photos,
    observation_comparison,
    safety_curve,
)


def test_auroc_by_hand():
    assert auroc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert auroc([0.1, 0.9], [True, False]) == 0.0
    # positives {0.5, 0.3}, negatives {0.4, 0.3}: pairs (0.5>0.4) (0.5>0.3) (0.3<0.4) (0.3=0.3 -> 1/2)
    assert auroc([0.5, 0.3, 0.4, 0.3], [True, True, False, False]) == pytest.approx(2.5 / 4)


def test_confidence_scores():
    s = confidence_scores(np.array([[1.0, 0.0], [0.5, 0.5]]))
    np.testing.assert_allclose(s["max_prob"], [1.0, 0.5])
    np.testing.assert_allclose(s["neg_entropy"], [0.0, np.log(0.5)], atol=1e-9)


def test_lowest_threshold_by_hand():
    scores = np.array([0.95, 0.9, 0.8, 0.7, 0.6, 0.5])
    correct = np.array([1, 1, 1, 0, 1, 0], bool)
    # answered prefixes: acc 1, 1, 1, .75, .8, .667 -> lowest t with acc >= .8 is 0.6 (5 answered)
    t, answered, acc = lowest_threshold(scores, correct, 0.8, min_answered=1)
    assert (t, answered, acc) == (0.6, 5 / 6, pytest.approx(0.8))
    assert lowest_threshold(scores, correct, 0.9, min_answered=1)[0] == 0.8
    assert lowest_threshold(scores, correct, 0.9, min_answered=4)[0] is None


def test_lowest_threshold_never_splits_ties():
    scores = np.array([0.9, 0.5, 0.5])
    correct = np.array([1, 1, 0], bool)
    # t=0.5 answers both tied photos (acc 2/3); a threshold between them does not exist
    assert lowest_threshold(scores, correct, 0.9, min_answered=1)[0] == 0.9


def test_observation_comparison_counts_groups():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1, 2], [6, 3, 2])  # class 2 has too few photos for a group of 3
    p = rng.dirichlet(np.ones(3), size=len(y))
    out = observation_comparison(np.log(p), y, size=3)
    assert out["groups"] == 3 and out["species"] == 2


def test_observation_comparison_by_hand():
    """Class 0: every photo says 0 (right). Class 1: one photo is sure of class 2, two lean to class 1;
    both ways of combining the group follow the sure photo (worked out below), so 2 of 3 groups are right."""
    sure = {0: [0.8, 0.1, 0.1], 2: [0.01, 0.01, 0.98]}
    lean = [0.4, 0.5, 0.1]
    p = np.array([sure[0]] * 6 + [sure[2], lean, lean] + [sure[0]] * 2)
    y = np.array([0] * 6 + [1] * 3 + [2] * 2)
    out = observation_comparison(np.log(p), y, size=3, seed=0)
    assert out["groups"] == 3  # two of class 0, one of class 1
    # class 1's group holds the sure-of-2 photo and both leaning photos whatever the shuffle:
    # mean prob = (0.270, 0.337, 0.393) -> class 2; mean log prob = (-2.146, -1.997, -1.542) -> class 2
    assert out["mean_prob"]["top1"] == pytest.approx(2 / 3)
    assert out["mean_log_prob"]["top1"] == pytest.approx(2 / 3)
    # top-5 over 3 classes always holds the answer
    assert out["mean_prob"]["top5"] == out["mean_log_prob"]["top5"] == 1.0


def test_safety_curve_counts_confident_wrong_safe_answers():
    catalog = default_catalog()
    labels = ["Amanita phalloides", "Agaricus campestris"]  # deadly, edible
    probs = np.array([[0.2, 0.8], [0.9, 0.1], [0.45, 0.55]])
    y = np.array([0, 0, 1])
    rows, missed, n_toxic = safety_curve(probs, y, labels, catalog, qhat=None)
    assert n_toxic == 2
    at0 = rows[0]  # threshold 0: all answered; toxic photo 0 answered as the edible species
    assert at0["coverage"] == 1 and at0["toxic_as_non_toxic"] == 0.5
    high = next(r for r in rows if r["threshold"] >= 0.85)
    assert high["toxic_as_non_toxic"] == 0.0  # the 0.8 mistake is no longer answered
    assert missed == 0  # the deadly species is within the top-5 of both toxic photos


def test_bundled_non_fungus_photos_are_real_images():
    files = non_fungus_photos()
    assert len(files) >= 20
    for f in files[:5]:
        assert min(load_image(f).size) >= 100
