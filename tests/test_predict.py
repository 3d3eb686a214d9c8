"""The predictor's rules with hand-made probability vectors, then on real photos."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import hand_made_predictor

from mushroom_id.core.catalog import default_catalog
from mushroom_id.core.images import ImageError
from mushroom_id.core.models import load_model
from mushroom_id.core.safety import (
    BANNED_PHRASES,
    DISCLAIMER,
    EDIBILITY_TEXT,
    Thresholds,
    combine_observation,
    genus_answer,
    prediction_set,
)
from mushroom_id.engine.calibration import conformal_qhat
from mushroom_id.serving.predictor import Predictor

LABELS = [
    "Amanita phalloides",  # deadly
    "Amanita rubescens",
    "Amanita pantherina",  # poisonous
    "Cantharellus cibarius",  # edible; lookalike Hygrophoropsis aurantiaca
    "Hygrophoropsis aurantiaca",  # poisonous
    "Agaricus campestris",  # edible
    "Agaricus benesii",  # unknown edibility
    "Boletus edulis",  # edible
]
THRESHOLDS = {"confident": 0.5, "genus": 0.6, "fungus": 0.05, "conformal_qhat": 0.9, "conformal_coverage": 0.9}


@pytest.fixture(scope="module")
def catalog():
    return default_catalog()


@pytest.fixture(scope="module")
def predictor(catalog):
    return hand_made_predictor(LABELS, THRESHOLDS, catalog, size=64)


def vec(**named):
    """A probability vector from {label index: p}; the rest spread evenly."""
    p = np.zeros(len(LABELS))
    for k, v in named.items():
        p[int(k[1:])] = v
    rest = 1 - p.sum()
    free = p == 0
    p[free] = rest / free.sum()
    return p


def kinds(result):
    return [w["kind"] for w in result["warnings"]]


def test_confident_answer_with_lookalike_warning(predictor, catalog):
    r = predictor.answer(vec(i3=0.9), fungus_score=0.8)
    top = r["candidates"][0]
    assert top["species"] == "Cantharellus cibarius" and r["confident"]
    assert top["edibility"] == catalog.edibility("Cantharellus cibarius") == "edible"
    # a poisonous lookalike of the top is a danger warning (one per species), not a mild lookalike note
    looks = [w for w in r["warnings"] if w["species"] == "Hygrophoropsis aurantiaca"]
    assert len(looks) == 1 and looks[0]["kind"] == "toxic_candidate" and looks[0]["edibility"] == "poisonous"
    assert "lookalike" in looks[0]["via"] and "Cantharellus cibarius" in looks[0]["message"]
    assert [w for w in r["warnings"] if w["kind"] == "lookalike"]  # the edible lookalike stays a notice
    assert r["message"] == "Most likely Cantharellus cibarius (90%)."
    assert ("Hygrophoropsis aurantiaca", "poisonous") in [(x["species"], x["edibility"]) for x in top["lookalikes"]]
    # the jack-o'-lanterns are curated known confusions of the chanterelle, with their source
    (omphalotus,) = [x for x in top["lookalikes"] if x["species"] == "Omphalotus olearius"]
    assert omphalotus["reason"].endswith("(Wikipedia: Omphalotus olearius)")
    assert r["genus_answer"] is None
    assert "not_confident" not in kinds(r)


def test_deadly_species_in_top5_raises_a_warning_naming_it(predictor):
    r = predictor.answer(vec(i5=0.8, i0=0.1), fungus_score=0.9)
    toxic = [w for w in r["warnings"] if w["kind"] == "toxic_candidate"]
    assert "Amanita phalloides" in [w["species"] for w in toxic]
    msg = next(w["message"] for w in toxic if w["species"] == "Amanita phalloides")
    assert "Amanita phalloides" in msg and "DEADLY" in msg and "10% probability" in msg
    # the deadly species comes first, before the poisonous lookalike Agaricus xanthodermus
    assert [w["species"] for w in toxic][0] == "Amanita phalloides"
    assert "Agaricus xanthodermus" in [w["species"] for w in toxic]
    assert r["summary"].endswith("among them the deadly Amanita phalloides (10%).")


def test_toxic_species_only_in_the_prediction_set_still_warns(predictor):
    """top_k=1 shows one candidate, but the conformal set also holds the panther cap."""
    r = predictor.answer(vec(i7=0.6, i2=0.35), fungus_score=0.9, top_k=1)
    assert [c["species"] for c in r["candidates"]] == ["Boletus edulis"]
    assert "Amanita pantherina" in r["prediction_set"]["species"]
    assert "Amanita pantherina" in [w["species"] for w in r["warnings"] if w["kind"] == "toxic_candidate"]


def test_no_toxic_warning_when_none_is_plausible(predictor):
    p = np.array([0.0, 0.0, 0.0, 0.02, 0.0, 0.96, 0.0, 0.02])
    r = predictor.answer(p, fungus_score=0.9, top_k=3)
    toxic = [w for w in r["warnings"] if w["kind"] == "toxic_candidate"]
    # no plausible species is toxic; only the known confusions of the top (Agaricus campestris) are:
    # the destroying angel (deadly, first) and the yellow stainer
    assert [(w["species"], w["via"]) for w in toxic] == [
        ("Amanita bisporigera", ["lookalike"]),
        ("Agaricus xanthodermus", ["lookalike"]),
    ]
    # a top without dangerous lookalikes: no danger at all, no summary
    p = np.array([0.0, 0.0, 0.0, 0.02, 0.0, 0.02, 0.96, 0.0])
    r = predictor.answer(p, fungus_score=0.9, top_k=3)
    assert "toxic_candidate" not in kinds(r) and r["summary"] == ""


def test_genus_fallback_when_one_genus_holds_the_mass(predictor):
    r = predictor.answer(vec(i0=0.3, i1=0.25, i2=0.2), fungus_score=0.9)
    assert not r["confident"]
    assert r["genus_answer"] == {"genus": "Amanita", "name": "Amanita sp.", "probability": pytest.approx(0.75)}
    assert "Amanita sp." in r["message"]


def test_not_confident_and_no_genus(predictor):
    r = predictor.answer(np.full(len(LABELS), 1 / len(LABELS)), fungus_score=0.9)
    assert not r["confident"] and r["genus_answer"] is None
    assert "not_confident" in kinds(r)
    assert "may not be one of the species" in r["message"]
    assert "gills or pores" in r["message"] and "stem" in r["message"]  # what would help


def test_not_a_fungus_gets_no_species(predictor):
    r = predictor.answer(vec(i3=0.99), fungus_score=0.01)
    assert r["is_fungus"] is False and r["candidates"] == [] and r["prediction_set"]["species"] == []
    assert kinds(r) == ["not_fungus"]
    assert r["summary"] == ""
    assert r["disclaimer"] == DISCLAIMER


def test_unknown_edibility_is_said_and_never_edible(predictor, catalog):
    r = predictor.answer(vec(i6=0.9), fungus_score=0.9)
    assert r["candidates"][0]["edibility"] == "unknown"
    assert r["candidates"][0]["edibility_text"] == "edibility unknown"
    assert "unknown_edibility" in kinds(r)
    assert catalog.edibility("Not in any catalog") == "unknown"


def test_results_are_json_and_never_say_safe_to_eat(predictor):
    texts = []
    for p in [vec(i3=0.9), vec(i0=0.3, i1=0.3), np.full(len(LABELS), 1 / len(LABELS)), vec(i5=0.99)]:
        for fungus in (0.9, 0.0):
            r = predictor.answer(p, fungus_score=fungus)
            texts.append(json.dumps(r))
            assert r["disclaimer"] == DISCLAIMER
            assert r["model"] == {"id": "hand-made", "num_species": len(LABELS)}
    texts += list(EDIBILITY_TEXT.values()) + [DISCLAIMER]
    for text in texts:
        for phrase in BANNED_PHRASES:
            assert phrase not in text.lower()


# ---- pure functions, checked against hand computation -------------------------------------------


def test_conformal_quantile_by_hand():
    probs = np.array([[0.7, 0.2, 0.1], [0.5, 0.4, 0.1], [0.2, 0.6, 0.2], [0.1, 0.1, 0.8]])
    y = np.array([0, 1, 1, 2])  # scores 1 - p_true: 0.3, 0.6, 0.4, 0.2
    # n=4, coverage 0.5: k = ceil(5 * 0.5) = 3 -> the 3rd smallest of [0.2, 0.3, 0.4, 0.6] = 0.4
    assert conformal_qhat(probs, y, 0.5) == pytest.approx(0.4)
    assert conformal_qhat(probs, y, 0.75) == pytest.approx(0.6)  # k = ceil(3.75) = 4
    assert conformal_qhat(probs, y, 0.9) == 1.0  # k = 5 > n: too few examples, the set is everything


def test_prediction_set_rule():
    p = np.array([0.05, 0.5, 0.45])
    assert prediction_set(p, qhat=0.6) == [1, 2]  # p >= 0.4
    assert prediction_set(p, qhat=0.1) == [1]  # nothing reaches 0.9: the top class is kept
    assert prediction_set(p, qhat=None) == [1]


def test_observation_combines_by_geometric_mean():
    logp = np.log(np.array([[0.9, 0.1], [0.5, 0.5]]))
    # sqrt(0.45) = 0.6708, sqrt(0.05) = 0.2236 -> 0.75 / 0.25 after normalising
    np.testing.assert_allclose(combine_observation(logp), [0.75, 0.25])


def test_genus_answer_thresholds():
    labels = ["Amanita a", "Amanita b", "Boletus c"]
    t = Thresholds(confident=0.5, genus=0.6)
    assert genus_answer(np.array([0.3, 0.35, 0.35]), labels, t)["name"] == "Amanita sp."
    assert genus_answer(np.array([0.25, 0.3, 0.45]), labels, t) is None  # Amanita 0.55 < 0.6
    assert genus_answer(np.array([0.1, 0.55, 0.35]), labels, t) is None  # a species is clear
    off = Thresholds(confident=1.0, genus=1.0)  # what calibration writes when no threshold holds
    assert genus_answer(np.array([0.5, 0.5, 0.0]), labels, off) is None  # all the mass, still off


def test_never_confident_means_never(catalog):
    """Threshold 1.0 (no threshold held on validation): even a top probability that rounds to 1.0
    (0.99996 -> "100%") is not called confident."""
    never = hand_made_predictor(LABELS, {**THRESHOLDS, "confident": 1.0, "genus": 1.0}, catalog)
    p = np.full(len(LABELS), 0.00004 / (len(LABELS) - 1))
    p[7] = 0.99996  # Boletus edulis
    r = never.answer(p, fungus_score=0.9)
    assert r["candidates"][0]["probability"] == 1.0  # rounded in the JSON
    assert not r["confident"] and r["message"].startswith("Not confident")
    assert Thresholds(confident=0.9).is_confident(0.95) and not Thresholds(confident=1.0).is_confident(1.0)


# ---- the embedded model on real photos ----------------------------------------------------------


@pytest.fixture(scope="module")
def embedded(catalog):
    return Predictor(load_model("embedded"), catalog)


def test_real_photo_structured_result(embedded, catalog, photo_of):
    r = embedded.predict(photo_of("Amanita muscaria", "wiki"))
    json.dumps(r)
    assert r["is_fungus"] and r["fungus_score"] > embedded.thresholds.fungus
    assert r["candidates"][0]["species"] == "Amanita muscaria"
    assert len(r["candidates"]) == 5
    assert sum(c["probability"] for c in r["candidates"]) <= 1 + 1e-6
    for c in r["candidates"]:
        assert c["species"] in catalog and c["edibility"] == catalog.edibility(c["species"])
    assert r["model"]["id"] == embedded.loaded.model_id
    # Amanita muscaria is poisonous in the catalog: the warning must name it
    assert catalog.edibility("Amanita muscaria") in ("poisonous", "psychoactive", "deadly")
    assert "Amanita muscaria" in [w["species"] for w in r["warnings"] if w["kind"] == "toxic_candidate"]


def test_deadly_photo_warns(embedded, photo_of):
    """Whatever the model guesses for a death cap, a toxic species must be in the warnings."""
    r = embedded.predict(photo_of("Amanita phalloides"))
    assert any(w["kind"] == "toxic_candidate" for w in r["warnings"])


def test_a_cat_is_not_a_fungus(embedded):
    from PIL import Image
    from skimage import data

    r = embedded.predict(Image.fromarray(data.chelsea()))
    assert r["is_fungus"] is False and r["candidates"] == []


def test_observation_of_several_real_photos(embedded, photo_manifest, photos_dir):
    paths = [
        photos_dir.parent / row["path"]
        for row in photo_manifest
        if row["species"] == "Boletus edulis" and row["source"] == "inatse"
    ][:3]
    r = embedded.predict_observation(paths)
    assert r["photos"] == 3 and r["candidates"]
    # the combined answer is the mean of the photos' log-probabilities, renormalised (by hand here)
    logp, _ = embedded.log_probs(paths)
    mean = logp.mean(axis=0)
    expected = np.exp(mean - mean.max()) / np.exp(mean - mean.max()).sum()
    top = int(np.argmax(expected))
    assert r["candidates"][0]["species"] == embedded.labels[top]
    assert r["candidates"][0]["probability"] == pytest.approx(expected[top], abs=1e-4)


def test_bytes_and_bad_input(embedded, photo_of):
    data = photo_of("Boletus edulis", "wiki").read_bytes()
    assert embedded.predict(data)["candidates"]
    with pytest.raises(ImageError):
        embedded.predict(b"<html>not an image</html>")
    with pytest.raises(ValueError):
        embedded.predict_observation([])


def test_predictor_leaves_global_grad_mode_alone(embedded, photo_of):
    """Prediction must not switch autograd off for the whole process (training in the same
    process, e.g. a notebook or the test suite, would silently stop learning)."""
    import torch

    assert torch.is_grad_enabled()
    embedded.predict(photo_of("Boletus edulis", "wiki"))
    assert torch.is_grad_enabled()
