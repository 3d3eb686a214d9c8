"""Safety decisions as pure functions: prediction sets, genus fallback, confidence, warnings.

Nothing here says a mushroom is safe to eat. Edibility always comes from the catalog;
an unknown status is reported as unknown and treated as not known to be edible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from mushroom_id.core.answer_text import genus_words
from mushroom_id.core.catalog import DANGEROUS, Catalog
from mushroom_id.core.danger import danger_panel, profile_matches
from mushroom_id.core.questions import FieldEvidence, describe
from mushroom_id.core.result import Candidate, GenusAnswer, ModelInfo, Result, Warning, notice
from mushroom_id.core.words import percent

DISCLAIMER = (
    "This is an automated guess from a photo, not an identification. Never eat a wild mushroom "
    "based on an app: many deadly species look like edible ones. Ask a local mycologist or mushroom "
    "inspection service, and if someone may have eaten a poisonous mushroom, call a poison control "
    "centre or emergency services now."
)
BANNED_PHRASES = ("safe to eat",)

EDIBILITY_TEXT = {
    "deadly": "DEADLY POISONOUS",
    "poisonous": "POISONOUS",
    "psychoactive": "psychoactive / toxic",
    "inedible": "inedible",
    "unknown": "edibility unknown",
    "edible": "edible (per sources, if correctly identified and cooked)",
    "choice": "edible, choice (per sources, if correctly identified and cooked)",
}


@dataclass(frozen=True)
class Thresholds:
    """Decision thresholds; fitted values travel with the model in its config.json."""

    confident: float = 0.5  # top-1 probability needed to name a species with confidence (>= 1: never)
    genus: float = 0.6  # probability mass one genus needs for a genus-level answer (>= 1: off)
    conformal_qhat: float | None = None  # LAC score quantile: set = {p >= 1 - qhat}
    conformal_coverage: float | None = None  # the coverage the quantile was calibrated for
    fungus: float = 0.2  # fungus-gate score below which the photo is rejected
    floor: float = 0.0  # top probability below which a photo is "not enough" to name a species (0: off)
    danger_share: float = 0.05  # probability at which a dangerous species enters the red panel (core.danger)

    def is_confident(self, probability: float) -> bool:
        """A threshold of 1.0 or more means never: calibration found none that holds (a probability
        that rounds to 1.0 must not slip through)."""
        return self.confident < 1.0 and probability >= self.confident

    @classmethod
    def from_config(cls, config: dict) -> Thresholds:
        t = config.get("thresholds") or {}
        known = {k: t[k] for k in cls.__dataclass_fields__ if k in t}
        return cls(**known)


def genus_of(name: str) -> str:
    return name.split(" ", 1)[0]


def prediction_set(probs: np.ndarray, qhat: float | None, max_size: int | None = None) -> list[int]:
    """Indices with probability >= 1 - qhat (split-conformal LAC), most probable first.

    The top class is always included, so a set is never empty. Without a calibrated
    ``qhat`` the set is just the top class.
    """
    order = np.argsort(-probs)
    if qhat is None:
        return [int(order[0])]
    chosen = [int(i) for i in order if probs[i] >= 1.0 - qhat] or [int(order[0])]
    return chosen[:max_size] if max_size else chosen


def genus_probabilities(probs: np.ndarray, labels: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for p, name in zip(probs, labels, strict=True):
        g = genus_of(name)
        out[g] = out.get(g, 0.0) + float(p)
    return out


def genus_answer(probs: np.ndarray, labels: Sequence[str], thresholds: Thresholds) -> GenusAnswer | None:
    """A genus-level answer when no species is clear but one genus holds most of the mass."""
    if float(probs.max()) >= thresholds.confident:
        return None
    genus, mass = max(genus_probabilities(probs, labels).items(), key=lambda kv: kv[1])
    if thresholds.genus >= 1.0 or mass < thresholds.genus:  # >= 1: the genus answer is off
        return None
    return {"genus": genus, "name": f"{genus} sp.", "probability": round(mass, 4)}


def combine_observation(log_probs: np.ndarray) -> np.ndarray:
    """Combine several photos of one specimen: mean of log-probabilities, renormalised.

    (A product of experts: a species must fit every photo. Chosen over averaging
    probabilities by measurement; see README.)
    """
    mean = np.asarray(log_probs, dtype=np.float64).mean(axis=0)
    mean -= mean.max()
    p = np.exp(mean)
    return p / p.sum()


# Danger levels, most dangerous first: warnings are ordered by this, then by probability.
DANGER_ORDER = ("deadly", "poisonous", "psychoactive")
_DANGER_RANK = {status: i for i, status in enumerate(DANGER_ORDER)}


def danger_rank(status: str | None) -> int:
    """0 for deadly, 1 poisonous, 2 psychoactive, 3 for anything not dangerous."""
    return _DANGER_RANK.get(status or "", len(DANGER_ORDER))


def edibility_tag(status: str) -> str:
    """The edibility a headline puts next to a species name: EDIBILITY_TEXT for every status
    except edible and choice, which get "" (the candidates table says those, with their caveats;
    a headline never says "edible" on its own)."""
    return "" if status in ("edible", "choice") else EDIBILITY_TEXT.get(status, EDIBILITY_TEXT["unknown"])


# The traits a person can check that define a species' visible profile (the trait table's keys).
PROFILE_TRAITS = ("hymenium", "stipe", "spore_print", "ecology")
# Further traits that rank lookalikes sharing the whole profile (closer first).
TIEBREAK_TRAITS = ("gill_attachment", "cap_shape")
SIMILAR_FEATURES_LIMIT = 3  # dangerous "similar features" lookalikes named for the top candidate


def _feature_words(trait: str, value: str) -> str:
    """A trait value in the questions' words, short: ("stipe", "bare") -> "neither ring nor cup"."""
    try:
        words = describe(trait, value).split(" (", 1)[0]
    except (KeyError, StopIteration):  # a value no question offers (a source's own word): shown as written
        words = value.replace("_", " ")
    words = words[:1].lower() + words[1:]
    return f"spore print {words}" if trait == "spore_print" else words


def similar_features(
    name: str, catalog: Catalog, traits, limit: int = SIMILAR_FEATURES_LIMIT
) -> list[tuple[str, list[str]]]:
    """Dangerous catalog species that share ``name``'s visible profile: every trait of
    ``PROFILE_TRAITS`` known for both and with a value in common (gills/pores..., ring/volva...,
    spore print colour, ecology). Computed, not typed: these are "similar features", not known
    confusions. Most dangerous first, then the most further traits shared, the same genus, the name;
    at most ``limit``. Returns ``[(species, ["gills", "ring and volva", ...]), ...]``; [] when the
    species' profile is not fully known (unknown is never "similar")."""
    mine = traits.of(name)
    if not all(mine.get(t) for t in PROFILE_TRAITS):
        return []
    genus = name.split(" ", 1)[0]
    found = []
    for sp in catalog:
        if sp.name == name or not sp.dangerous:
            continue
        theirs = traits.of(sp.name)
        shared = [sorted(mine[t] & (theirs.get(t) or frozenset())) for t in PROFILE_TRAITS]
        if not all(shared):
            continue
        extra = sum(bool(mine.get(t, frozenset()) & (theirs.get(t) or frozenset())) for t in TIEBREAK_TRAITS)
        key = (danger_rank(sp.edibility), -extra, sp.genus != genus, sp.name)
        words = [
            " or ".join(_feature_words(t, v) for v in values) for t, values in zip(PROFILE_TRAITS, shared, strict=True)
        ]
        found.append((key, sp.name, words))
    found.sort()
    return [(n, shared) for _, n, shared in found[:limit]]


def _danger_message(
    name: str, status: str, p: float | None, via: Sequence[str], top_name: str | None, source: str = ""
) -> str:
    share = "" if p is None or "candidate" not in via else f", {percent(p)} probability"
    head = f"{name} ({EDIBILITY_TEXT[status]}{share})"
    confused = f"can be confused with {top_name}, the most likely species"
    if source:
        confused += f" (a known confusion: {source})"
    if "candidate" in via and "lookalike" in via:
        return f"{head} is among the plausible species and {confused}."
    if "lookalike" in via:
        return f"{head} {confused}."
    return f"{head} is among the plausible species."


def species_warnings(
    names: Sequence[str],
    catalog: Catalog,
    top_name: str | None = None,
    probabilities: dict[str, float] | None = None,
    traits=None,
) -> list[Warning]:
    """Warnings for dangerous species in play, other lookalikes of the top candidate, unknown edibility.

    ``names`` are the plausible species (top-k and prediction set). A deadly, poisonous or
    psychoactive species gets ONE ``toxic_candidate`` warning, whether it is plausible
    (``via`` holds ``"candidate"``), a known confusion of ``top_name`` (``"lookalike"``: the curated
    confusion table or Wild Food UK's notes; ``lookalike_kind`` "known_confusion" and ``reason`` say
    what they share and the source) or both.
    These come first, the most dangerous first (deadly, poisonous, psychoactive) and within a level
    the most probable first (``probabilities``; a lookalike the model gives no probability goes
    last in its level). Then ``lookalike`` warnings for the top's lookalikes that are not dangerous,
    then ``unknown_edibility`` for a top candidate whose edibility no source knows.

    With ``traits`` (the trait table: ``traits.of(species)``), dangerous species that share the top
    candidate's visible profile (``similar_features``) are added as ``lookalike`` notices with
    ``lookalike_kind`` "similar_features" and the shared traits as ``reason``: labelled as computed,
    not as a known confusion, and not counted as a danger in play (a dangerous species among the
    plausible ones is still a ``toxic_candidate``).

    With ``probabilities`` each plausible toxic species' message states its probability, so a
    deadly species at 40% reads differently from one kept in the set at 0.2%.
    """
    probabilities = probabilities or {}
    danger: dict[str, Warning] = {}

    def add(name: str, status: str, via: str) -> None:
        w = danger.setdefault(
            name,
            {
                "kind": "toxic_candidate",
                "species": name,
                "edibility": status,
                "probability": probabilities.get(name),
                "via": [],
                "original_list_only": not catalog.danger_is_specific(name),
            },
        )
        if via not in w["via"]:
            w["via"].append(via)

    for name in names:
        status = catalog.edibility(name)
        if status in DANGEROUS:
            add(name, status, "candidate")
    mild: list[Warning] = []
    if top_name is not None and top_name in catalog:
        for look in catalog.lookalikes(top_name):
            reason = catalog.lookalike_reason(top_name, look.name)
            if look.edibility in DANGEROUS:
                add(look.name, look.edibility, "lookalike")
                danger[look.name].update(lookalike_kind="known_confusion", reason=reason)
            else:
                mild.append(
                    {
                        "kind": "lookalike",
                        "species": look.name,
                        "edibility": look.edibility,
                        "lookalike_kind": "known_confusion",
                        "reason": reason,
                        "message": f"{top_name} can be confused with {look.name} ({EDIBILITY_TEXT[look.edibility]}).",
                    }
                )
        if traits is not None:
            for name, shared in similar_features(catalog.resolve(top_name), catalog, traits):
                if name in danger:
                    continue  # already warned: plausible, or a known confusion
                status = catalog.edibility(name)
                mild.append(
                    {
                        "kind": "lookalike",
                        "species": name,
                        "edibility": status,
                        "lookalike_kind": "similar_features",
                        "reason": "similar features: " + "; ".join(shared),
                        "message": (
                            f"{name} ({EDIBILITY_TEXT[status]}) shares the features of {top_name} "
                            f"({'; '.join(shared)}): similar features, not a known confusion."
                        ),
                    }
                )
    for w in danger.values():
        w["via"].sort()  # "candidate" before "lookalike"
        source = catalog.lookalike_source(top_name, w["species"]) if "lookalike" in w["via"] else ""
        w["message"] = _danger_message(w["species"], w["edibility"], w["probability"], w["via"], top_name, source)
    # stable: equal keys keep the plausible species' order (most probable first), then the catalog's
    warnings = sorted(
        danger.values(),
        key=lambda w: (danger_rank(w["edibility"]), -(w["probability"] if w["probability"] is not None else -1.0)),
    )
    warnings += mild
    if top_name is not None and catalog.edibility(top_name) == "unknown":
        # also for a model label that is not in the catalog (a model trained on other names)
        why = "no source we use knows it" if top_name in catalog else "it is not in our species catalog"
        warnings.append(
            {
                "kind": "unknown_edibility",
                "species": top_name,
                "edibility": "unknown",
                "message": f"Edibility unknown for {top_name}: {why}.",
            }
        )
    return warnings


def _count_phrase(counts: dict[str, int]) -> str:
    parts = [f"{counts[s]} {s}" for s in DANGER_ORDER if counts.get(s)]
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def danger_summary(warnings: Sequence[Warning], top_name: str | None = None) -> str:
    """One sentence a person reads at a glance: how many dangerous species are in play, by level,
    naming the most dangerous (most probable within its level) and, when it is another one, the
    most probable dangerous species. "" when no dangerous species is in play.

    E.g. "2 deadly and 11 poisonous species are possible for this photo, among them the deadly
    Amanita phalloides (3%) and the poisonous Amanita muscaria (71%)." A dangerous lookalike of
    the top candidate (``top_name``) counts as possible and is named as one.
    """
    toxic = [w for w in warnings if w.get("kind") == "toxic_candidate" and w.get("edibility") in DANGEROUS]
    if not toxic:
        return ""
    toxic = sorted(toxic, key=lambda w: danger_rank(w["edibility"]))  # stable: keeps probability order
    counts: dict[str, int] = {}
    for w in toxic:
        counts[w["edibility"]] = counts.get(w["edibility"], 0) + 1

    def named(w: Warning, with_level: bool) -> str:
        text = f"the {w['edibility']} {w['species']}" if with_level else w["species"]
        if w.get("via") == ["lookalike"]:
            return f"{text} (a lookalike of {top_name or 'the most likely species'})"
        p = w.get("probability")
        return f"{text} ({percent(p)})" if p is not None else text

    if len(toxic) == 1:
        return f"{_count_phrase(counts)} species is possible for this photo: {named(toxic[0], False)}."
    first = toxic[0]
    known = [w for w in toxic if w.get("probability") is not None]
    likeliest = max(known, key=lambda w: w["probability"]) if known else first
    names = named(first, True)
    if likeliest is not first:
        names += f" and {named(likeliest, True)}"
    return f"{_count_phrase(counts)} species are possible for this photo, among them {names}."


# What helps an unsure answer (the photos a mycologist asks for); the several-photos tab combines them.
MORE_PHOTOS_HINT = (
    "More photos of the same mushroom would help: the gills or pores under the cap, the stem down to its base "
    "(dig it out), and the whole mushroom where it grows."
)

NOT_ENOUGH = "This photo is not enough to name the species."

NOT_FUNGUS_MESSAGE = (
    "This does not look like a mushroom or other fungus. Take a photo of the mushroom itself "
    "(cap, gills or pores, and stem), filling most of the frame."
)


def candidate(name: str, probability: float, catalog: Catalog) -> Candidate:
    """One row of the candidates list; edibility and lookalikes from the catalog."""
    in_catalog = name in catalog
    status = catalog.edibility(name)
    species = catalog.get(name) if in_catalog else None
    return {
        "species": name,
        "genus": genus_of(name),
        "common_name": species.common_name if species else "",
        "probability": round(probability, 4),
        "edibility": status,
        "edibility_text": EDIBILITY_TEXT[status],
        "lookalikes": [
            {"species": s.name, "edibility": s.edibility, "reason": catalog.lookalike_reason(name, s.name)}
            for s in catalog.lookalikes(name)
        ]
        if in_catalog
        else [],
    }


def _in_play(
    probs: np.ndarray,
    labels: Sequence[str],
    catalog: Catalog,
    t: Thresholds,
    index: dict[str, int],
    top_k: int,
    traits=None,
) -> tuple[list[Candidate], list[str], list[Warning]]:
    """(candidates, the prediction set, the species warnings) of one probability vector."""
    order = np.argsort(-probs)[:top_k]
    candidates = [candidate(labels[int(i)], float(probs[i]), catalog) for i in order]
    in_set = [labels[i] for i in prediction_set(probs, t.conformal_qhat)]
    top = candidates[0]
    plausible = sorted(set([c["species"] for c in candidates] + in_set), key=lambda n: -probs[index[n]])
    # the top's lookalikes too, when the model knows them: that orders them within their danger level
    in_play = plausible + [look["species"] for look in top["lookalikes"]]
    shares = {n: round(float(probs[index[n]]), 4) for n in in_play if n in index}
    return candidates, in_set, species_warnings(plausible, catalog, top["species"], shares, traits)


def _keep_photo_dangers(answered: list[Warning], photo: list[Warning]) -> list[Warning]:
    """The union: every dangerous species the photo alone raised stays warned after any answer."""
    have = {w["species"] for w in answered if w["kind"] == "toxic_candidate"}
    kept = []
    for w in photo:
        if w["kind"] != "toxic_candidate" or w["species"] in have:
            continue
        p = w.get("probability")
        share = f", {percent(p)} on the photo alone" if p is not None else ""
        kept.append(
            {
                **w,
                "via": sorted(set(w["via"]) | {"photo"}),
                "message": f"{w['species']} ({EDIBILITY_TEXT[w['edibility']]}{share}) was possible for the photo; "
                "your answers do not rule it out: check it in person.",
            }
        )
    danger = [w for w in answered if w["kind"] == "toxic_candidate"] + kept
    danger.sort(key=lambda w: (danger_rank(w["edibility"]), -(-1.0 if w["probability"] is None else w["probability"])))
    return danger + [w for w in answered if w["kind"] != "toxic_candidate"]


def _conflicts(photo_top: int, labels: Sequence[str], field: FieldEvidence, answers: dict[str, str]) -> list[Warning]:
    """One plain sentence per answer that contradicts the photo's best guess."""
    out: list[Warning] = []
    name = labels[photo_top]
    for key, value in answers.items():
        if field.rules_out(photo_top, key, value):
            out.append(
                {
                    "kind": "answer_conflict",
                    "species": name,
                    "edibility": None,
                    "message": f"Your answer '{describe(key, value)}' rules out the photo's best guess, {name}.",
                }
            )
    return out


def _fitted_profiles(
    answers: dict[str, str], probs: np.ndarray, labels: Sequence[str], catalog: Catalog, index: dict[str, int]
) -> list[dict]:
    """The dangerous groups whose profile the answers fit (:func:`core.danger.profile_matches`), each
    named by its member the answered photo finds most probable (the model may not know any member)."""
    out = []
    for profile, keys in profile_matches(answers):
        members = [catalog.resolve(m) for m in profile.members]
        members = [m for m in members if m and catalog.edibility(m) in DANGEROUS]
        if not members:
            continue
        known = [m for m in members if m in index]
        name = max(known, key=lambda m: probs[index[m]]) if known else members[0]
        seen = ", ".join(describe(k, answers[k]).split(" (")[0].lower() for k in keys)
        out.append(
            {
                "species": name,
                "edibility": catalog.edibility(name),
                "probability": round(float(probs[index[name]]), 4) if name in index else None,
                "reason": f"your answers fit {profile.group} ({seen})",
                "check": profile.why,
                "group": profile.group,
                "source": profile.source,
            }
        )
    return out


RULE_OUT_ANSWERS = 1  # answers that must contradict a lookalike (2: edible panels 56% instead of 50%, see README)


def _mark_ruled_out(candidates: list[Candidate], answers: dict[str, str], field: FieldEvidence, index) -> None:
    """Each lookalike that an answer contradicts (its known traits: ``FieldEvidence.rules_out``) gets
    ``ruled_out_by``, the answers in words: the red panel then names the danger the answers still
    point to; the lookalike's warning stays in the result (and the page's details)."""
    for c in candidates:
        for look in c["lookalikes"]:
            i = index.get(look["species"])
            if i is None:
                continue  # the model does not know it, nor the trait likelihoods: it stays
            against = [describe(k, v) for k, v in answers.items() if field.rules_out(i, k, v)]
            if len(against) >= RULE_OUT_ANSWERS:
                look["ruled_out_by"] = against


def _profile_warnings(warnings: list[Warning], fitted: list[dict]) -> list[Warning]:
    """A danger the answers point to is warned too (added, never replacing the photo's warnings)."""
    have = {w["species"] for w in warnings if w["kind"] == "toxic_candidate"}
    added = []
    for item in fitted:
        if item["species"] in have:
            continue
        added.append(
            {
                "kind": "toxic_candidate",
                "species": item["species"],
                "edibility": item["edibility"],
                "probability": item["probability"],
                "via": ["profile"],
                "original_list_only": False,
                "message": f"{item['species']} ({EDIBILITY_TEXT[item['edibility']]}): {item['reason']}: "
                f"{item['check']} ({item['source']}).",
            }
        )
    return added + warnings if added else warnings


def answer(
    probs: np.ndarray,
    fungus_score: float | None,
    labels: Sequence[str],
    catalog: Catalog,
    thresholds: Thresholds,
    model: ModelInfo,
    photos: int = 1,
    top_k: int = 5,
    index: dict[str, int] | None = None,
    field: FieldEvidence | None = None,
    answers: dict[str, str] | None = None,
    strategy: str = "info_gain",
    traits=None,
    skip: Sequence[str] = (),
    can_wait: bool = False,
) -> Result:
    """The whole safety policy: a calibrated probability vector (and the gate's score) -> the Result.

    Pure apart from the catalog: the fungus gate, the candidates, the prediction set, confidence,
    the genus fallback, every warning (dangerous first), the summary, the headline and the disclaimer.
    ``probs`` are the photo's probabilities; with ``field`` (the model's trait likelihoods) and parsed
    ``answers`` everything is decided on the re-weighted probabilities, except that every dangerous
    species the photo alone warns about stays warned (an answer can add danger, never hide it), and the
    result lists the next questions worth asking (not those in ``skip``: answered "not sure"; the ones
    that take hours after the instant ones unless the person ``can_wait``). With
    ``traits`` (the trait table) the top candidate's "similar features" lookalikes are named too
    (:func:`similar_features`).
    """
    t = thresholds
    answers = dict(answers or {})
    if answers and field is None:
        raise ValueError("field answers need the trait table (this model has no field evidence)")
    result: Result = {
        "is_fungus": True if fungus_score is None else fungus_score >= t.fungus,
        "fungus_score": None if fungus_score is None else round(fungus_score, 4),
        "candidates": [],
        "prediction_set": {"species": [], "coverage": t.conformal_coverage},
        "genus_answer": None,
        "confident": False,
        "warnings": [],
        "summary": "",
        "message": "",
        "disclaimer": DISCLAIMER,
        "model": model,
        "photos": photos,
        "below_floor": False,
        "danger_panel": [],
        "danger_profiles": [],
        "answers": answers,
        "questions": [],
    }
    if not result["is_fungus"]:
        result["message"] = NOT_FUNGUS_MESSAGE
        result["warnings"].append(notice("not_fungus", NOT_FUNGUS_MESSAGE))
        return result

    index = index or {name: i for i, name in enumerate(labels)}  # the predictor passes its own, built once
    photo_probs = np.asarray(probs, dtype=np.float64)
    probs = field.reweight(photo_probs, answers) if answers else photo_probs
    result["candidates"], result["prediction_set"]["species"], warnings = _in_play(
        probs, labels, catalog, t, index, top_k, traits
    )
    if answers:
        _, _, photo_warnings = _in_play(photo_probs, labels, catalog, t, index, top_k, traits)
        merged = _keep_photo_dangers(warnings, photo_warnings)
        n_danger = sum(w["kind"] == "toxic_candidate" for w in merged)
        conflicts = _conflicts(int(np.argmax(photo_probs)), labels, field, answers)
        warnings = merged[:n_danger] + conflicts + merged[n_danger:]
    if answers:
        _mark_ruled_out(result["candidates"], answers, field, index)
    fitted = _fitted_profiles(answers, probs, labels, catalog, index)
    warnings = _profile_warnings(warnings, fitted)
    if field is not None:
        result["questions"] = field.next_questions(probs, answers, strategy, skip, can_wait)
    result["warnings"] = warnings
    top = result["candidates"][0]
    result["confident"] = t.is_confident(float(probs.max()))  # unrounded: 0.99996 is not 1.0
    result["genus_answer"] = genus_answer(probs, labels, t)
    result["summary"] = danger_summary(result["warnings"], top["species"])
    # The headline names the danger of the most likely species ("— POISONOUS —"); a confident
    # answer also says inedible / edibility unknown, and never "edible" on its own.
    danger = f" — {EDIBILITY_TEXT[top['edibility']]} —" if top["edibility"] in DANGEROUS else ""
    if result["confident"]:
        tag = edibility_tag(top["edibility"])
        if tag:
            result["message"] = f"Most likely {top['species']} — {tag} — {percent(top['probability'])}."
        else:
            result["message"] = f"Most likely {top['species']} ({percent(top['probability'])})."
    elif result["genus_answer"]:
        g = result["genus_answer"]
        result["message"] = f"{genus_words(g)}: answering at genus level, {g['name'].rstrip('.')}."
        if danger:
            result["message"] += f" The best guess, {top['species']}{danger} has {percent(top['probability'])}."
    elif float(probs.max()) < t.floor:
        result["below_floor"] = True
        names = [c["species"] for c in result["candidates"][:3]]
        result["message"] = (
            f"{NOT_ENOUGH} Possible: {', '.join(names[:-1])} or {names[-1]}."
            if len(names) > 1
            else (f"{NOT_ENOUGH} Possible: {names[0]}.")
        )
        result["warnings"].append(notice("not_confident", result["message"]))
    else:
        result["message"] = (
            f"Not confident: the best guess, {top['species']}{danger or ','} has only "
            f"{percent(top['probability'])}. The mushroom may not be one of the species this model knows. "
            f"{MORE_PHOTOS_HINT}"
        )
        result["warnings"].append(notice("not_confident", result["message"]))
    result["below_floor"] = result["below_floor"] or (not result["confident"] and float(probs.max()) < t.floor)
    result["danger_profiles"] = fitted
    result["danger_panel"] = danger_panel(result, t.danger_share)
    return result
