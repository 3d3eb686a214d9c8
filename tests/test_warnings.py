"""Warnings a person reads: one danger warning per species, the deadliest first, a summary sentence,
a headline that names the danger, and a page that shows the summary and folds long lists.

Probability vectors are built by hand over a small label list; edibility and lookalikes come from
the real default catalog (the test checks the catalog facts it relies on first).
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
from conftest import hand_made_predictor

from mushroom_id.core.answer_text import text_lines
from mushroom_id.core.catalog import DANGEROUS, default_catalog
from mushroom_id.core.safety import BANNED_PHRASES, EDIBILITY_TEXT, danger_rank, danger_summary, species_warnings
from mushroom_id.serving.ui.render import answer_html, first_screen_html

LABELS = [
    "Amanita phalloides",  # 0 deadly; lookalikes A. citrina, A. strobiliformis (poisonous)
    "Amanita virosa",  # 1 deadly
    "Amanita muscaria",  # 2 poisonous; lookalikes A. gemmata, A. pantherina (poisonous), A. excelsa, A. rubescens
    "Amanita pantherina",  # 3 poisonous
    "Morchella esculenta",  # 4 edible; lookalike Gyromitra esculenta (deadly)
    "Gyromitra esculenta",  # 5 deadly
    "Psilocybe cubensis",  # 6 psychoactive, no lookalikes
    "Cantharellus cibarius",  # 7 edible
    "Agaricus benesii",  # 8 unknown, no lookalikes
    "Amanita rubescens",  # 9 edible (Wikipedia: edible, not recommended)
    "Boletus edulis",  # 10 edible
]
IDX = {name: i for i, name in enumerate(LABELS)}
# No conformal quantile: the plausible species are exactly the top-k, so each case is exact.
THRESHOLDS = {"confident": 0.5, "genus": 0.6, "fungus": 0.05}


@pytest.fixture(scope="module")
def catalog():
    c = default_catalog()
    facts = {
        "Amanita phalloides": "deadly",
        "Amanita virosa": "deadly",
        "Amanita muscaria": "poisonous",
        "Amanita pantherina": "poisonous",
        "Morchella esculenta": "edible",
        "Gyromitra esculenta": "deadly",
        "Psilocybe cubensis": "psychoactive",
        "Cantharellus cibarius": "edible",
        "Agaricus benesii": "unknown",
        "Amanita rubescens": "edible",  # Wikipedia "edible, not recommended", Wild Food UK Edible
        "Boletus edulis": "edible",
    }
    assert {n: c.edibility(n) for n in facts} == facts
    # curated confusions first (mushroom_id/data/confusions.csv), then Wild Food UK's lookalikes
    assert [(s.name, s.edibility) for s in c.lookalikes("Amanita muscaria")] == [
        ("Amanita caesarea", "choice"),
        ("Amanita rubescens", "edible"),
        ("Amanita excelsa", "inedible"),
        ("Amanita gemmata", "poisonous"),
        ("Amanita pantherina", "poisonous"),
    ]
    assert [(s.name, s.edibility) for s in c.lookalikes("Morchella esculenta")] == [
        ("Gyromitra esculenta", "deadly"),
        ("Morchella importuna", "edible"),
        ("Morchella vulgaris", "edible"),
    ]
    phalloides = [(s.name, s.edibility) for s in c.lookalikes("Amanita phalloides")]
    expected = {("Amanita citrina", "poisonous"), ("Russula virescens", "edible"), ("Tricholoma equestre", "poisonous")}
    assert expected <= set(phalloides)
    # Galerina and Conocybe filaris are known confusions of the genus Psilocybe
    assert [(s.name, s.edibility) for s in c.lookalikes("Psilocybe cubensis")] == [
        ("Conocybe filaris", "poisonous"),
        ("Galerina marginata", "deadly"),
    ]
    assert c.lookalikes("Agaricus benesii") == []
    return c


@pytest.fixture(scope="module")
def predictor(catalog):
    return hand_made_predictor(LABELS, THRESHOLDS, catalog, size=32)


def probs(**named: float) -> np.ndarray:
    """{"Amanita_muscaria": 0.6, ...} -> a vector; the rest of the mass spread evenly (and small)."""
    p = np.zeros(len(LABELS))
    for key, value in named.items():
        p[IDX[key.replace("_", " ")]] = value
    free = p == 0
    p[free] = (1 - p.sum()) / free.sum()
    return p


def danger(result: dict) -> list[dict]:
    return [w for w in result["warnings"] if w["kind"] == "toxic_candidate"]


def species(ws: list[dict]) -> list[str]:
    return [w["species"] for w in ws]


# ---- ordering and one warning per species ---------------------------------------------------------


def test_deadly_before_poisonous_even_when_less_probable(predictor):
    r = predictor.answer(
        probs(Amanita_muscaria=0.6, Amanita_pantherina=0.25, Amanita_phalloides=0.1), fungus_score=0.9, top_k=3
    )
    assert species(r["candidates"]) == ["Amanita muscaria", "Amanita pantherina", "Amanita phalloides"]
    # deadly (10%) first; then poisonous by probability; the lookalike the model gives no probability last
    assert species(danger(r)) == ["Amanita phalloides", "Amanita muscaria", "Amanita pantherina", "Amanita gemmata"]
    assert [w["edibility"] for w in danger(r)] == ["deadly", "poisonous", "poisonous", "poisonous"]
    assert [w["probability"] for w in danger(r)] == [0.1, 0.6, 0.25, None]
    # all danger warnings come before every other warning
    kinds = [w["kind"] for w in r["warnings"]]
    assert kinds == ["toxic_candidate"] * 4 + ["lookalike"] * 3
    # not dangerous: notices, the curated confusions first
    assert species(r["warnings"][4:]) == ["Amanita caesarea", "Amanita rubescens", "Amanita excelsa"]


def test_one_warning_per_species_that_is_both_candidate_and_lookalike(predictor):
    r = predictor.answer(
        probs(Amanita_muscaria=0.6, Amanita_pantherina=0.25, Amanita_phalloides=0.1), fungus_score=0.9, top_k=3
    )
    named = [w["species"] for w in r["warnings"] if w["species"]]
    assert len(named) == len(set(named))
    (panther,) = [w for w in r["warnings"] if w["species"] == "Amanita pantherina"]
    assert panther["kind"] == "toxic_candidate" and panther["via"] == ["candidate", "lookalike"]
    assert panther["message"] == (
        "Amanita pantherina (POISONOUS, 25% probability) is among the plausible species and can be confused "
        "with Amanita muscaria, the most likely species (a known confusion: Wild Food UK's confusion notes)."
    )
    (gemmata,) = [w for w in r["warnings"] if w["species"] == "Amanita gemmata"]
    assert gemmata["via"] == ["lookalike"]
    assert (
        gemmata["message"]
        == "Amanita gemmata (POISONOUS) can be confused with Amanita muscaria, the most likely species "
        "(a known confusion: Wild Food UK's confusion notes)."
    )
    (phalloides,) = [w for w in r["warnings"] if w["species"] == "Amanita phalloides"]
    assert phalloides["via"] == ["candidate"]
    assert (
        phalloides["message"]
        == "Amanita phalloides (DEADLY POISONOUS, 10% probability) is among the plausible species."
    )


def test_deadly_lookalike_of_the_top_is_a_danger_warning(predictor):
    """Morchella esculenta on top: the deadly false morel is a danger, not a footnote."""
    r = predictor.answer(
        probs(Morchella_esculenta=0.9, Cantharellus_cibarius=0.05, Boletus_edulis=0.03), fungus_score=0.9, top_k=3
    )
    assert r["confident"] and r["candidates"][0]["species"] == "Morchella esculenta"
    (gyro,) = danger(r)
    assert gyro["species"] == "Gyromitra esculenta" and gyro["edibility"] == "deadly"
    assert gyro["via"] == ["lookalike"]
    assert gyro["probability"] == pytest.approx(0.02 / 8, abs=1e-4)  # the model knows it: its share is kept
    assert "DEADLY POISONOUS" in gyro["message"] and "Morchella esculenta" in gyro["message"]
    assert r["warnings"][0] is gyro  # first, before the mild lookalike notes
    assert [w["species"] for w in r["warnings"] if w["kind"] == "lookalike"] == [
        "Morchella importuna",
        "Morchella vulgaris",
    ]
    assert r["summary"] == (
        "1 deadly species is possible for this photo: Gyromitra esculenta (a lookalike of Morchella esculenta)."
    )
    assert r["message"] == "Most likely Morchella esculenta (90%)."
    page = first_screen_html(r)
    red = page.partition('id="danger-panel"')[2]
    assert "Gyromitra esculenta" in red and "looks like your top guess" in red  # the red panel names it


def test_deadly_lookalike_comes_before_poisonous_candidates(predictor):
    r = predictor.answer(
        probs(Morchella_esculenta=0.7, Amanita_muscaria=0.2, Amanita_pantherina=0.05), fungus_score=0.9, top_k=3
    )
    assert species(danger(r)) == ["Gyromitra esculenta", "Amanita muscaria", "Amanita pantherina"]
    assert r["summary"] == (
        "1 deadly and 2 poisonous species are possible for this photo, among them the deadly Gyromitra esculenta "
        "(a lookalike of Morchella esculenta) and the poisonous Amanita muscaria (20%)."
    )


def test_psychoactive_comes_after_poisonous(predictor):
    r = predictor.answer(
        probs(Psilocybe_cubensis=0.5, Amanita_pantherina=0.3, Boletus_edulis=0.15), fungus_score=0.9, top_k=3
    )
    # Galerina marginata and Conocybe filaris: known confusions of the genus Psilocybe
    assert [(w["species"], w["edibility"]) for w in danger(r)] == [
        ("Galerina marginata", "deadly"),
        ("Amanita pantherina", "poisonous"),
        ("Conocybe filaris", "poisonous"),
        ("Psilocybe cubensis", "psychoactive"),
    ]


# ---- the summary sentence -------------------------------------------------------------------------


def test_summary_none_when_no_danger_is_in_play(predictor):
    r = predictor.answer(
        probs(Agaricus_benesii=0.9, Cantharellus_cibarius=0.05, Boletus_edulis=0.03), fungus_score=0.9, top_k=3
    )
    assert danger(r) == [] and r["summary"] == ""
    assert r["message"] == "Most likely Agaricus benesii — edibility unknown — 90%."
    # no dangerous species is possible; the red panel only names dangerous lookalikes of the guesses
    assert all(d["reason"].startswith("looks like") for d in r["danger_panel"])
    not_fungus = predictor.answer(probs(Amanita_phalloides=0.9), fungus_score=0.01)
    assert not_fungus["summary"] == "" and not_fungus["candidates"] == []


def test_summary_singular(predictor):
    # the false morel's lookalikes are all morels (not dangerous: Morchella semilibera's "allergic" is
    # no longer read as poisonous)
    r = predictor.answer(
        probs(Gyromitra_esculenta=0.8, Boletus_edulis=0.1, Agaricus_benesii=0.05), fungus_score=0.9, top_k=3
    )
    assert r["summary"] == "1 deadly species is possible for this photo: Gyromitra esculenta (80%)."
    assert r["message"] == "Most likely Gyromitra esculenta — DEADLY POISONOUS — 80%."


def test_summary_names_a_known_confusion_of_the_top(predictor):
    r = predictor.answer(
        probs(Psilocybe_cubensis=0.8, Boletus_edulis=0.1, Agaricus_benesii=0.05), fungus_score=0.9, top_k=3
    )
    assert r["summary"] == (
        "1 deadly, 1 poisonous and 1 psychoactive species are possible for this photo, among them the deadly "
        "Galerina marginata (a lookalike of Psilocybe cubensis) and the psychoactive Psilocybe cubensis (80%)."
    )
    (galerina,) = [w for w in danger(r) if w["species"] == "Galerina marginata"]
    assert galerina["lookalike_kind"] == "known_confusion"
    assert galerina["reason"].startswith("known confusion: small brown mushrooms")
    assert galerina["message"] == (
        "Galerina marginata (DEADLY POISONOUS) can be confused with Psilocybe cubensis, the most likely species "
        "(a known confusion: Wikipedia: Galerina marginata (similar species))."
    )
    assert r["message"] == "Most likely Psilocybe cubensis — psychoactive / toxic — 80%."


def test_summary_counts_every_level(predictor):
    p = probs(
        Amanita_muscaria=0.55,
        Amanita_phalloides=0.2,
        Amanita_virosa=0.1,
        Psilocybe_cubensis=0.08,
        Amanita_pantherina=0.05,
    )
    r = predictor.answer(p, fungus_score=0.9, top_k=5)
    # 2 deadly candidates; muscaria, pantherina (candidates) + gemmata (lookalike); 1 psychoactive
    assert species(danger(r)) == [
        "Amanita phalloides",
        "Amanita virosa",
        "Amanita muscaria",
        "Amanita pantherina",
        "Amanita gemmata",
        "Psilocybe cubensis",
    ]
    assert r["summary"] == (
        "2 deadly, 3 poisonous and 1 psychoactive species are possible for this photo, among them the deadly "
        "Amanita phalloides (20%) and the poisonous Amanita muscaria (55%)."
    )


def test_summary_names_one_species_when_the_deadliest_is_the_likeliest(predictor):
    r = predictor.answer(
        probs(Amanita_phalloides=0.6, Amanita_virosa=0.3, Boletus_edulis=0.05), fungus_score=0.9, top_k=3
    )
    # A. citrina, Tricholoma equestre (curated) and A. strobiliformis are poisonous lookalikes of the death cap
    assert species(danger(r)) == [
        "Amanita phalloides",
        "Amanita virosa",
        "Amanita citrina",
        "Tricholoma equestre",
        "Amanita strobiliformis",
    ]
    assert r["summary"] == (
        "2 deadly and 3 poisonous species are possible for this photo, among them the deadly Amanita phalloides (60%)."
    )
    assert r["message"] == "Most likely Amanita phalloides — DEADLY POISONOUS — 60%."


def test_summary_by_hand_with_many_species():
    """The sentence from hand-built warnings: 2 deadly and 11 poisonous."""

    def w(name, status, p):
        return {"kind": "toxic_candidate", "species": name, "edibility": status, "probability": p, "via": ["candidate"]}

    warnings = [w("Amanita phalloides", "deadly", 0.04), w("Amanita virosa", "deadly", 0.01)]
    warnings += [w(f"Poison {i}", "poisonous", 0.3 - i / 100) for i in range(11)]
    warnings += [{"kind": "lookalike", "species": "Amanita excelsa", "edibility": "inedible", "message": "m"}]
    assert danger_summary(warnings) == (
        "2 deadly and 11 poisonous species are possible for this photo, among them the deadly "
        "Amanita phalloides (4%) and the poisonous Poison 0 (30%)."
    )
    assert danger_summary(warnings[:2]) == (
        "2 deadly species are possible for this photo, among them the deadly Amanita phalloides (4%)."
    )
    assert danger_summary(warnings[1:2]) == "1 deadly species is possible for this photo: Amanita virosa (1%)."
    assert danger_summary(warnings[-1:]) == "" and danger_summary([]) == ""


def test_species_warnings_without_probabilities(catalog):
    """The pure function alone: no probabilities -> order by danger, then the order given."""
    ws = species_warnings(["Amanita muscaria", "Amanita phalloides"], catalog, "Amanita muscaria")
    assert [(w["species"], w["via"]) for w in ws if w["kind"] == "toxic_candidate"] == [
        ("Amanita phalloides", ["candidate"]),
        ("Amanita muscaria", ["candidate"]),
        ("Amanita gemmata", ["lookalike"]),
        ("Amanita pantherina", ["lookalike"]),
    ]


# ---- the headline ---------------------------------------------------------------------------------


def test_headline_names_the_danger_of_the_most_likely_species(predictor):
    r = predictor.answer(probs(Amanita_muscaria=0.71, Boletus_edulis=0.2), fungus_score=0.9)
    assert r["message"] == "Most likely Amanita muscaria — POISONOUS — 71%."
    assert EDIBILITY_TEXT["poisonous"] in r["message"]

    unsure = predictor.answer(probs(Amanita_muscaria=0.3, Boletus_edulis=0.25, Cantharellus_cibarius=0.2), 0.9)
    assert unsure["genus_answer"] is None and not unsure["confident"]
    assert unsure["message"].startswith("Not confident: the best guess, Amanita muscaria — POISONOUS — has only 30%.")
    assert "may not be one of the species" in unsure["message"]

    genus = predictor.answer(probs(Amanita_phalloides=0.35, Amanita_virosa=0.3), fungus_score=0.9)
    assert genus["genus_answer"]["name"] == "Amanita sp."
    assert genus["message"].endswith(
        "answering at genus level, Amanita sp. The best guess, Amanita phalloides — DEADLY POISONOUS — has 35%."
    )

    edible_unsure = predictor.answer(probs(Boletus_edulis=0.3, Cantharellus_cibarius=0.25), fungus_score=0.9)
    assert edible_unsure["message"].startswith("Not confident: the best guess, Boletus edulis, has only 30%.")

    blusher = predictor.answer(probs(Amanita_rubescens=0.8), fungus_score=0.9)
    assert blusher["message"] == "Most likely Amanita rubescens (80%)."


def _random_results(predictor, n=60):
    rng = np.random.default_rng(0)
    for i in range(n):
        p = rng.dirichlet(np.full(len(LABELS), 0.3 if i % 2 else 2.0))
        yield predictor.answer(p, fungus_score=0.9 if i % 7 else 0.01, top_k=1 + i % 5)


def test_never_safe_to_eat_and_never_edible_unqualified(predictor):
    for r in _random_results(predictor):
        text = (json.dumps(r, ensure_ascii=False) + answer_html(r) + "\n".join(text_lines(r))).lower()
        for phrase in BANNED_PHRASES:
            assert phrase not in text
        for sentence in (r["message"], r["summary"]):
            # "edible" only inside "inedible" or with the catalog's caveat
            assert not re.search(r"(?<!in)edible(?! \(per sources)", sentence), sentence


def test_invariants_on_random_answers(predictor, catalog):
    for r in _random_results(predictor):
        assert isinstance(r["summary"], str)
        if not r["is_fungus"]:
            assert r["summary"] == ""
            continue
        toxic = danger(r)
        assert len(species(toxic)) == len(set(species(toxic)))
        assert r["warnings"][: len(toxic)] == toxic  # the dangers come first
        keys = [
            (danger_rank(w["edibility"]), -(w["probability"] if w["probability"] is not None else -1)) for w in toxic
        ]
        assert keys == sorted(keys)
        plausible = set(species(r["candidates"])) | set(r["prediction_set"]["species"])
        top = r["candidates"][0]["species"]
        expected = {n for n in plausible if catalog.edibility(n) in DANGEROUS}
        expected |= {s.name for s in catalog.lookalikes(top) if s.edibility in DANGEROUS}
        assert set(species(toxic)) == expected
        assert not any(w["kind"] == "lookalike" and w["edibility"] in DANGEROUS for w in r["warnings"])
        assert bool(r["summary"]) == bool(toxic)
        if toxic:
            counted = {s: sum(w["edibility"] == s for w in toxic) for s in ("deadly", "poisonous", "psychoactive")}
            for status, count in counted.items():
                assert (f"{count} {status}" in r["summary"]) == (count > 0)
            assert toxic[0]["species"] in r["summary"]
        if r["candidates"][0]["edibility"] in DANGEROUS:
            assert EDIBILITY_TEXT[r["candidates"][0]["edibility"]] in r["message"]


def test_observation_results_have_the_summary(predictor):
    from PIL import Image

    photos = [Image.new("RGB", (40, 40), c) for c in ("red", "white")]
    r = predictor.predict_observation(photos)
    assert r["photos"] == 2 and isinstance(r["summary"], str)
    assert bool(r["summary"]) == bool(danger(r))


# ---- lookalikes by trait ("similar features") -----------------------------------------------------


class TableTraits:
    """A stand-in for the trait table (mushroom_id.core.traits.Traits): ``of(species)`` -> trait ->
    frozenset of values, empty for unknown."""

    def __init__(self, table: dict[str, dict[str, str]]):
        self.table = table

    def of(self, species: str) -> dict[str, frozenset[str]]:
        row = self.table.get(species, {})
        return {k: frozenset(v.split(";")) if v else frozenset() for k, v in row.items()}


BRITTLEGILL = {"hymenium": "gills", "stipe": "bare", "spore_print": "white-cream", "ecology": "mycorrhizal"}
TRAIT_TABLE = TableTraits(
    {
        "Russula virescens": {**BRITTLEGILL, "cap_shape": "convex;flat"},
        "Russula emetica": {**BRITTLEGILL, "cap_shape": "convex"},  # poisonous, same profile, cap shared
        "Tricholoma equestre": {**BRITTLEGILL, "cap_shape": "umbonate"},  # poisonous, same profile
        "Lepiota brunneoincarnata": {**BRITTLEGILL},  # deadly, same profile: ranks first
        "Clitocybe rivulosa": {**BRITTLEGILL, "ecology": "saprotrophic"},  # deadly, other ecology: not similar
        "Inosperma erubescens": {**BRITTLEGILL, "spore_print": "brown"},  # deadly, other spore print
        "Cortinarius rubellus": {**BRITTLEGILL, "spore_print": ""},  # unknown spore colour: never "similar"
        "Boletus edulis": {**BRITTLEGILL, "hymenium": "pores"},
        "Agaricus benesii": {**BRITTLEGILL, "stipe": ""},  # its own profile not fully known
    }
)


def test_similar_features_share_the_whole_visible_profile(catalog):
    from mushroom_id.core.safety import similar_features

    found = similar_features("Russula virescens", catalog, TRAIT_TABLE, limit=5)
    assert [name for name, _ in found] == ["Lepiota brunneoincarnata", "Russula emetica", "Tricholoma equestre"]
    assert found[0][1] == ["gills", "neither ring nor cup", "spore print white to cream", "mycorrhizal"]
    assert similar_features("Russula virescens", catalog, TRAIT_TABLE, limit=1) == found[:1]
    assert similar_features("Agaricus benesii", catalog, TRAIT_TABLE) == []  # unknown is never similar
    assert similar_features("Boletus edulis", catalog, TRAIT_TABLE) == []


def test_similar_features_are_labelled_apart_from_known_confusions(catalog):
    shares = {"Russula virescens": 0.9, "Russula emetica": 0.05}
    ws = species_warnings(["Russula virescens", "Russula emetica"], catalog, "Russula virescens", shares, TRAIT_TABLE)
    # the death cap is a documented confusion of the green brittlegill: a danger in play, with its source
    (phalloides,) = [w for w in ws if w["species"] == "Amanita phalloides"]
    assert phalloides["kind"] == "toxic_candidate" and phalloides["via"] == ["lookalike"]
    assert phalloides["lookalike_kind"] == "known_confusion"
    assert (
        phalloides["reason"].startswith("known confusion: green caps")
        and "Wikipedia: Amanita phalloides" in (phalloides["reason"])
    )
    similar = [w for w in ws if w.get("lookalike_kind") == "similar_features"]
    # Russula emetica shares the profile too, but it is plausible: warned once, as a candidate
    assert species(similar) == ["Lepiota brunneoincarnata", "Tricholoma equestre"]
    for w in similar:
        assert w["kind"] == "lookalike"  # a notice: computed from traits, not a danger in play
        assert w["reason"] == "similar features: gills; neither ring nor cup; spore print white to cream; mycorrhizal"
        assert "similar features, not a known confusion" in w["message"]
    # the summary counts the dangers in play only: the known confusion and the plausible Russula emetica
    assert danger_summary(ws, "Russula virescens").startswith("1 deadly and 1 poisonous species are possible")
    # without a trait table only the documented confusions are named
    plain = species_warnings(["Russula virescens"], catalog, "Russula virescens")
    assert not [w for w in plain if w.get("lookalike_kind") == "similar_features"]


def test_candidate_lookalikes_say_why(predictor):
    r = predictor.answer(probs(Morchella_esculenta=0.8, Boletus_edulis=0.1), fungus_score=0.9, top_k=3)
    (morel,) = [c for c in r["candidates"] if c["species"] == "Morchella esculenta"]
    (false_morel,) = [look for look in morel["lookalikes"] if look["species"] == "Gyromitra esculenta"]
    reason = false_morel["reason"]
    assert reason.startswith("known confusion: spring 'morels'") and "Wild Food UK: Morel" in reason


def test_similar_features_from_the_shipped_trait_table(catalog):
    from mushroom_id.core.safety import similar_features
    from mushroom_id.core.traits import default_traits

    traits = default_traits()
    # the funeral bell shares the sheathed woodtuft's gills, ring, brown spores and life on wood debris
    woodtuft = similar_features("Kuehneromyces mutabilis", catalog, traits)
    assert woodtuft[0] == ("Galerina marginata", ["gills", "a ring", "spore print brown, ochre or rusty", "on wood"])
    ws = species_warnings(["Kuehneromyces mutabilis"], catalog, "Kuehneromyces mutabilis", None, traits)
    galerina = [w for w in ws if w["species"] == "Galerina marginata"]
    # warned once, as the known confusion it is (Wild Food UK), not again as "similar features"
    assert [(w["kind"], w["lookalike_kind"]) for w in galerina] == [("toxic_candidate", "known_confusion")]
    similar = [w for w in ws if w.get("lookalike_kind") == "similar_features"]
    assert similar and all(w["kind"] == "lookalike" and w["edibility"] in DANGEROUS for w in similar)
    assert similar_features("Cantharellus cibarius", catalog, traits) == []  # no dangerous species has ridges
