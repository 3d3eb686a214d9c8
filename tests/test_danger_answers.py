"""Issue 28, part 2: the danger profiles as written rules over answers, the red panel after answers
(a dangerous guess close to the top, the lookalikes of a guess the answers leave weak), the union rule,
and the evaluation's simulation of the app's question flow."""

from __future__ import annotations

import numpy as np
import pytest

from mushroom_id.core import danger
from mushroom_id.core.catalog import DANGEROUS, default_catalog
from mushroom_id.core.danger import danger_panel, danger_profiles, profile_matches, unnamed_dangers
from mushroom_id.core.questions import QUESTIONS
from mushroom_id.core.safety import Thresholds, answer
from mushroom_id.engine import danger_eval

CATALOG = default_catalog()
PROFILES = {p.key: p for p in danger_profiles()}


def fitted(answers: dict[str, str]) -> set[str]:
    return {p.key for p, _ in profile_matches(answers)}


# ---------------------------------------------------------------- the profiles, one written case each

# (profile, answers a person with that mushroom in hand gives, an answer that contradicts it)
CASES = [
    (
        "small_lepiota",
        {"hymenium": "gills", "gill_attachment": "free", "stipe": "ring", "cap_size": "small"},
        ("cap_size", "large"),  # a parasol-sized cap is not a small Lepiota
    ),
    (
        "false_morel",
        {"hymenium": "smooth", "stipe": "bare", "ecology": "soil_trees"},
        ("hymenium", "pores"),
    ),
    (
        "sickener",
        {"hymenium": "gills", "stipe": "bare", "cap_colour": "red-pink", "ecology": "soil_trees"},
        ("stipe", "ring_and_volva"),  # a red cap with a ring and a cup is the fly agaric's, not a Russula's
    ),
    (
        "fools_funnel",
        {"hymenium": "gills", "ecology": "soil_open", "cap_colour": "white-cream", "gill_attachment": "decurrent"},
        ("ecology", "wood"),
    ),
    (
        "sulphur_tuft",
        {"hymenium": "gills", "ecology": "wood", "gill_colour": "green-blue"},
        ("gill_colour", "white-cream"),
    ),
    (
        "rollrim",
        {"hymenium": "gills", "gill_attachment": "decurrent", "bruising": "changes", "cap_colour": "brown"},
        ("bruising", "no_change"),
    ),
    (
        "galerina",  # without the spore print, which the app asks after the instant questions
        {"hymenium": "gills", "stipe": "ring", "ecology": "wood", "cap_size": "small"},
        ("cap_size", "large"),  # honey fungus is larger; the funeral bell is small
    ),
]


def test_every_profile_has_a_written_case():
    assert {k for k, _, _ in CASES} <= set(PROFILES)
    assert len(PROFILES) >= 12  # the six of the first version and the new genus-level groups


@pytest.mark.parametrize(("key", "answers", "against"), CASES, ids=[c[0] for c in CASES])
def test_a_profile_fits_answers_that_fit_it_and_not_answers_that_contradict_it(key, answers, against):
    assert key in fitted(answers)
    contradicted = {**answers, against[0]: against[1]}
    assert key not in fitted(contradicted)
    # fewer answers than the profile needs do not fit it either (one answer is never enough for these)
    first = next(iter(answers))
    assert key not in fitted({first: answers[first]})


@pytest.mark.parametrize("key", sorted(PROFILES))
def test_every_profile_fits_its_own_values_and_no_contradicting_value(key):
    """Generic over the table: the first value of every condition fits; any other offered value of any
    condition contradicts it; "not sure" (no answer) neither fits nor contradicts."""
    p = PROFILES[key]
    own = {k: sorted(v)[0] for k, v in p.conditions.items()}
    assert key in fitted(own)
    for k, values in p.conditions.items():
        for other in (o.value for o in QUESTIONS[k].shown if o.value not in values):
            assert key not in fitted({**own, k: other}), (k, other)
    missing = dict(own)
    for k in p.needs:
        missing.pop(k)
    assert key not in fitted(missing)


def test_profile_members_are_dangerous_per_a_specific_source_and_named_by_the_red_panel():
    for p in PROFILES.values():
        assert all(CATALOG.edibility(m) in DANGEROUS and CATALOG.danger_is_specific(m) for m in p.members), p.key
        assert p.source and p.url.startswith("https://"), p.key
    # "inedible" (allergic, not recommended) and "unknown" are not dangers: no profile names them in red
    assert DANGEROUS == {"deadly", "poisonous", "psychoactive"}


# ---------------------------------------------------------------- the red panel after answers

GUESS = "Boletus edulis"


def _result(candidates, answers, warnings=(), lookalikes=()):
    cands = [
        {"species": n, "probability": p, "edibility": CATALOG.edibility(n), "lookalikes": []} for n, p in candidates
    ]
    cands[0]["lookalikes"] = [{"species": n, "edibility": CATALOG.edibility(n), "reason": ""} for n in lookalikes]
    warns = [
        {"kind": "toxic_candidate", "species": n, "edibility": CATALOG.edibility(n), "probability": p}
        for n, p in warnings
    ]
    return {"candidates": cands, "warnings": warns, "answers": answers, "danger_profiles": []}


def test_after_answers_a_dangerous_second_guess_is_named_below_the_share():
    assert CATALOG.edibility("Rubroboletus satanas") in DANGEROUS
    cands = [(GUESS, 0.5), ("Rubroboletus satanas", 0.08), ("Cantharellus cibarius", 0.05)]
    warns = [("Rubroboletus satanas", 0.08)]
    photo = _result(cands, {}, warns)
    assert danger_panel(photo, 0.2) == []  # the photo alone: 8% is below the share
    after = _result(cands, {"hymenium": "pores"}, warns)
    assert danger.ANSWERED_GUESSES >= 2
    (item,) = danger_panel(after, 0.2)
    assert item["species"] == "Rubroboletus satanas" and item["reason"] == "guess 2 after your answers"
    # a third guess is not (ANSWERED_GUESSES is 2), nor is a species only the original list calls "toxic"
    third = _result([(GUESS, 0.5), ("Cantharellus cibarius", 0.1), ("Rubroboletus satanas", 0.08)], {"x": "y"}, warns)
    if danger.ANSWERED_GUESSES == 2:
        assert danger_panel(third, 0.2) == []


def test_after_answers_the_lookalikes_of_a_weak_guess_go_to_the_details_not_away():
    look = "Rubroboletus satanas"
    weak = _result([(GUESS, 0.3), ("Cantharellus cibarius", 0.1)], {"hymenium": "pores"}, [(look, 0.01)], [look])
    strong = _result([(GUESS, 0.6), ("Cantharellus cibarius", 0.1)], {"hymenium": "pores"}, [(look, 0.01)], [look])
    photo = _result([(GUESS, 0.3), ("Cantharellus cibarius", 0.1)], {}, [(look, 0.01)], [look])
    assert 0.3 < danger.ANSWERED_LOOKALIKE_SHARE <= 0.6
    assert [d["species"] for d in danger_panel(photo, 0.2)] == [look]  # photo only: the rule as before
    assert [d["species"] for d in danger_panel(strong, 0.2)] == [look]
    weak["danger_panel"] = danger_panel(weak, 0.2)
    assert weak["danger_panel"] == []
    assert look in {w["species"] for w in unnamed_dangers(weak)}  # on the page, in the details


LABELS = [
    "Amanita phalloides",
    "Amanita muscaria",
    "Agaricus campestris",
    "Boletus edulis",
    "Rubroboletus satanas",
    "Cantharellus cibarius",
    "Omphalotus olearius",
    "Galerina marginata",
    "Kuehneromyces mutabilis",
    "Gyromitra esculenta",
    "Morchella esculenta",
    "Hypholoma fasciculare",
    "Lepiota brunneoincarnata",
    "Macrolepiota procera",
    "Russula emetica",
    "Paxillus involutus",
    "Trametes versicolor",
]


@pytest.mark.parametrize("seed", range(30))
def test_the_union_rule_an_answer_never_hides_a_danger_the_photo_raised(seed):
    from mushroom_id.core.questions import FieldEvidence
    from mushroom_id.core.traits import default_traits

    rng = np.random.default_rng(seed)
    field = FieldEvidence.for_labels(LABELS, default_traits(), CATALOG.resolve, mismatch=0.1)
    p = rng.dirichlet(np.full(len(LABELS), 0.3))
    t = Thresholds(confident=1.0, genus=1.0, conformal_qhat=0.99, conformal_coverage=0.7, danger_share=0.2)
    model = {"id": "test", "num_species": len(LABELS)}
    photo = answer(p, 0.9, LABELS, CATALOG, t, model, field=field)
    keys = rng.choice(list(QUESTIONS), size=3, replace=False)
    answers = {str(k): str(rng.choice([o.value for o in QUESTIONS[str(k)].shown])) for k in keys}
    r = answer(p, 0.9, LABELS, CATALOG, t, model, field=field, answers=answers)
    assert danger_eval.photo_dangers(photo) <= danger_eval.shown_dangers(r), answers


# ---------------------------------------------------------------- the evaluation's flow


def test_the_flow_answers_the_first_offered_question_re_ranks_and_skips_what_it_cannot_answer():
    calls = []

    def refine(p, answers, skip):  # a page that offers the questions in a fixed order, minus the done ones
        calls.append((dict(answers), list(skip)))
        order = [k for k in ("hymenium", "ecology", "stipe", "cap_colour") if k not in answers and k not in skip]
        return {"questions": [{"key": k} for k in order], "warnings": [], "danger_panel": []}

    person = {"hymenium": "gills", "ecology": None, "stipe": "ring", "cap_colour": "brown"}
    answers, skipped, _ = danger_eval.app_flow(refine, np.ones(1), person)
    assert answers == {"hymenium": "gills", "stipe": "ring"} and skipped == ["ecology"]  # 3 questions asked
    assert len(calls) == 4 and calls[1] == ({"hymenium": "gills"}, [])  # re-ranked after every answer
    answers, skipped, _ = danger_eval.fixed_flow(refine, np.ones(1), person)
    assert answers == {"hymenium": "gills", "stipe": "ring"} and skipped == ["spore_print"]


def test_the_evaluation_fails_when_an_answer_hides_a_danger_the_photo_raised():
    def refine(p, answers, skip):
        hidden = bool(answers)  # a broken page: any answer drops the photo's warning
        warnings = [] if hidden else [{"kind": "toxic_candidate", "species": "Amanita phalloides"}]
        return {"questions": [{"key": "hymenium"}], "warnings": warnings, "danger_panel": []}

    people = [{"hymenium": "gills"}]
    with pytest.raises(AssertionError, match="union rule"):
        danger_eval.outcomes(refine, np.ones((1, 1)), people)
    danger_eval.outcomes(refine, np.ones((1, 1)), None)  # the photo alone is fine
