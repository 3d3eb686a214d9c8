"""Field questions: what a field guide asks and a photo cannot show, as soft evidence on the photo's answer.

Pure functions over numpy arrays (no network, no I/O), shared by the predictor, the CLI, the API and the
app. With ``answers`` (question key -> option value) the photo's probabilities are re-weighted:

    p(species | photo, answers) ∝ p(species | photo) × Π_q L(answer_q | species' trait q)

- L = 1 when the answer fits the species' trait (any of its values: "convex; flat" fits both);
- L = ``MISSED`` (0.5) when the person may simply have missed a feature the species has (a volva
  hidden in the soil, a ring that fell off, a cortina that vanished: "bare" for a ring-and-volva Amanita);
- L = ``mismatch`` (fitted on cross-source validation; default 0.2) otherwise: people misread and
  sources err, so an answer never rules a species out completely;
- a species whose trait no source knows gets the answer's expected likelihood over the species that do
  (neutral: it neither gains nor loses on average); "not sure" or a missing key is no evidence.

The next questions are ranked by a strategy chosen by measurement on cross-source validation
(``python -m mushroom_id.engine.field_eval``; see README): a fixed order or the expected gain.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from mushroom_id.core.traits import Traits

MISSED = 0.5  # likelihood of an answer that misses a feature the species has (volva in the soil)
DEFAULT_MISMATCH = 0.2
NOT_SURE = frozenset({"", "not sure", "not_sure", "unsure", "skip", "unknown", "?"})
CANDIDATES_SHOWN = 5  # "keeps N of the candidates": counted among the top 5 the person sees

DIG_UP_THE_BASE = (
    "Dig up the whole base before you answer: the volva (cup) of the deadliest Amanitas is often hidden in the soil."
)


@dataclass(frozen=True)
class Option:
    value: str
    label: str
    matches: frozenset[str]  # species trait values this answer fits
    missed: frozenset[str] = frozenset()  # species values this answer fits if a feature was missed
    aliases: tuple[str, ...] = ()
    hidden: bool = False  # accepted as an answer (a source's own word), not offered as a button


@dataclass(frozen=True)
class Question:
    key: str
    trait: str
    text: str
    help: str
    options: tuple[Option, ...]

    def option(self, value: str) -> Option:
        return next(o for o in self.options if o.value == value)

    @property
    def shown(self) -> tuple[Option, ...]:
        return tuple(o for o in self.options if not o.hidden)


def _opt(value, label, matches=None, missed=(), aliases=(), hidden=False) -> Option:
    return Option(value, label, frozenset(matches or {value}), frozenset(missed), tuple(aliases), hidden)


QUESTIONS: dict[str, Question] = {
    q.key: q
    for q in (
        Question(
            "hymenium",
            "hymenium",
            "What is under the cap?",
            "Turn the mushroom over and look at the underside of the cap.",
            (
                _opt("gills", "Gills (thin blades)", aliases=("lamellae", "blades")),
                _opt("pores", "Pores (a sponge of tubes)", aliases=("tubes", "sponge")),
                _opt("teeth", "Teeth (hanging spines)", aliases=("spines",)),
                _opt("ridges", "Ridges (blunt, forked veins)", aliases=("false gills", "veins", "folds")),
                _opt("smooth", "Smooth (no gills, pores or teeth)"),
                _opt(
                    "glebal",
                    "No underside: spores inside (puffball, earthball, stinkhorn, truffle)",
                    aliases=("gleba", "puffball", "inside"),
                ),
            ),
        ),
        Question(
            "stipe",
            "stipe",
            "What is on the stem?",
            DIG_UP_THE_BASE,
            (
                _opt("ring", "A ring (skirt) on the stem", missed={"ring_and_volva"}, aliases=("annulus", "skirt")),
                _opt("volva", "A cup (volva) at the base", missed={"ring_and_volva"}, aliases=("cup", "sack")),
                _opt("ring_and_volva", "Both a ring and a cup", aliases=("ring and volva", "ring+volva", "both")),
                _opt("cortina", "Cobweb-like threads (cortina)", aliases=("cobweb",)),
                _opt(
                    "bare",
                    "Neither ring nor cup (bare stem)",
                    missed={"ring", "volva", "ring_and_volva", "cortina"},
                    aliases=("plain", "nothing"),
                ),
                _opt("no_stem", "No stem", aliases=("none", "no stem", "stemless")),
            ),
        ),
        Question(
            "spore_print",
            "spore_print",
            "What colour is the spore print?",
            "Cut off the cap, lay it gills or pores down on white and black paper under a cup for a few hours, "
            "then look at the colour of the dust.",
            (
                _opt("white-cream", "White to cream", aliases=("white", "cream", "buff", "white-cream")),
                _opt("yellow", "Yellow", aliases=("yellow-orange",)),
                _opt("pink", "Pink to salmon", aliases=("salmon", "pinkish")),
                _opt(
                    "brown",
                    "Brown, ochre or rusty",
                    aliases=("ochre", "tan", "rust", "rusty", "reddish-brown", "olive-brown", "olive", "yellow-brown"),
                ),
                _opt(
                    "purple-black",
                    "Purple-brown to black",
                    aliases=("purple-brown", "purple", "black", "blackish-brown", "purple-black", "dark"),
                ),
                _opt("green", "Green", aliases=("greenish",)),
            ),
        ),
        Question(
            "ecology",
            "ecology",
            "Where does it grow?",
            "Look at what the mushroom grows from: wood (even buried), soil, dung, or another fungus or insect.",
            (
                _opt("wood", "On wood (stumps, logs, living trees)", {"saprotrophic", "parasitic"}),
                _opt("soil_trees", "On soil, near trees", {"mycorrhizal", "saprotrophic"}, aliases=("forest",)),
                _opt("soil_open", "On soil, no trees near (lawn, meadow)", {"saprotrophic"}, aliases=("grass",)),
                _opt("dung", "On dung or manure", {"saprotrophic"}),
                _opt("on_fungus_or_insect", "On another mushroom or an insect", {"parasitic"}),
                _opt("mycorrhizal", "Mycorrhizal (with tree roots)", hidden=True),
                _opt("saprotrophic", "Saprotrophic (on dead matter)", hidden=True),
                _opt("parasitic", "Parasitic", hidden=True),
            ),
        ),
        Question(
            "gill_attachment",
            "gill_attachment",
            "How do the gills meet the stem?",
            "Cut the mushroom in half from cap to base and look where the gills end.",
            (
                _opt("free", "Free (they stop short of the stem)", aliases=("seceding",)),
                _opt("attached", "Attached to the stem", aliases=("adnate", "adnexed", "sinuate", "emarginate")),
                _opt("decurrent", "Running down the stem", aliases=("subdecurrent",)),
            ),
        ),
    )
}
QUESTION_KEYS: tuple[str, ...] = tuple(QUESTIONS)


def _normal(text: str) -> str:
    return " ".join(str(text).strip().lower().replace("_", " ").split())


_ALIASES = {
    key: {_normal(a): o.value for o in q.options for a in (o.value, *o.aliases)} for key, q in QUESTIONS.items()
}


def accepted_answers() -> dict[str, list[str]]:
    """question key -> every value it accepts (option values first, then aliases)."""
    out = {}
    for key, q in QUESTIONS.items():
        values = [o.value for o in q.options]
        out[key] = values + sorted({a for o in q.options for a in o.aliases} - set(values))
    return out


def parse_answers(answers: Mapping[str, str] | None) -> dict[str, str]:
    """Answers as given (keys and values case-insensitive, aliases allowed) -> {key: option value}.

    "not sure" (and "", "skip", "unknown") is no evidence and is dropped. An unknown key or value raises
    ``ValueError`` naming what is accepted.
    """
    out: dict[str, str] = {}
    for raw_key, raw_value in (answers or {}).items():
        key = _normal(raw_key).replace(" ", "_")
        if key not in QUESTIONS:
            raise ValueError(f"unknown question {raw_key!r}; the questions are: {', '.join(QUESTION_KEYS)}")
        if raw_value is None or _normal(raw_value) in NOT_SURE:
            continue
        value = _ALIASES[key].get(_normal(raw_value))
        if value is None:
            accepted = ", ".join(accepted_answers()[key])
            raise ValueError(f"{raw_value!r} is not an answer to {key!r}; accepted: {accepted} (or 'not sure')")
        out[key] = value
    return out


def skipped_questions(answers: Mapping[str, str] | None) -> list[str]:
    """The questions answered "not sure" / "skip": asked, no evidence, and not to be asked again next."""
    out = []
    for raw_key, raw_value in (answers or {}).items():
        key = _normal(raw_key).replace(" ", "_")
        if key in QUESTIONS and (raw_value is None or _normal(raw_value) in NOT_SURE):
            out.append(key)
    return out


def parse_answer_args(pairs: Sequence[str]) -> dict[str, str]:
    """``["hymenium=pores", "stipe=ring"]`` (the CLI's ``--answer``) -> parsed answers."""
    raw = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise ValueError(f"--answer {pair!r}: write it as question=value, e.g. hymenium=pores")
        raw[key.strip()] = value.strip()
    return parse_answers(raw)


@dataclass
class FieldEvidence:
    """The likelihood of every answer for every label of one model (built once per model: cheap).

    ``traits_of(label)`` comes from the trait table (labels resolved through the catalog by the caller).
    ``L[key]`` is an (options, labels) array; a label with an unknown trait gets each option's expected
    likelihood over the labels whose trait is known.
    """

    labels: list[str]
    trait_sets: list[dict[str, frozenset[str]]]
    mismatch: float = DEFAULT_MISMATCH
    L: dict[str, np.ndarray] = field(init=False)
    known: dict[str, np.ndarray] = field(init=False)
    shown: dict[str, list[int]] = field(init=False)  # per question: the rows of L offered as buttons

    def __post_init__(self):
        if not 0.0 < self.mismatch <= 1.0:
            raise ValueError(f"mismatch weight must be in (0, 1], got {self.mismatch}")
        self.L, self.known = {}, {}
        self.shown = {k: [i for i, o in enumerate(q.options) if not o.hidden] for k, q in QUESTIONS.items()}
        for key, q in QUESTIONS.items():
            values = [ts.get(q.trait, frozenset()) for ts in self.trait_sets]
            known = np.array([bool(v) for v in values])
            mat = np.full((len(q.options), len(values)), self.mismatch)
            for i, o in enumerate(q.options):
                for j, v in enumerate(values):
                    if v & o.matches:
                        mat[i, j] = 1.0
                    elif v & o.missed:
                        mat[i, j] = max(MISSED, self.mismatch)
                base = mat[i, known].mean() if known.any() else 1.0
                mat[i, ~known] = base
            self.L[key], self.known[key] = mat, known

    @classmethod
    def for_labels(cls, labels: Sequence[str], traits: Traits, resolve=None, mismatch: float = DEFAULT_MISMATCH):
        """``resolve``: label -> accepted catalog name (``Catalog.resolve``); a label it does not know has
        no traits (every answer neutral for it)."""
        names = [(resolve(n) if resolve else n) for n in labels]
        return cls(list(labels), [traits.of(n) if n else {} for n in names], mismatch)

    def likelihood(self, key: str, value: str) -> np.ndarray:
        q = QUESTIONS[key]
        return self.L[key][[o.value for o in q.options].index(value)]

    def reweight(self, probs: np.ndarray, answers: Mapping[str, str]) -> np.ndarray:
        """p(species | photo, answers), normalised. ``answers`` already parsed (:func:`parse_answers`)."""
        p = np.asarray(probs, dtype=np.float64).copy()
        for key, value in answers.items():
            p *= self.likelihood(key, value)
        total = p.sum()
        return p / total if total > 0 else np.asarray(probs, dtype=np.float64)

    def rules_out(self, label_index: int, key: str, value: str) -> bool:
        """True when the answer contradicts what the sources say of this label (a plain mismatch)."""
        return bool(self.known[key][label_index]) and self.likelihood(key, value)[label_index] <= self.mismatch

    # ------------------------------------------------------------------ which question next

    def answer_model(self, key: str) -> np.ndarray:
        """P(answer | species) for the offered options: the likelihoods normalised per species."""
        mat = self.L[key][self.shown[key]]
        return mat / mat.sum(axis=0, keepdims=True)

    def open_questions(self, answers: Mapping[str, str], skip: Sequence[str] = ()) -> list[str]:
        """Questions still worth asking: not answered, not skipped, and the gill question only once the
        answer to "what is under the cap" was gills."""
        return [
            k
            for k in QUESTION_KEYS
            if k not in answers and k not in skip and (k != "gill_attachment" or answers.get("hymenium") == "gills")
        ]

    def question_scores(
        self, probs: np.ndarray, answers: Mapping[str, str], strategy: str, skip: Sequence[str] = ()
    ) -> dict[str, float]:
        """Score of every open question (:meth:`open_questions`) under ``strategy`` (higher: ask first).

        - ``info_gain``: expected reduction of the entropy over species;
        - ``top5_gain``: expected probability mass in the top 5 after the answer, minus before;
        - ``fixed:<key>,<key>,...``: that order.
        """
        open_keys = self.open_questions(answers, skip)
        if strategy.startswith("fixed:"):
            order = [k.strip() for k in strategy[len("fixed:") :].split(",")]
            rank = {k: len(order) - i for i, k in enumerate(order)}
            return {k: float(rank.get(k, 0)) for k in open_keys}
        p = np.asarray(probs, dtype=np.float64)
        scores = {}
        for key in open_keys:
            pa = (self.answer_model(key) * p).sum(axis=1)  # P(answer): how a person would answer
            post = self.L[key][self.shown[key]] * p  # the re-weighted answer after each possible answer
            post /= np.maximum(post.sum(axis=1, keepdims=True), 1e-300)
            if strategy == "info_gain":
                h0 = -(p[p > 0] * np.log(p[p > 0])).sum()
                h = -(post * np.log(np.maximum(post, 1e-300))).sum(axis=1)
                scores[key] = float(h0 - (pa * h).sum())
            elif strategy == "top5_gain":
                top5 = np.sort(post, axis=1)[:, -5:].sum(axis=1)
                scores[key] = float((pa * top5).sum() - np.sort(p)[-5:].sum())
            else:
                raise ValueError(f"unknown question strategy {strategy!r} (info_gain, top5_gain, fixed:a,b,...)")
        return scores

    def next_questions(
        self, probs: np.ndarray, answers: Mapping[str, str], strategy: str, skip: Sequence[str] = ()
    ) -> list[dict]:
        """The open questions (not answered, not ``skip``ped: "not sure"), best first, each with its options
        and how many of the current top 5 candidates each option keeps (a candidate is kept unless the
        answer contradicts its known trait)."""
        scores = self.question_scores(probs, answers, strategy, skip)
        p = np.asarray(probs)
        top = [i for i in np.argsort(-p)[:CANDIDATES_SHOWN] if p[i] > 0]
        offers = []
        for key in sorted(scores, key=lambda k: (-scores[k], QUESTION_KEYS.index(k))):
            q = QUESTIONS[key]
            options = []
            for i, o in enumerate(q.options):
                if o.hidden:
                    continue
                kept = int((self.L[key][i, top] > self.mismatch).sum())
                options.append({"value": o.value, "label": o.label, "keeps": kept})
            offers.append({"key": key, "text": q.text, "help": q.help, "options": options})
        return offers


def describe(key: str, value: str) -> str:
    """The option's words, for messages ("pores" -> "Pores (a sponge of tubes)")."""
    return QUESTIONS[key].option(value).label


def questions_catalog() -> list[dict]:
    """Every question with its options and accepted aliases (``python -m mushroom_id questions --json``)."""
    return [
        {
            "key": q.key,
            "text": q.text,
            "help": q.help,
            "options": [{"value": o.value, "label": o.label, "aliases": list(o.aliases)} for o in q.options],
        }
        for q in QUESTIONS.values()
    ]
