"""Leave-one-source-out candidates: blend weights chosen without the fold's own photos, paired intervals."""

import numpy as np
import pytest

from mushroom_id.engine.candidates import PhotoHead
from mushroom_id.engine.loso import (
    BLEND_WEIGHTS,
    best_weight,
    blend_weights,
    bootstrap_topk,
    candidate_heads,
    forward_cost,
    linear_part,
    paired_difference,
)


def test_candidate_rows_cover_the_issue():
    names = {h.name for h in candidate_heads()}
    for b in ("lite0", "lite1", "lite2"):
        for suffix in ("", " (flip)"):
            assert f"{b}-class-mean{suffix}" in names and f"{b}-linear{suffix}" in names
    assert "lite0+lite1+lite2-linear" in names  # concatenated features, one head
    assert "lite0+lite1+lite2-class-mean" in names  # summed per-backbone scores
    assert "lite1-linear + lite0+lite1+lite2-class-mean (flip)" in names  # a blend


def test_forward_cost_against_one_lite1_forward():
    assert forward_cost(PhotoHead(linear=("lite1",))) == 1.0
    assert forward_cost(PhotoHead(linear=("lite1",), flip=True)) == 2.0
    assert 1.5 < forward_cost(PhotoHead(means=("lite0", "lite1"))) < 1.7
    assert forward_cost(PhotoHead(means=("lite0", "lite1", "lite2"), flip=True)) > 6


def test_blend_weight_is_chosen_on_other_folds():
    rng = np.random.default_rng(0)
    n, c = 60, 6
    y = np.arange(n) % c
    lin = rng.normal(size=(n, c))
    means = np.eye(c)[y] * 1.0  # class means that are always right
    plan = [("a", None, np.arange(n) < 30), ("b", None, np.arange(n) >= 30)]
    ws = blend_weights(lin, means, y, plan)
    assert all(w in BLEND_WEIGHTS for w in ws) and min(ws) > 0  # the right scores earn weight
    # a fold's own photos do not choose its weight: spoil fold b's class means, fold b's weight stays
    spoiled = means.copy()
    spoiled[30:] = np.eye(c)[(y[30:] + 1) % c]
    assert blend_weights(lin, spoiled, y, plan)[1] == ws[1]
    assert best_weight(lin, spoiled, y, np.arange(n) >= 30) == 0.0


def test_paired_difference_and_intervals():
    y = np.repeat(np.arange(20), 3)
    good = np.eye(20)[y] + 0.01
    bad = np.roll(np.eye(20)[y], 7, axis=1) + 0.01
    d, (lo, hi) = paired_difference(good, bad, y, 1)
    assert d == 1.0 and lo == hi == 1.0
    d, (lo, hi) = paired_difference(good, good, y, 5)
    assert d == 0.0 and lo == hi == 0.0
    lo, hi = bootstrap_topk(good, y, 1)
    assert lo == hi == 1.0


def test_blend_grid_reaches_past_128():
    # linear logits on a scale where the (always right) class means need a weight above 128 to decide
    y = np.arange(40) % 4
    wrong = np.eye(4)[(y + 1) % 4]
    lin = 300.0 * wrong  # confidently wrong by 300
    means = np.eye(4)[y]  # cosine 1 for the right class, 0 elsewhere
    mask = np.ones(40, dtype=bool)
    assert max(BLEND_WEIGHTS) >= 512
    assert best_weight(lin, means, y, mask) > 300  # 128 (the old grid's top) cannot overturn the linear part


def test_linear_part_keeps_flip():
    blend = PhotoHead(linear=("lite1",), means=("lite0", "lite1"), flip=True)
    assert linear_part(blend) == "lite1-linear (flip)"
    assert linear_part(PhotoHead(linear=("lite1",), means=("lite0",))) == "lite1-linear"


def test_temperature_past_the_bounded_range():
    from mushroom_id.engine.calibration import fit_temperature, fit_temperature_wide

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 500)
    unit = np.eye(5)[y] * 1.5 + rng.normal(size=(500, 5))  # logits whose own temperature is about 1
    t1 = fit_temperature(unit, y)
    assert 0.5 < t1 < 2
    assert fit_temperature(300 * unit, y) == pytest.approx(20.0, rel=1e-3)  # the bounded fit stops at 20
    assert fit_temperature_wide(300 * unit, y) == pytest.approx(300 * t1, rel=1e-3)
    assert fit_temperature_wide(unit, y) == t1  # inside the range: the same fit
