"""The red panel (mushroom_id/core/danger.py): a dangerous species is named when it is the top guess,
holds the fitted share, or is a dangerous lookalike of a top-3 candidate; at most 3 names, deadly
first; and no dangerous species of the result is ever dropped (the rest stay in the details)."""

from __future__ import annotations

import numpy as np
import pytest

from mushroom_id.core.answer_text import caution_line, text_lines
from mushroom_id.core.catalog import DANGEROUS, default_catalog
from mushroom_id.core.danger import NEUTRAL_LINE, danger_panel, danger_profiles, profile_matches, unnamed_dangers
from mushroom_id.core.safety import Thresholds, answer
from mushroom_id.core.words import percent

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
    "Kretzschmaria deusta",
    "Chlorophyllum brunneum",
    "Chlorophyllum molybdites",
    "Lactarius deliciosus",
    "Omphalotus olearius",
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


def test_no_danger_that_matters_gives_an_empty_panel_and_no_claim_about_the_species():
    """Defect 7 of issue 28: the neutral line read as a claim about the species on screen (a shelf fungus
    included); now it is a general rule, shown only beside a top candidate that sources call edible."""
    r = result_for({"Trametes versicolor": 0.5, "Boletus edulis": 0.3, "Cantharellus cibarius": 0.15}, share=0.2)
    assert r["danger_panel"] == []
    assert NEUTRAL_LINE not in text_lines(r) and caution_line(r) == ""  # a shelf fungus: no line
    assert not any("like this one" in line for line in text_lines(r))
    edible = result_for({"Boletus edulis": 0.5, "Trametes versicolor": 0.3, "Cantharellus cibarius": 0.15}, share=0.2)
    assert edible["danger_panel"] == [] and NEUTRAL_LINE in text_lines(edible)
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


def test_the_original_lists_toxic_alone_never_leads_the_red_panel():
    """Defect 2 of issue 28: a brown parasol photo got a red panel for Kretzschmaria deusta, a crust
    fungus only the original list's binary "toxic" calls poisonous, while the real poisonous candidate
    (a specific source says so) stayed in the details."""
    assert not CATALOG.danger_is_specific("Kretzschmaria deusta")
    assert CATALOG.danger_is_specific("Chlorophyllum molybdites") and CATALOG.danger_is_specific("Amanita phalloides")
    r = result_for({"Chlorophyllum brunneum": 0.5, "Kretzschmaria deusta": 0.2, "Chlorophyllum molybdites": 0.06})
    named = [d["species"] for d in r["danger_panel"]]
    # the brown parasol is poisonous itself (Wild Food UK): the top guess, then the false parasol
    assert named == ["Chlorophyllum brunneum", "Chlorophyllum molybdites"]
    assert "Kretzschmaria deusta" in {w["species"] for w in unnamed_dangers(r)}  # still on the page
    # as the top guess it is named, but after a danger a specific source asserts
    r = result_for({"Kretzschmaria deusta": 0.4, "Chlorophyllum molybdites": 0.3})
    assert [d["species"] for d in r["danger_panel"]][:2] == ["Chlorophyllum molybdites", "Kretzschmaria deusta"]


def test_danger_profiles_are_data_with_sources_that_fit_the_trait_table():
    from mushroom_id.core.questions import QUESTIONS
    from mushroom_id.core.traits import default_traits

    traits = default_traits()
    profiles = danger_profiles()
    assert {p.key for p in profiles} >= {"deadly_amanita", "galerina", "omphalotus"}
    for p in profiles:
        assert p.why and p.source and p.members
        for m in p.members:  # every member is a catalog species a specific source calls dangerous
            assert CATALOG.danger_is_specific(m), m
        for key, values in p.conditions.items():
            assert values <= {o.value for o in QUESTIONS[key].options}, (p.key, key)  # existing answers only
            known = [traits.of(m).get(QUESTIONS[key].trait) for m in p.members]
            known = [k for k in known if k]
            # the trait table agrees: some member has one of the profile's values wherever it is known
            fits = set().union(*(QUESTIONS[key].option(v).matches for v in values))
            assert not known or any(fits & k for k in known), (p.key, key, known)
        assert set(p.needs) <= set(p.conditions) and p.min_answers <= len(p.conditions)


def test_answers_that_fit_a_dangerous_profile_name_it_in_red_whatever_the_photo_says():
    photo = {"Laetiporus sulphureus": 0.6, "Trametes versicolor": 0.3}
    before = result_for(photo, share=0.2)
    assert not any("Amanita" in d["species"] for d in before["danger_panel"])
    answers = {"hymenium": "gills", "stipe": "ring_and_volva", "spore_print": "white-cream"}
    assert [p.key for p, _ in profile_matches(answers)] == ["deadly_amanita"]
    p = np.array([photo.get(n, 0.001) for n in LABELS])
    field = _field()
    t = Thresholds(confident=1.0, genus=1.0, conformal_qhat=0.99, danger_share=0.2)
    r = answer(p / p.sum(), 0.9, LABELS, CATALOG, t, MODEL, field=field, answers=answers)
    first = r["danger_panel"][0]
    assert first["species"] in ("Amanita phalloides", "Amanita virosa") and first["edibility"] == "deadly"
    assert first["reason"].startswith("your answers fit the deadly Amanitas") and "cup" in first["check"]
    # an answer adds a warning, never hides one: every danger the photo raised is still on the page
    shown = {d["species"] for d in r["danger_panel"]} | {w["species"] for w in unnamed_dangers(r)}
    assert {w["species"] for w in before["warnings"] if w["kind"] == "toxic_candidate"} <= shown
    # answers that contradict the profile (no ring or cup) do not fit it; "not sure" is no answer
    assert not profile_matches({"hymenium": "gills", "stipe": "bare", "spore_print": "white-cream"})
    assert not profile_matches({"hymenium": "gills", "spore_print": "white-cream"})  # the stem is needed
    assert [p.key for p, _ in profile_matches({"spore_print": "green"})] == ["false_parasol"]
    assert [
        p.key for p, _ in profile_matches({"hymenium": "gills", "gill_attachment": "decurrent", "ecology": "wood"})
    ] == ["omphalotus"]
    galerina = {"hymenium": "gills", "stipe": "ring", "spore_print": "brown", "ecology": "wood"}
    assert [p.key for p, _ in profile_matches(galerina)] == ["galerina"]


def _field():
    from mushroom_id.core.questions import FieldEvidence
    from mushroom_id.core.traits import default_traits

    return FieldEvidence.for_labels(LABELS, default_traits(), CATALOG.resolve)


def test_no_shown_percentage_reads_100():
    """Defect 3 of issue 28: "Most likely a species of Amanita (100% together)"; one formatter, used by
    the headline, the message and the details alike."""
    assert percent(0.9996) == "over 99%" and percent(0.995) == "over 99%" and percent(0.994) == "99%"
    assert percent(0.004) == "<1%" and percent(0.5) == "50%" and percent(None) == ""
    p = np.full(len(LABELS), 1e-5)
    p[LABELS.index("Amanita phalloides")], p[LABELS.index("Amanita virosa")] = 0.93, 0.07
    t = Thresholds(confident=0.95, genus=0.6, conformal_qhat=0.5)
    r = answer(p / p.sum(), 0.9, LABELS, CATALOG, t, MODEL)
    assert r["genus_answer"] and "100%" not in r["message"] and "over 99% together" in r["message"]
    assert "100%" not in " ".join(text_lines(r))
    assert text_lines(r)[0].startswith("No single species is clear: most likely a species of Amanita (over 99%")


def test_a_lookalike_an_answer_contradicts_leaves_the_red_panel_not_the_page():
    photo = {"Cantharellus cibarius": 0.7, "Boletus edulis": 0.2}
    p = np.array([photo.get(n, 0.001) for n in LABELS])
    t = Thresholds(confident=1.0, genus=1.0, conformal_qhat=0.99, danger_share=0.2)
    before = answer(p / p.sum(), 0.9, LABELS, CATALOG, t, MODEL, field=_field(), answers={})
    assert "Omphalotus olearius" in {d["species"] for d in before["danger_panel"]}  # looks like the top guess
    after = answer(p / p.sum(), 0.9, LABELS, CATALOG, t, MODEL, field=_field(), answers={"hymenium": "ridges"})
    assert after["candidates"][0]["species"] == "Cantharellus cibarius"
    assert "Omphalotus olearius" not in {d["species"] for d in after["danger_panel"]}  # true gills: ruled out
    assert "Omphalotus olearius" in {w["species"] for w in unnamed_dangers(after)}  # still on the page
    look = next(x for x in after["candidates"][0]["lookalikes"] if x["species"] == "Omphalotus olearius")
    assert look["ruled_out_by"] == ["Ridges (blunt, forked veins)"]


def test_the_page_keeps_a_photo_for_hours_and_forgets_it_after():
    from mushroom_id.serving.ui.service import KEEP_SECONDS, KeptPhotos

    assert KEEP_SECONDS >= 12 * 3600
    kept = KeptPhotos(seconds=60, limit=2)
    a, b = kept.keep({"probs": 1}), kept.keep({"probs": 2})
    assert a != b and kept.get(a) == {"probs": 1} and kept.get("nope") is None and kept.get(None) is None
    kept.keep({"probs": 3})  # over the limit: the least recently used (b) goes
    assert kept.get(b) is None and kept.get(a) == {"probs": 1}
    kept.seconds = -1  # expired
    assert kept.get(a) is None
