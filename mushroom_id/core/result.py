"""The answer to a photo, as one typed definition.

``core.safety.answer`` builds it, ``serving.ui`` renders it, ``python -m mushroom_id predict`` prints
it and ``docs/api.md`` describes it (a test holds the three to these fields). It is plain JSON: the
field names are the public API of ``/classify`` and ``predict --json``; new fields may be added,
none renamed.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict

Edibility = Literal["deadly", "poisonous", "psychoactive", "inedible", "unknown", "edible", "choice"]
WarningKind = Literal[
    "toxic_candidate", "lookalike", "unknown_edibility", "answer_conflict", "not_fungus", "not_confident"
]
# every kind of warning, in the order a result lists them
WARNING_KINDS: tuple[str, ...] = WarningKind.__args__


LookalikeKind = Literal["known_confusion", "similar_features"]


class Lookalike(TypedDict):
    species: str
    edibility: Edibility
    reason: str  # why it is listed: "known confusion: <what they share> (<source>)"
    ruled_out_by: NotRequired[list[str]]  # the field answers (in words) that contradict its known traits


class Candidate(TypedDict):
    species: str
    genus: str
    common_name: str
    probability: float  # calibrated; the candidates sum to at most 1
    edibility: Edibility  # always from the catalog; "unknown" is never "probably fine"
    edibility_text: str
    lookalikes: list[Lookalike]


class PredictionSet(TypedDict):
    species: list[str]  # contains the right species with probability `coverage` (conformal)
    coverage: float | None


class GenusAnswer(TypedDict):
    genus: str
    name: str  # "Amanita sp."
    probability: float


class Warning(TypedDict, total=False):
    kind: WarningKind  # always present
    species: str | None  # always present (None for not_fungus / not_confident)
    edibility: Edibility | None  # always present
    message: str  # always present
    probability: float | None  # toxic_candidate only: the model's probability (None: a lookalike it does not know)
    # toxic_candidate only: why it is in play ("photo": the photo alone raised it and answers never drop it)
    via: list[Literal["candidate", "lookalike", "photo", "profile"]]  # "profile": the answers fit its group
    # toxic_candidate only: True when only the original project's binary "toxic" (= not edible) calls it
    # dangerous (no specific source): never named in red unless it is the top guess
    original_list_only: bool
    # a lookalike of the top candidate (via "lookalike", or kind "lookalike"): why it is there.
    # "known_confusion": a documented confusion (curated table or Wild Food UK), `reason` gives what
    # they share and the source; "similar_features": a dangerous species computed from the trait
    # table to share the top candidate's visible profile, `reason` lists the shared traits.
    lookalike_kind: LookalikeKind
    reason: str


class AnswerOption(TypedDict):
    value: str  # what to send back in ``answers``
    label: str  # the words to show
    keeps: int  # how many of the current top 5 candidates this answer does not contradict


class QuestionOffer(TypedDict):
    key: str  # hymenium, stipe, spore_print, ecology, gill_attachment
    text: str
    help: str  # one line: how to see it (the stem question: dig up the base)
    options: list[AnswerOption]


class DangerItem(TypedDict):
    """One name in the red panel (:func:`mushroom_id.core.danger.danger_panel`)."""

    species: str
    edibility: Edibility
    probability: float | None  # the model's probability (None: a lookalike it gives none)
    reason: str  # "top guess", "12%", "looks like your top guess", "looks like X (guess 2)", "your answers fit ..."
    check: NotRequired[str]  # what to check to tell it apart (a profile's or a curated confusion's why)


class DangerProfileMatch(TypedDict):
    """A dangerous group whose profile the field answers fit (``mushroom_id/data/danger_profiles.csv``)."""

    species: str  # the group's member the answered photo finds most probable
    edibility: Edibility
    probability: float | None  # None: the model does not know that member
    reason: str  # "your answers fit the deadly Amanitas (gills, both a ring and a cup)"
    check: str  # what the group looks like, and what to check
    group: str  # "the deadly Amanitas"
    source: str  # where the profile is documented


class ModelInfo(TypedDict):
    id: str
    num_species: int


class Result(TypedDict):
    is_fungus: bool
    fungus_score: float | None  # None when the fungus gate is off
    candidates: list[Candidate]  # most probable first; empty when not a fungus
    prediction_set: PredictionSet
    genus_answer: GenusAnswer | None
    confident: bool
    warnings: list[Warning]  # dangerous species first (deadly, poisonous, psychoactive), then by probability
    summary: str  # the dangers in one sentence, "" when none is in play
    message: str  # the headline
    disclaimer: str
    model: ModelInfo
    photos: int
    answers: dict[str, str]  # the field answers used (question key -> option value); {} for none
    questions: list[QuestionOffer]  # unanswered field questions, the most useful first; [] without traits
    below_floor: bool  # the top probability is below the fitted floor: candidates are "possible", not answers
    danger_panel: list[DangerItem]  # the red panel (core.danger): at most 3 dangerous species, each with why
    danger_profiles: list[DangerProfileMatch]  # the dangerous groups the answers fit ([] without answers)


class ErrorResult(TypedDict):
    """``predict --json``: a photo that could not be read (the other photos still get a Result)."""

    error: str


def notice(kind: WarningKind, message: str) -> Warning:
    """A warning about the answer as a whole (``not_fungus``, ``not_confident``): no species."""
    return {"kind": kind, "species": None, "edibility": None, "message": message}
