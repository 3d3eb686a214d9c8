"""The red panel (mushroom_id/core/danger.py): a dangerous species is named when it is the top guess,
holds the fitted share, or is a dangerous lookalike of a top-3 candidate; at most 3 names, deadly
first; and no dangerous species of the result is ever dropped (the rest stay in the details)."""

from __future__ import annotations

import numpy as np
import pytest

from mushroom_id.core.answer_text import text_lines
from mushroom_id.core.catalog import DANGEROUS, default_catalog
from mushroom_id.core.danger import NEUTRAL_LINE, danger_panel, unnamed_dangers
from mushroom_id.core.safety import Thresholds, answer

CATALOG = default_catalog()
MODEL = {"id": "test", "num_species": 0}
# a small label space with deadly, poisonous and edible lookalike groups
LABELS = [
    "Amanita phalloides",
    "Amanita virosa",
    "Amanita muscaria",
    "Agaricus campestris",
    "Macrolepiota procera",
    "Boletus edulis",
    "Cantharellus cibarius",
    "Galerina marginata",
    "Kuehneromyces mutabilis",
    "Gyromitra esculenta",
    "Morchella esculenta",
    "Hypholoma fasciculare",
    "Trametes versicolor",
    "Laetiporus sulphureus",
]


def result_for(probs: dict[str, float], share: float = 0.05, **th) -> dict:
    p = np.array([probs.get(n, 0.0) for n in LABELS], dtype=float)
    rest = 1.0 - p.sum()
    p[p == 0] = rest / max(1, int((p == 0).sum()))
    t = Thresholds(confident=1.0, genus=1.0, conformal_qhat=0.99, conformal_coverage=0.7, danger_share=share, **th)
    return answer(p / p.sum(), 0.9, LABELS, CATALOG, t, MODEL)


def test_catalog_facts_this_file_relies_on():
    assert CATALOG.edibility("Gyromitra esculenta") in DANGEROUS
    assert CATALOG.edibility("Amanita phalloides") == "deadly"
    assert CATALOG.edibility("Boletus edulis") in ("edible", "choice")
    assert any(x.edibility in DANGEROUS for x in CATALOG.lookalikes("Morchella esculenta"))


def test_a_dangerous_top_guess_is_named_first():
    r = result_for({"Gyromitra esculenta": 0.23, "Morchella esculenta": 0.2})
    panel = r["danger_panel"]
    assert panel[0]["species"] == "Gyromitra esculenta" and panel[0]["reason"].startswith("top guess")
    assert "23%" not in panel[0]["reason"]  # the top guess says enough


def test_a_share_names_a_dangerous_species_below_the_top():
    r = result_for({"Boletus edulis": 0.3, "Galerina marginata": 0.12})
    named = {d["species"]: d["reason"] for d in r["danger_panel"]}
    assert named.get("Galerina marginata") == "12%"
    r = result_for({"Boletus edulis": 0.3, "Galerina marginata": 0.12}, share=0.2)
    assert "Galerina marginata" not in {d["species"] for d in r["danger_panel"]}
    assert "Galerina marginata" in {w["species"] for w in unnamed_dangers(r)}  # still there, neutrally


def test_a_dangerous_lookalike_of_a_top3_candidate_is_named():
    r = result_for({"Morchella esculenta": 0.3})
    looks = [d for d in r["danger_panel"] if "looks like your top guess" in d["reason"]]
    assert looks and all(CATALOG.edibility(d["species"]) in DANGEROUS for d in looks)
    assert {d["species"] for d in looks} <= {x.name for x in CATALOG.lookalikes("Morchella esculenta")}
    r = result_for({"Trametes versicolor": 0.3, "Boletus edulis": 0.2, "Morchella esculenta": 0.15}, share=0.1)
    assert any("looks like Morchella esculenta (guess 3)" in d["reason"] for d in r["danger_panel"])
    r = result_for({"Trametes versicolor": 0.3, "Boletus edulis": 0.2, "Morchella esculenta": 0.15}, share=0.2)
    assert not any("guess 3" in d["reason"] for d in r["danger_panel"])  # guess 3 is below the share


def test_no_danger_that_matters_gives_an_empty_panel_and_the_neutral_line():
    r = result_for({"Trametes versicolor": 0.5, "Boletus edulis": 0.3, "Cantharellus cibarius": 0.15}, share=0.2)
    assert r["danger_panel"] == []
    assert NEUTRAL_LINE in text_lines(r)
    # the dangerous species the photo leaves possible are still in the result, and the CLI says how many
    assert all(
        w["species"] in {u["species"] for u in unnamed_dangers(r)}
        for w in r["warnings"]
        if w["kind"] == "toxic_candidate"
    )


def test_at_most_three_names_deadly_first():
    r = result_for({n: 0.09 for n in LABELS if CATALOG.edibility(n) in DANGEROUS})
    panel = r["danger_panel"]
    assert len(panel) == 3
    levels = [("deadly", "poisonous", "psychoactive").index(d["edibility"]) for d in panel]
    assert levels == sorted(levels) and panel[0]["edibility"] == "deadly"


@pytest.mark.parametrize("seed", range(40))
def test_no_dangerous_species_is_ever_dropped(seed):
    """Random answers, any share: every toxic_candidate warning is in the red panel or in the details."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(len(LABELS), 0.3))
    share = float(rng.choice([0.02, 0.05, 0.2, 1.0]))
    t = Thresholds(confident=1.0, genus=1.0, conformal_qhat=0.99, conformal_coverage=0.7, danger_share=share)
    r = answer(p, 0.9, LABELS, CATALOG, t, MODEL)
    toxic = {w["species"] for w in r["warnings"] if w["kind"] == "toxic_candidate"}
    shown = {d["species"] for d in r["danger_panel"]} | {w["species"] for w in unnamed_dangers(r)}
    assert toxic <= shown
    assert len(r["danger_panel"]) <= 3
    assert r["danger_panel"] == danger_panel(r, share)  # a pure function of the result


def test_below_the_floor_the_headline_says_the_photo_is_not_enough():
    r = result_for({"Boletus edulis": 0.2, "Cantharellus cibarius": 0.1}, floor=0.3)
    assert r["below_floor"] and r["message"].startswith("This photo is not enough to name the species. Possible:")
    assert text_lines(r)[0].startswith("The photo is not enough to name it. Possible: Boletus edulis")
    above = result_for({"Boletus edulis": 0.4}, floor=0.3)
    assert not above["below_floor"] and above["message"].startswith("Not confident")


def test_measured_rates_are_species_balanced_and_count_the_genus():
    from mushroom_id.engine.calibration import danger_rates

    y = np.array([LABELS.index(n) for n in ["Amanita phalloides"] * 3 + ["Galerina marginata", "Boletus edulis"] * 1])
    y = np.append(y, LABELS.index("Cantharellus cibarius"))
    outcome = {
        # phalloides: named once of 3 (as its genus: A. virosa counts), Galerina named; edible: one panel of two
        "named": [["Amanita virosa"], [], ["Gyromitra esculenta"], ["Galerina marginata"], ["Amanita virosa"], []],
        "panel": [True, False, True, True, True, False],
    }
    rates = danger_rates(outcome, y, LABELS, CATALOG)
    assert rates["toxic_named"] == pytest.approx((1 / 3 + 1) / 2)  # the mean of each toxic species' share
    assert rates["edible_with_panel"] == pytest.approx((1 + 0) / 2)
    assert rates["toxic_specimens"] == 4 and rates["edible_specimens"] == 2
