import numpy as np
import pytest

from mushroom_id.engine import metrics as M
from mushroom_id.engine.calibration import fit_temperature


def test_top_k_accuracy_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.3, 0.6], [0.5, 0.4, 0.1]])
    y = np.array([0, 1, 2])
    assert M.top_k_accuracy(probs, y, 1) == pytest.approx(1 / 3)
    assert M.top_k_accuracy(probs, y, 2) == pytest.approx(2 / 3)
    assert M.top_k_accuracy(probs, y, 3) == 1.0


def test_macro_f1_matches_sklearn():
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 200)
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, 5, 200))
    assert M.macro_f1(y, p, 5) == pytest.approx(f1_score(y, p, average="macro"))


def test_ece_perfect_and_overconfident():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert M.expected_calibration_error(probs, np.array([0, 1])) == 0.0
    # always 90% sure, right half the time -> ECE 0.4
    probs = np.tile([0.9, 0.1], (10, 1))
    y = np.array([0, 1] * 5)
    assert M.expected_calibration_error(probs, y) == pytest.approx(0.4)


def test_temperature_fixes_overconfidence():
    rng = np.random.default_rng(1)
    n, c = 2000, 10
    y = rng.integers(0, c, n)
    true_logits = rng.normal(size=(n, c))
    true_logits[np.arange(n), y] += 1.5
    # sample labels consistent with softmax(true_logits), then make the model 3x overconfident
    p = M.softmax(true_logits)
    y = np.array([rng.choice(c, p=row) for row in p])
    t = fit_temperature(true_logits * 3, y)
    assert t == pytest.approx(3.0, rel=0.15)
    assert M.expected_calibration_error(M.softmax(true_logits * 3, t), y) < M.expected_calibration_error(
        M.softmax(true_logits * 3), y
    )


def test_safety_metrics_by_hand():
    toxic = [True, False, False]
    edible = [False, True, False]
    y_true = np.array([0, 0, 1, 2])
    y_pred = np.array([1, 0, 0, 2])  # one toxic missed, one edible called toxic
    assert M.toxic_as_non_toxic_rate(y_true, y_pred, toxic) == 0.5
    assert M.fungiclef_cost(y_true, y_pred, toxic, edible) == pytest.approx((100 + 1) / 4)


def test_most_confused_pairs():
    labels = ["a", "b", "c"]
    pairs = M.most_confused_pairs(np.array([0, 0, 0, 1]), np.array([1, 1, 2, 1]), labels)
    assert pairs[0] == ("a", "b", 2)
    assert ("a", "c", 1) in pairs and len(pairs) == 2
