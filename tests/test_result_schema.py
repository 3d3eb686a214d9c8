"""One definition of the answer (mushroom_id/core/result.py): what the predictor builds, the CLI prints
and docs/api.md describes all follow it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing

import numpy as np
from conftest import hand_made_predictor

from mushroom_id.core.catalog import default_catalog
from mushroom_id.core.models import read_config
from mushroom_id.core.paths import EMBEDDED_MODEL_DIR, REPO_DIR
from mushroom_id.core.result import WARNING_KINDS, Candidate, ModelInfo, PredictionSet, Result, Warning

API_DOC = REPO_DIR / "docs" / "api.md"
LABELS = ["Amanita phalloides", "Amanita muscaria", "Boletus edulis", "Morchella esculenta", "Cantharellus cibarius"]
THRESHOLDS = {"confident": 0.5, "genus": 0.6, "fungus": 0.05, "conformal_qhat": 0.9, "conformal_coverage": 0.9}


def fields(typed) -> set[str]:
    return set(typing.get_type_hints(typed))


def check_result(r: dict) -> None:
    assert set(r) == fields(Result)
    for c in r["candidates"]:
        assert set(c) == fields(Candidate)
    assert set(r["prediction_set"]) == fields(PredictionSet)
    assert set(r["model"]) == fields(ModelInfo)
    for w in r["warnings"]:
        if w == "...":  # the doc's ellipsis
            continue
        assert {"kind", "species", "edibility", "message"} <= set(w) <= fields(Warning), w
        assert w["kind"] in WARNING_KINDS


def documented_result() -> dict:
    text = API_DOC.read_text()
    block = re.search(r"## The result\n.*?```json\n(.*?)\n```", text, re.S)
    assert block, "docs/api.md has no JSON block under '## The result'"
    return json.loads(block.group(1))


def test_every_answer_the_predictor_builds_has_the_typed_fields():
    catalog = default_catalog()
    predictor = hand_made_predictor(LABELS, THRESHOLDS, catalog)
    cases = [
        (np.array([0.9, 0.04, 0.03, 0.02, 0.01]), 0.9),  # confident, deadly
        (np.array([0.3, 0.25, 0.2, 0.15, 0.1]), 0.9),  # not confident
        (np.array([0.4, 0.35, 0.1, 0.1, 0.05]), 0.9),  # genus answer (two Amanitas)
        (np.array([0.9, 0.04, 0.03, 0.02, 0.01]), 0.01),  # not a fungus
    ]
    kinds = set()
    for probs, fungus in cases:
        r = predictor.answer(probs, fungus)
        check_result(r)
        json.dumps(r)  # plain JSON
        kinds |= {w["kind"] for w in r["warnings"]}
    assert {"toxic_candidate", "not_confident", "not_fungus"} <= kinds


def test_the_api_doc_describes_the_result_of_the_shipped_model():
    doc = documented_result()
    check_result(doc)
    assert doc["model"]["id"] == read_config(EMBEDDED_MODEL_DIR)["model_id"]
    assert doc["model"]["num_species"] == len(read_config(EMBEDDED_MODEL_DIR)["label_names"])
    prose = API_DOC.read_text()
    for kind in WARNING_KINDS:
        assert f"`{kind}`" in prose, f"docs/api.md does not explain the warning kind {kind}"


def test_the_checks_catch_a_renamed_field():
    doc = documented_result()
    doc["candidates"][0]["prob"] = doc["candidates"][0].pop("probability")
    try:
        check_result(doc)
    except AssertionError:
        return
    raise AssertionError("a renamed candidate field went unnoticed")


def test_predict_json_is_keyed_by_path_with_an_error_per_unreadable_photo(photo_of, tmp_path):
    good, bad = photo_of("Boletus edulis", "wiki"), tmp_path / "notes.jpg"
    bad.write_text("not a photo")
    out = subprocess.run(
        [sys.executable, "-m", "mushroom_id", "predict", "--json", "--top-k", "2", str(good), str(bad)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 2  # one photo failed
    answers = json.loads(out.stdout)
    assert list(answers) == [str(good), str(bad)]
    check_result(answers[str(good)])
    assert set(answers[str(bad)]) == {"error"} and "notes.jpg" in answers[str(bad)]["error"]
