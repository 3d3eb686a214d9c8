"""Field questions: the trait table against its source, answers parsed and re-weighted by hand-checked
numbers, the next question that separates the candidates, and the safety rule that an answer can add a
danger warning but never hide one the photo raised.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import numpy as np
import pytest
from conftest import hand_made_predictor

from data_prep.traits import WAGNER_NAMES_CSV, build_traits, cap_sizes, read_sources, wagner_traits
from mushroom_id.core.catalog import default_catalog
from mushroom_id.core.questions import (
    DIG_UP_THE_BASE,
    MISSED,
    QUESTIONS,
    FieldEvidence,
    parse_answer_args,
    parse_answers,
)
from mushroom_id.core.traits import (
    RAW_GROUPS,
    SOURCE_FUNGALTRAITS,
    SOURCE_GENUS,
    SOURCE_WAGNER,
    SOURCE_WIKIPEDIA,
    TRAITS_CSV,
    Traits,
    default_traits,
)
from mushroom_id.engine.field_eval import ask_sequence, simulated_answers


@pytest.fixture(scope="module")
def wikipedia_rows(shared_catalog):
    with open(shared_catalog / "edibility_wikipedia.csv", newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def _wiki(rows, name):
    return next(r for r in rows if r["scientific name"] == name.lower())


# ----------------------------------------------------------------------------- the trait table


def test_committed_trait_table_is_the_builders_output(shared_catalog):
    rows, report = build_traits(default_catalog(), **read_sources(shared_catalog))
    with open(TRAITS_CSV, newline="", encoding="utf-8") as f:
        committed = list(csv.DictReader(f))
    assert committed == [{k: str(v) for k, v in r.items()} for r in rows]
    assert {r["name"] for r in committed} == set(default_catalog().names)
    assert {r["source"] for r in committed} - {""} == {
        SOURCE_WIKIPEDIA,
        SOURCE_GENUS,
        SOURCE_WAGNER,
        SOURCE_FUNGALTRAITS,
    }
    assert report["species with a Wagner 2021 entry"] > 120


def test_traits_read_every_value_of_the_source(wikipedia_rows):
    traits = default_traits()
    ph = _wiki(wikipedia_rows, "Amanita phalloides")
    assert ph["stipe type"] == "ring and volva" and ph["cap shape"] == "convex, flat"
    assert traits.by_source("Amanita phalloides", "stipe")[SOURCE_WIKIPEDIA] == {"ring_and_volva"}
    assert "ring_and_volva" in traits.of("Amanita phalloides")["stipe"]
    assert traits.of("Amanita phalloides")["cap_shape"] == {"convex", "flat"}
    assert traits.of("Amanita phalloides")["stem_base"] == {"cup"}  # the volva is a cup at the base
    assert SOURCE_WIKIPEDIA in traits.value("Amanita phalloides", "stipe").sources
    assert _wiki(wikipedia_rows, "Boletus edulis")["hymenium type"] == "pores"
    assert traits.of("Boletus edulis")["hymenium"] == {"pores"}
    # Chlorophyllum molybdites is the green-spored one: its own group, not "white"
    assert _wiki(wikipedia_rows, "Chlorophyllum molybdites")["spore color"] == "green"
    assert traits.of("Chlorophyllum molybdites")["spore_print"] == {"green"}
    # every raw word of the source is either grouped or knowingly left out
    for trait, column in (("hymenium", "hymenium type"), ("stipe", "stipe type"), ("ecology", "ecological type")):
        words = {w.strip() for r in wikipedia_rows for w in r[column].split(",") if w.strip()}
        assert words <= set(RAW_GROUPS[trait]), words - set(RAW_GROUPS[trait])


def test_wagner_rows_are_read_by_their_codes(shared_catalog):
    with open(shared_catalog / "traits_wagner2021_primary.csv", newline="", encoding="utf-8") as f:
        rows = {r["name"]: r for r in csv.DictReader(f, delimiter=";")}
    fly = rows["Fly Agaric"]
    assert fly["cap-color"] == "[e, o]" and fly["cap-diameter"] == "[10, 20]" and fly["season"] == "[u, a, w]"
    got = wagner_traits(fly)
    assert got["cap_colour"] == ("red-pink", "yellow-orange")
    assert got["cap_size"] == ("large",)  # 10-20 cm
    assert got["season"] == ("summer", "autumn", "winter")
    assert got["gill_attachment"] == ("free",) and got["hymenium"] == ("gills",)
    assert got["ecology"] == ("wood", "litter", "soil_trees")  # "woods": in woodland, not on wood
    assert cap_sizes("[3, 7]") == ("small", "medium") and cap_sizes("[12]") == ("medium", "large")
    traits = default_traits()
    assert traits.by_source("Amanita muscaria", "cap_colour")[SOURCE_WAGNER] == {"red-pink", "yellow-orange"}


def test_wagner_names_resolve_and_their_edibility_agrees_or_is_listed(shared_catalog):
    """Wagner's book names are common names: the mapping is data, checked here."""
    catalog = default_catalog()
    with open(WAGNER_NAMES_CSV, newline="", encoding="utf-8") as f:
        names = list(csv.DictReader(f))
    with open(shared_catalog / "traits_wagner2021_primary.csv", newline="", encoding="utf-8") as f:
        wagner = {r["name"]: r for r in csv.DictReader(f, delimiter=";")}
    assert sorted(n["wagner_name"] for n in names) == sorted(wagner)  # every book name once
    mapped = [n for n in names if n["species"]]
    assert len(mapped) > 140
    for n in mapped:
        accepted = catalog.resolve(n["species"])
        if n["note"].startswith("not a catalog species"):
            assert accepted is None, n
            continue
        assert accepted, n
        edible = catalog.edibility(accepted) in ("edible", "choice")
        if (wagner[n["wagner_name"]]["class"] == "e") != edible:
            assert "edibility differs" in n["note"], n
    # the catalog's common name is used where it means the same species, and a clash is written down
    assert next(n for n in names if n["wagner_name"] == "Death Cap")["species"] == "Amanita phalloides"
    assert "Russula adusta" in next(n for n in names if n["wagner_name"] == "Blackening Russula")["note"]


def test_sources_combine_by_the_written_rule():
    rows = [
        # two own entries disagree: both accepted
        {"name": "A a", "trait": "stipe", "source": SOURCE_WIKIPEDIA, "values": "ring"},
        {"name": "A a", "trait": "stipe", "source": SOURCE_WAGNER, "values": "bare"},
        # a vague own word ("saprotrophic": any dead matter) narrowed by a genus value consistent with it
        {"name": "A a", "trait": "ecology", "source": SOURCE_WIKIPEDIA, "values": "wood; litter; soil_trees"},
        {"name": "A a", "trait": "ecology", "source": SOURCE_FUNGALTRAITS, "values": "wood"},
        # an own value beats a genus value that contradicts it
        {"name": "A a", "trait": "hymenium", "source": SOURCE_WIKIPEDIA, "values": "ridges"},
        {"name": "A a", "trait": "hymenium", "source": SOURCE_FUNGALTRAITS, "values": "gills"},
        # a genus value where nothing else knows, and a spore print only Wikipedia knows
        {"name": "B b", "trait": "ecology", "source": SOURCE_FUNGALTRAITS, "values": "litter"},
        {"name": "B b", "trait": "spore_print", "source": SOURCE_GENUS, "values": "white-cream"},
    ]
    t = Traits(rows)
    assert t.of("A a")["stipe"] == {"ring", "bare"}
    assert t.value("A a", "stipe").sources == (SOURCE_WIKIPEDIA, SOURCE_WAGNER)
    assert t.of("A a")["ecology"] == {"wood"}
    assert t.of("A a")["hymenium"] == {"ridges"} and t.value("A a", "hymenium").sources == (SOURCE_WIKIPEDIA,)
    assert t.of("B b")["ecology"] == {"litter"} and t.of("B b")["season"] == frozenset()
    # held out: Wikipedia takes its genus inference with it
    held = t.without("wikipedia")
    assert held.of("A a")["stipe"] == {"bare"} and held.of("A a")["hymenium"] == {"gills"}
    assert held.of("B b")["spore_print"] == frozenset() and held.of("B b")["ecology"] == {"litter"}
    with pytest.raises(ValueError, match="unknown trait source"):
        Traits(rows, exclude=["wiki"])


def test_on_wood_separates_the_oyster_from_the_clouded_agaric():
    """Truthful answers for an oyster mushroom must not make Clitocybe nebularis (poisonous, on the ground)
    the top name: "on wood" means wood, not any saprotroph."""
    traits = default_traits()
    assert traits.of("Pleurotus ostreatus")["ecology"] == {"wood"}
    assert "wood" not in traits.of("Clitocybe nebularis")["ecology"]
    field = FieldEvidence.for_labels(["Clitocybe nebularis", "Pleurotus ostreatus"], traits, mismatch=0.05)
    photo = np.array([0.7, 0.3])  # the photo prefers the clouded agaric
    oyster = {"ecology": "wood", "stipe": "bare", "spore_print": "white-cream", "gill_attachment": "decurrent"}
    after = field.reweight(photo, oyster)
    assert after.argmax() == 1 and after[1] > 0.85
    assert field.reweight(photo, {"ecology": "wood"})[1] > 0.85  # "on wood" alone settles it


def test_genus_values_are_inferred_only_when_the_genus_agrees(wikipedia_rows):
    traits = default_traits()
    catalog = default_catalog()

    def genus_values(genus, column):
        return {r[column] for r in wikipedia_rows if r["scientific name"].split()[0] == genus.lower()}

    inferred = [
        (sp.name, t)
        for sp in catalog
        for t in ("hymenium", "stipe")
        if traits.value(sp.name, t).sources[:1] == (SOURCE_GENUS,)
    ]
    assert inferred, "some species get a genus value"
    for name, trait in inferred[:40]:
        column = {"hymenium": "hymenium type", "stipe": "stipe type"}[trait]
        raw = genus_values(name.split()[0], column)
        assert len(raw) == 1, (name, trait, raw)  # every entry of the genus says the same
    # Amanita's stems differ (ring, volva, ring and volva): an Amanita without an entry stays unknown
    assert len(genus_values("Amanita", "stipe type")) > 1
    no_entry = [sp.name for sp in catalog.species_in_genus("Amanita") if traits.value(sp.name, "stipe").source == ""]
    assert no_entry and all(not traits.of(n)["stipe"] for n in no_entry)


# ----------------------------------------------------------------------------- answers


def test_answers_accept_grouped_names_and_the_sources_words():
    assert parse_answers({"hymenium": "Pores", "stipe": "ring and volva", "spore_print": "cream"}) == {
        "hymenium": "pores",
        "stipe": "ring_and_volva",
        "spore_print": "white-cream",
    }
    assert parse_answers({"stipe": "none", "ecology": "mycorrhizal", "spore_print": "purple-brown"}) == {
        "stipe": "no_stem",
        "ecology": "soil_trees",
        "spore_print": "purple-black",
    }
    assert parse_answers({"ecology": "On wood", "stem_base": "volva", "cap_colour": "orange"}) == {
        "ecology": "wood",
        "stem_base": "cup",
        "cap_colour": "yellow-orange",
    }
    assert parse_answers({"hymenium": "not sure", "stipe": ""}) == {}
    assert parse_answer_args(["hymenium=gills", "spore_print=pink"]) == {"hymenium": "gills", "spore_print": "pink"}


def test_wrong_answers_say_what_is_accepted():
    with pytest.raises(ValueError, match="the questions are: hymenium, stipe"):
        parse_answers({"colour": "red"})
    with pytest.raises(ValueError, match="accepted: gills, pores, teeth"):
        parse_answers({"hymenium": "tubez"})
    with pytest.raises(ValueError, match="question=value"):
        parse_answer_args(["hymenium"])


def _tiny(mismatch=0.2):
    sets = [
        {"hymenium": frozenset({"gills"}), "stipe": frozenset({"ring_and_volva"})},
        {"hymenium": frozenset({"pores"}), "stipe": frozenset({"bare"})},
        {},  # unknown traits
    ]
    return FieldEvidence(["A a", "B b", "C c"], sets, mismatch)


def test_reweight_by_hand():
    field = _tiny(0.2)
    p = np.array([0.5, 0.3, 0.2])
    # "pores": A mismatches (0.2), B matches (1), C unknown -> mean over the known ones (0.2 + 1) / 2 = 0.6
    got = field.reweight(p, {"hymenium": "pores"})
    want = np.array([0.5 * 0.2, 0.3 * 1.0, 0.2 * 0.6])
    np.testing.assert_allclose(got, want / want.sum())
    # "bare" for a ring-and-volva species: a missed feature (volva in the soil), not a contradiction
    assert field.likelihood("stipe", "bare")[0] == MISSED
    assert field.likelihood("stipe", "ring")[1] == 0.2  # B's stem is bare: a ring contradicts it
    # no answer, no change
    np.testing.assert_allclose(field.reweight(p, {}), p)
    assert field.rules_out(0, "hymenium", "pores") and not field.rules_out(2, "hymenium", "pores")


def test_the_next_question_separates_the_candidates():
    catalog = default_catalog()
    labels = ["Amanita phalloides", "Agaricus campestris", "Boletus edulis", "Russula emetica"]
    field = FieldEvidence.for_labels(labels, default_traits(), catalog.resolve)
    assert default_traits().of("Agaricus campestris")["spore_print"].isdisjoint({"white-cream"})
    # a white-spored Amanita against a dark-spored Agaricus: the spore print settles it, but it takes hours:
    # a person who can wait is asked it first, anyone else after the questions answered in seconds
    p = np.array([0.5, 0.5, 0.0, 0.0])
    waiting = field.next_questions(p, {}, "info_gain", can_wait=True)
    spore = next(o for o in waiting if o["key"] == "spore_print")
    assert spore["effort"] == "a few hours" and not spore["instant"]
    white = next(o for o in spore["options"] if o["value"] == "white-cream")
    assert white["keeps"] == 1  # of the two candidates, only the Amanita has a white print
    offers = field.next_questions(p, {}, "info_gain")
    assert waiting.index(spore) < len(offers) - 1  # it separates them as well as anything: asked early
    keys = [o["key"] for o in offers]
    assert keys[-1] == "spore_print" and all(o["instant"] for o in offers[:-1])
    assert offers[0]["key"] in ("stem_base", "stipe", "ecology", "cap_colour")  # the cup, the ring, the ground
    # a bolete against a Russula: pores or gills (the spore print also separates them; ties go to the
    # question asked first in a field guide)
    p = np.array([0.0, 0.0, 0.5, 0.5])
    assert field.next_questions(p, {}, "info_gain")[0]["key"] == "hymenium"
    # the stem question always says to dig up the base
    stem = next(o for o in offers if o["key"] == "stipe")
    assert stem["help"] == DIG_UP_THE_BASE and "volva" in stem["help"]
    # the gill question comes only after "gills"
    assert "gill_attachment" not in [o["key"] for o in offers]
    after = field.next_questions(p, {"hymenium": "gills"}, "info_gain")
    assert "gill_attachment" in [o["key"] for o in after] and "hymenium" not in [o["key"] for o in after]
    # a cup said on the stem question is not asked again at the stem's base; a ring alone leaves it open
    p = np.array([0.5, 0.5, 0.0, 0.0])
    for stipe, base_asked in (("volva", False), ("ring_and_volva", False), ("ring", True), ("bare", True)):
        keys = [o["key"] for o in field.next_questions(p, {"stipe": stipe}, "info_gain")]
        assert ("stem_base" in keys) is base_asked, (stipe, keys)


# ----------------------------------------------------------------------------- safety

LABELS = [
    "Amanita phalloides",  # deadly: gills, ring and volva, white spores, mycorrhizal
    "Amanita virosa",  # deadly
    "Agaricus campestris",  # edible: gills, ring, dark spores
    "Boletus edulis",  # edible: pores
    "Macrolepiota procera",  # edible: gills, ring, white spores
    "Cantharellus cibarius",  # edible: ridges
    "Gyromitra esculenta",  # deadly
    "Morchella esculenta",  # edible
]
THRESHOLDS = {"confident": 0.5, "genus": 0.6, "fungus": 0.05}


@pytest.fixture(scope="module")
def predictor():
    catalog = default_catalog()
    assert [catalog.edibility(n) for n in LABELS[:3]] == ["deadly", "deadly", "edible"]
    return hand_made_predictor(LABELS, THRESHOLDS, catalog)


def _toxic(result) -> set[str]:
    return {w["species"] for w in result["warnings"] if w["kind"] == "toxic_candidate"}


def test_hostile_answers_never_drop_a_deadly_warning_the_photo_raised(predictor):
    p = np.array([0.30, 0.05, 0.40, 0.10, 0.10, 0.02, 0.02, 0.01])
    photo = predictor.refine(p, 0.9, None, top_k=2)  # plausible: the top 2 (no conformal set here)
    assert "Amanita phalloides" in _toxic(photo)  # (and the lookalike Agaricus xanthodermus)
    options = {k: [None] + [o.value for o in q.shown] for k, q in QUESTIONS.items() if q.after is None}
    rng = np.random.default_rng(0)
    sample = [{k: vs[rng.integers(len(vs))] for k, vs in options.items()} for _ in range(250)]
    # the most hostile: every answer contradicts the deadly Amanita
    hostile = {"hymenium": "pores", "stipe": "bare", "spore_print": "brown", "ecology": "wood"}
    hostile |= {"stem_base": "rooting", "cap_colour": "purple", "bruising": "changes", "season": "spring"}
    sample.append(hostile)
    for combo in sample:
        answers = {k: v for k, v in combo.items() if v}
        r = predictor.refine(p, 0.9, answers, top_k=2)
        assert _toxic(photo) <= _toxic(r), (answers, _toxic(photo) - _toxic(r))
        assert r["answers"] == answers
    r = predictor.refine(p, 0.9, hostile, top_k=2)
    assert "Amanita phalloides" not in [c["species"] for c in r["candidates"]]
    kept = next(w for w in r["warnings"] if w["species"] == "Amanita phalloides")
    assert "photo" in kept["via"] and "do not rule it out" in kept["message"]
    assert r["warnings"][0]["edibility"] == "deadly"  # the deadly ones still lead


def test_an_answer_that_contradicts_the_photos_best_guess_says_so(predictor):
    p = np.array([0.45, 0.05, 0.10, 0.20, 0.10, 0.05, 0.03, 0.02])
    r = predictor.refine(p, 0.9, {"hymenium": "pores"})  # 0.45 x 0.2 < 0.20 x 1: the bolete leads
    conflict = [w for w in r["warnings"] if w["kind"] == "answer_conflict"]
    assert len(conflict) == 1
    assert conflict[0]["message"] == (
        "Your answer 'Pores (a sponge of tubes)' rules out the photo's best guess, Amanita phalloides."
    )
    assert r["candidates"][0]["species"] == "Boletus edulis"
    assert "Amanita phalloides" in _toxic(r)
    assert not [
        w for w in predictor.refine(p, 0.9, {"hymenium": "gills"})["warnings"] if w["kind"] == "answer_conflict"
    ]


def test_answers_can_add_a_danger_warning(predictor):
    # the photo favours the edible parasol; a ring AND a volva with white spores lift the death cap
    p = np.array([0.03, 0.005, 0.20, 0.20, 0.50, 0.02, 0.0, 0.045])
    photo = predictor.refine(p, 0.9, None, top_k=2)
    # on the photo alone the death cap is only a known confusion of the parasol (confusions.csv), not a
    # plausible species
    (before,) = [w for w in photo["warnings"] if w["species"] == "Amanita phalloides"]
    assert before["via"] == ["lookalike"]
    r = predictor.refine(p, 0.9, {"stipe": "ring_and_volva", "spore_print": "white"}, top_k=2)
    # parasol 0.5 x 0.2 (its stem has a ring only) = 0.1; death cap 0.03 x 1 x 1; the others <= 0.2 x 0.2 x 0.2
    assert [c["species"] for c in r["candidates"]] == ["Macrolepiota procera", "Amanita phalloides"]
    (after,) = [w for w in r["warnings"] if w["species"] == "Amanita phalloides" and w["kind"] == "toxic_candidate"]
    assert "candidate" in after["via"] and _toxic(photo) <= _toxic(r)


# ----------------------------------------------------------------------------- the real model, the CLI


@pytest.fixture(scope="module")
def embedded():
    from mushroom_id.core.models import load_model
    from mushroom_id.serving.predictor import Predictor

    return Predictor(load_model("embedded"))


def test_predict_with_answers_on_a_real_photo(embedded, photo_of):
    photo = photo_of("Boletus edulis")
    plain = embedded.predict(photo)
    assert plain["answers"] == {} and plain["questions"]
    answered = embedded.predict(photo, answers={"hymenium": "pores", "stipe": "not sure"})
    assert answered["answers"] == {"hymenium": "pores"}
    assert "hymenium" not in [q["key"] for q in answered["questions"]]
    probs, score = embedded.photo_probs([photo])
    assert embedded.refine(probs, score, {"hymenium": "pores"})["candidates"] == answered["candidates"]
    traits = default_traits()
    pores = sum(traits.of(c["species"])["hymenium"] == {"pores"} for c in answered["candidates"])
    assert pores > sum(traits.of(c["species"])["hymenium"] == {"pores"} for c in plain["candidates"]) or pores == 5
    with pytest.raises(ValueError, match="not an answer"):
        embedded.predict(photo, answers={"stipe": "skirt and cup and stuff"})


def test_cli_answers_and_questions(photo_of):
    photo = str(photo_of("Boletus edulis"))
    run = [sys.executable, "-m", "mushroom_id"]
    out = subprocess.run(
        run + ["predict", "--json", "--answer", "hymenium=pores", photo], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout)[photo]["answers"] == {"hymenium": "pores"}
    bad = subprocess.run(run + ["predict", "--answer", "stipe=maybe", photo], capture_output=True, text=True)
    assert bad.returncode == 2 and "accepted: ring, volva" in bad.stderr
    qs = json.loads(subprocess.run(run + ["questions", "--json"], capture_output=True, text=True, check=True).stdout)
    assert [q["key"] for q in qs] == list(QUESTIONS)


# ----------------------------------------------------------------------------- the measurement


def test_simulated_people_and_exact_answers_lift_the_true_species():
    field = _tiny(0.1)
    y = np.array([0, 1, 0, 1] * 25)
    exact = simulated_answers(field, y, noise=0.0)
    assert all(p["hymenium"] == ("gills" if t == 0 else "pores") for p, t in zip(exact, y, strict=True))
    noisy = simulated_answers(field, y, noise=0.5, seed=1)
    wrong = np.mean([p["hymenium"] != e["hymenium"] for p, e in zip(noisy, exact, strict=True)])
    assert 0.3 < wrong < 0.7
    # the photo prefers the wrong species a little; one exact answer fixes it
    probs = np.tile([0.4, 0.4, 0.2], (len(y), 1))
    probs[y == 0] = [0.35, 0.45, 0.2]
    probs[y == 1] = [0.45, 0.35, 0.2]
    run = ask_sequence(field, probs, exact, "info_gain", steps=2)
    assert (run.probs[0].argmax(1) != y).all()
    assert (run.probs[1].argmax(1) == y).all()


def test_traits_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="python -m data_prep traits"):
        Traits.load(tmp_path / "missing.csv")


def test_leave_one_source_out_folds_never_train_on_the_held_out_source_or_its_copies():
    from mushroom_id.engine.loso import folds

    sources = np.array(["inat", "inat", "commons", "commons", "web", "web", "kaggle"])
    species = np.array([0, 1, 0, 1, 0, 2, 3])  # species 2 and 3 have one source each: never tested
    groups = np.array(["g1", "", "g1", "", "g2", "", ""])  # photo 0 and 2 are copies across sources
    plan = {source: (train, test) for source, train, test in folds(sources, species, groups)}
    assert set(plan) == {"inat", "commons", "web"}
    tested = np.zeros(len(sources), dtype=bool)
    for source, (train, test) in plan.items():
        assert not (train & test).any()
        assert set(sources[train]) == set(sources) - {source} or not train[sources == source].any()
        assert not train[sources == source].any()
        tested |= test
    assert tested.tolist() == [True, True, True, True, True, False, False]  # each multi-source photo once
    # the copy of a held-out photo in another source is left out of training too
    assert not plan["inat"][0][2] and not plan["commons"][0][0]
    assert plan["inat"][0][3]


def test_predicted_traits_are_soft_evidence():
    from mushroom_id.engine.loso import trait_evidence, trait_targets

    field = _tiny(0.2)
    assert trait_targets(field, "hymenium", np.array([0, 1, 2])).tolist() == [0, 1, -1]  # gills, pores, unknown
    q = np.zeros((1, 6))
    q[0, 1] = 1.0  # sure it sees pores
    np.testing.assert_allclose(trait_evidence(field, {"hymenium": q})[0], field.likelihood("hymenium", "pores"))


def test_the_spore_print_comes_first_only_for_a_person_who_can_wait():
    field = FieldEvidence(
        ["a", "b", "c"],
        [
            {"spore_print": frozenset({"white-cream"}), "hymenium": frozenset({"gills"})},
            {"spore_print": frozenset({"pink"}), "hymenium": frozenset({"gills"})},
            {"spore_print": frozenset({"brown"}), "hymenium": frozenset({"pores"})},
        ],
    )
    p = np.array([0.4, 0.4, 0.2])
    assert field.ranked_questions(p, {}, "info_gain", can_wait=True)[0] == "spore_print"
    ranked = field.ranked_questions(p, {}, "info_gain")
    assert ranked[0] == "hymenium" and ranked[-1] == "spore_print"
    # effort-weighted gain also asks the quick question first here
    assert field.ranked_questions(p, {}, "gain_per_effort", can_wait=True)[0] == "hymenium"


def test_season_from_the_month_and_hemisphere():
    assert parse_answers({"season": "October"}) == {"season": "autumn"}
    assert parse_answers({"season": "10 south"}) == {"season": "spring"}
    assert parse_answers({"season": "jan"}) == {"season": "winter"}
    assert parse_answers({"season": "July (southern hemisphere)"}) == {"season": "winter"}
    with pytest.raises(ValueError, match="a month"):
        parse_answers({"season": "13"})


def test_not_sure_skips_the_question_and_the_next_one_is_offered():
    """A person who cannot answer (no spore print) is not asked the same question again."""
    from mushroom_id.core.questions import skipped_questions

    assert skipped_questions({"spore_print": "not sure", "hymenium": "gills", "Stipe": "skip"}) == [
        "spore_print",
        "stipe",
    ]
    field = FieldEvidence(
        ["a", "b"],
        [
            {"hymenium": frozenset({"gills"}), "spore_print": frozenset({"white-cream"})},
            {"hymenium": frozenset({"pores"})},
        ],
    )
    p = np.array([0.5, 0.5])
    asked = [q["key"] for q in field.next_questions(p, {}, "info_gain")]
    first = asked[0]
    after = [q["key"] for q in field.next_questions(p, {}, "info_gain", skip=[first])]
    assert first not in after and after[0] == asked[1]


# ----------------------------------------------------------------------------- held-out-source answers


def _two_source_table():
    """Three species, two sources that disagree on one of them (B's stem)."""
    rows = []
    for name, wiki, wagner in (
        ("A a", {"stipe": "ring", "hymenium": "gills"}, {"stipe": "ring", "hymenium": "gills"}),
        ("B b", {"stipe": "bare", "hymenium": "gills"}, {"stipe": "ring", "hymenium": "gills"}),
        ("C c", {"stipe": "bare", "hymenium": "pores"}, {"stipe": "bare", "hymenium": "pores"}),
    ):
        for source, traits in ((SOURCE_WIKIPEDIA, wiki), (SOURCE_WAGNER, wagner)):
            rows += [{"name": name, "trait": t, "source": source, "values": v} for t, v in traits.items()]
    return Traits(rows)


def test_held_out_answers_come_from_one_source_and_reweight_with_the_others():
    from mushroom_id.core.traits import BASES
    from mushroom_id.engine.field_eval import ask_sequence, held_out_answers, two_source_keys

    traits = _two_source_table()
    names = ["A a", "B b", "C c"]
    field = FieldEvidence.for_labels(names, traits, mismatch=0.1)
    fields = {b: FieldEvidence.for_labels(names, traits.without(b), mismatch=0.1) for b in BASES}
    assert set(two_source_keys(traits)) == {"stipe", "hymenium"}
    y = np.array([1] * 200)
    people = held_out_answers(field, traits, names, y, noise=0.0, seed=3)
    stems = {p["stipe"] for p in people}
    assert stems == {("bare", "wikipedia"), ("ring", "wagner2021")}  # B's two sources, each picked
    # Wagner's "ring" for B, judged by the table without Wagner (Wikipedia: bare): a contradiction,
    # where the same-source table (ring or bare) would have called it a fit
    assert fields["wagner2021"].likelihood("stipe", "ring")[1] == 0.1 and field.likelihood("stipe", "ring")[1] == 1
    probs = np.tile([0.2, 0.6, 0.2], (len(y), 1))
    run = ask_sequence(field, probs, people, "fixed:stipe", steps=1, only=("stipe",), fields=fields)
    wagner_said = np.array([p["stipe"][1] == "wagner2021" for p in people])
    # by hand: Wagner's "ring" judged by Wikipedia (A ring, B bare, C bare): 0.6 x 0.1 / (0.2 + 0.06 + 0.02);
    # Wikipedia's "bare" judged by Wagner (A ring, B ring, C bare): a ring may be missed, 0.6 x 0.5 / 0.6
    np.testing.assert_allclose(run.probs[1][wagner_said, 1], 0.06 / 0.28)
    np.testing.assert_allclose(run.probs[1][~wagner_said, 1], 0.5)


def test_mismatch_weights_follow_how_often_the_sources_disagree():
    from mushroom_id.engine.field_eval import source_mismatch_weights

    agree = [
        {"name": f"S{i}", "trait": "hymenium", "source": s, "values": "gills" if i % 2 else "pores"}
        for i in range(40)
        for s in (SOURCE_WIKIPEDIA, SOURCE_WAGNER)
    ]
    # one species in four: Wagner says teeth where Wikipedia says gills or pores
    disagree = [
        dict(r, values="teeth") if r["source"] == SOURCE_WAGNER and int(r["name"][1:]) % 4 == 0 else r for r in agree
    ]
    w_agree = source_mismatch_weights(Traits(agree))["hymenium"]
    w_disagree = source_mismatch_weights(Traits(disagree))["hymenium"]
    assert w_agree == 0.02 and w_disagree > 0.05  # floor when they never disagree; more when they do


def test_the_answer_temperature_is_fitted_to_what_the_answers_know():
    from mushroom_id.engine.field_eval import fit_temperature, temper

    rng = np.random.default_rng(0)
    y = rng.integers(0, 5, 400)
    # an over-confident posterior: 99% on a guess that is right only 60% of the time
    guess = np.where(rng.random(400) < 0.6, y, (y + 1) % 5)
    p = np.full((400, 5), 0.0025)
    p[np.arange(400), guess] = 0.99
    t = fit_temperature([p], y)
    assert t > 1.5
    assert abs(temper(p, t).max(1).mean() - 0.6) < abs(0.99 - 0.6)
    assert fit_temperature([temper(p, 4.0)], y) < t  # already softened: less to do
