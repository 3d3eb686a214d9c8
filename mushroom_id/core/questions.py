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

from mushroom_id.core.traits import ANY_SUBSTRATE, VOCABULARY, Traits

MISSED = 0.5  # likelihood of an answer that misses a feature the species has (volva in the soil)
DEFAULT_MISMATCH = 0.2
NOT_SURE = frozenset({"", "not sure", "not_sure", "unsure", "skip", "unknown", "?"})
CANDIDATES_SHOWN = 5  # "keeps N of the candidates": counted among the top 5 the person sees
INSTANT_S = 600  # a question that takes longer than this (the spore print: hours) waits for the person

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
    cost_s: int = 10  # about how long a person needs to answer it, mushroom in hand
    effort: str = "seconds"  # the same, in words a person reads
    after: tuple[str, str] | None = None  # (question, answer): asked only after that answer
    # (question, answers): not asked after one of those answers, which already tell this one
    # (a cup at the base, said on "what is on the stem?", is not asked again at "the base of the stem")
    told_by: tuple[str, frozenset[str]] | None = None

    def option(self, value: str) -> Option:
        return next(o for o in self.options if o.value == value)

    @property
    def shown(self) -> tuple[Option, ...]:
        return tuple(o for o in self.options if not o.hidden)

    @property
    def instant(self) -> bool:
        return self.cost_s <= INSTANT_S


def _opt(value, label, matches=None, missed=(), aliases=(), hidden=False) -> Option:
    return Option(value, label, frozenset(matches or {value}), frozenset(missed), tuple(aliases), hidden)


def _colours() -> tuple[Option, ...]:
    """Colour options (cap, gills): the groups of :data:`VOCABULARY`, with the words people use."""
    return (
        _opt("white-cream", "White, cream or buff", aliases=("white", "cream", "buff", "ivory")),
        _opt("yellow-orange", "Yellow or orange", aliases=("yellow", "orange", "golden", "ochre")),
        _opt("red-pink", "Red or pink", aliases=("red", "pink", "scarlet", "salmon")),
        _opt("brown", "Brown, tan or rusty", aliases=("tan", "rusty", "chestnut", "hazel")),
        _opt("grey-black", "Grey or black", aliases=("grey", "gray", "black", "dark")),
        _opt("green-blue", "Green, olive or blue", aliases=("green", "olive", "blue")),
        _opt("purple", "Purple, lilac or violet", aliases=("lilac", "violet", "mauve")),
    )


SEASONS = VOCABULARY["season"]
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")


def season_of(month: int, hemisphere: str = "north") -> str:
    """Month (1-12) where it was found -> meteorological season (Mar-May spring in the north)."""
    if not 1 <= month <= 12:
        raise ValueError(f"month must be 1-12, got {month}")
    shift = 6 if hemisphere.lower().startswith("s") else 0
    return SEASONS[(((month - 1 + shift) % 12) + 10) % 12 // 3]


def _season_answer(text: str) -> str | None:
    """ "october", "10", "oct south", "april (southern hemisphere)" -> a season; None if it is no month."""
    words = text.replace("(", " ").replace(")", " ").replace("/", " ").replace(",", " ").split()
    if not words:
        return None
    first = words[0]
    month = int(first) if first.isdigit() else (MONTHS.index(first[:3]) + 1 if first[:3] in MONTHS else None)
    if month is None or not 1 <= month <= 12:
        return None
    south = any(w.startswith("south") or w in ("s", "sh") for w in words[1:])
    return season_of(month, "south" if south else "north")


def _adjacent(values: tuple[str, ...], ring: bool) -> dict[str, frozenset[str]]:
    """Each value's neighbours (a season's, a size's): an answer at the edge counts as missed, not wrong."""
    n = len(values)
    out = {}
    for i, v in enumerate(values):
        near = {values[(i - 1) % n], values[(i + 1) % n]} if ring else {values[j] for j in (i - 1, i + 1) if 0 <= j < n}
        out[v] = frozenset(near - {v})
    return out


_NEAR_SEASON = _adjacent(SEASONS, ring=True)
_NEAR_SIZE = _adjacent(VOCABULARY["cap_size"], ring=False)

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
            cost_s=5,
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
            cost_s=30,
            effort="half a minute (dig up the base)",
        ),
        Question(
            "ecology",
            "ecology",
            "Where does it grow?",
            "Look at what the mushroom grows from: wood (even buried wood or roots), leaf litter or needles, "
            "soil, grass, dung, or another fungus or insect.",
            (
                _opt("wood", "On wood (stumps, logs, living trees, buried wood)", aliases=("on wood", "stump", "log")),
                _opt("litter", "In leaf litter or needles", aliases=("leaf litter", "leaves", "needles")),
                _opt("soil_trees", "On soil, near trees", aliases=("forest", "woodland", "mycorrhizal")),
                _opt("soil_open", "In grass or open ground (lawn, meadow)", aliases=("grass", "lawn", "meadow")),
                _opt("dung", "On dung or manure", aliases=("manure",)),
                _opt("on_fungus_or_insect", "On another mushroom or an insect", aliases=("parasite on fungus",)),
                _opt("saprotrophic", "Saprotrophic (on dead matter)", ANY_SUBSTRATE, hidden=True),
                _opt("parasitic", "Parasitic", {"wood", "on_fungus_or_insect"}, hidden=True),
            ),
            cost_s=5,
        ),
        Question(
            "stem_base",
            "stem_base",
            "What is at the base of the stem?",
            DIG_UP_THE_BASE,
            (
                _opt("cup", "A cup or sack (volva) around the base", aliases=("volva", "sack")),
                _opt("bulb", "A swollen bulb", missed={"cup"}, aliases=("bulbous", "swollen", "club")),
                _opt("rooting", "A long root going down", aliases=("root", "rooted")),
                _opt("plain", "Plain: the stem just ends", missed={"cup"}, aliases=("equal", "straight")),
            ),
            cost_s=30,
            told_by=("stipe", frozenset({"volva", "ring_and_volva"})),
            effort="half a minute (dig up the base)",
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
            cost_s=20,
            after=("hymenium", "gills"),
        ),
        Question(
            "cap_colour",
            "cap_colour",
            "What colour is the cap?",
            "The main colour of the top of the cap (not the spots or scales).",
            _colours(),
            cost_s=5,
        ),
        Question(
            "gill_colour",
            "gill_colour",
            "What colour are the gills?",
            "Look at the gills of a grown cap: young gills can be paler.",
            _colours(),
            cost_s=5,
            after=("hymenium", "gills"),
        ),
        Question(
            "bruising",
            "bruising",
            "Does it change colour when cut or pressed, or bleed milk?",
            "Cut the flesh or press the gills or pores and wait a minute: blue, red, yellow or black staining, "
            "or a milk or juice that runs out, counts.",
            (
                _opt("changes", "Yes: it changes colour or bleeds", aliases=("yes", "bruises", "milk", "stains")),
                _opt("no_change", "No change", aliases=("no", "none")),
            ),
            cost_s=60,
            effort="a minute",
        ),
        Question(
            "cap_size",
            "cap_size",
            "How wide is the cap?",
            "Of a grown mushroom, across the cap.",
            (
                _opt("small", "Small: under 5 cm (2 in)", missed=_NEAR_SIZE["small"]),
                _opt("medium", "Medium: 5-10 cm", missed=_NEAR_SIZE["medium"]),
                _opt("large", "Large: over 10 cm (4 in)", missed=_NEAR_SIZE["large"]),
            ),
            cost_s=5,
        ),
        Question(
            "season",
            "season",
            "When did you find it?",
            'The season where you found it. A month works too ("october", "10"); add "south" for the '
            'southern hemisphere ("april south").',
            tuple(
                _opt(s, label, missed=_NEAR_SEASON[s])
                for s, label in (
                    ("spring", "Spring (Mar-May north, Sep-Nov south)"),
                    ("summer", "Summer (Jun-Aug north, Dec-Feb south)"),
                    ("autumn", "Autumn (Sep-Nov north, Mar-May south)"),
                    ("winter", "Winter (Dec-Feb north, Jun-Aug south)"),
                )
            ),
            cost_s=2,
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
            cost_s=4 * 3600,
            effort="a few hours",
        ),
    )
}
QUESTION_KEYS: tuple[str, ...] = tuple(QUESTIONS)
INSTANT_KEYS: tuple[str, ...] = tuple(k for k, q in QUESTIONS.items() if q.instant)
assert all(o.matches <= set(VOCABULARY[q.trait]) for q in QUESTIONS.values() for o in q.options), "vocabulary"


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
    out["season"] += ["a month: october, oct, 10 (add 'south' for the southern hemisphere)"]
    return out


def parse_answers(answers: Mapping[str, str] | None) -> dict[str, str]:
    """Answers as given (keys and values case-insensitive, aliases allowed) -> {key: option value}.

    "not sure" (and "", "skip", "unknown") is no evidence and is dropped. An unknown key or value raises
    ``ValueError`` naming what is accepted. The season also takes the month it was found in.
    """
    out: dict[str, str] = {}
    for raw_key, raw_value in (answers or {}).items():
        key = _normal(raw_key).replace(" ", "_")
        if key not in QUESTIONS:
            raise ValueError(f"unknown question {raw_key!r}; the questions are: {', '.join(QUESTION_KEYS)}")
        if raw_value is None or _normal(raw_value) in NOT_SURE:
            continue
        value = _ALIASES[key].get(_normal(raw_value))
        if value is None and key == "season":
            value = _season_answer(_normal(raw_value))
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


# How the next field question is chosen when the model's config says nothing: the winner of the
# comparison on cross-source validation (python -m mushroom_id.engine.field_eval; README "Field questions").
DEFAULT_STRATEGY = "info_gain"


def field_settings(config: Mapping) -> tuple[float | dict[str, float], str, float]:
    """(mismatch weight(s), question strategy, answer temperature) fitted for a model, from its config.json."""
    fq = config.get("field_questions") or {}
    mismatch = fq.get("mismatch", DEFAULT_MISMATCH)
    mismatch = {k: float(v) for k, v in mismatch.items()} if isinstance(mismatch, Mapping) else float(mismatch)
    return mismatch, str(fq.get("strategy", DEFAULT_STRATEGY)), float(fq.get("temperature", 1.0))


@dataclass
class FieldEvidence:
    """The likelihood of every answer for every label of one model (built once per model: cheap).

    ``traits_of(label)`` comes from the trait table (labels resolved through the catalog by the caller).
    ``L[key]`` is an (options, labels) array; a label with an unknown trait gets each option's expected
    likelihood over the labels whose trait is known. ``mismatch`` is one weight for every question or a
    mapping question -> weight (fitted per question, a missing one takes ``DEFAULT_MISMATCH``);
    ``temperature`` softens the answered posterior (fitted so that its probabilities stay calibrated).
    """

    labels: list[str]
    trait_sets: list[dict[str, frozenset[str]]]
    mismatch: float | Mapping[str, float] = DEFAULT_MISMATCH
    temperature: float = 1.0
    L: dict[str, np.ndarray] = field(init=False)
    known: dict[str, np.ndarray] = field(init=False)
    shown: dict[str, list[int]] = field(init=False)  # per question: the rows of L offered as buttons

    def __post_init__(self):
        if not self.temperature > 0:
            raise ValueError(f"answer temperature must be > 0, got {self.temperature}")
        self.L, self.known = {}, {}
        self.shown = {k: [i for i, o in enumerate(q.options) if not o.hidden] for k, q in QUESTIONS.items()}
        for key, q in QUESTIONS.items():
            w = self.mismatch_of(key)
            if not 0.0 < w <= 1.0:
                raise ValueError(f"mismatch weight of {key!r} must be in (0, 1], got {w}")
            values = [ts.get(q.trait, frozenset()) for ts in self.trait_sets]
            known = np.array([bool(v) for v in values])
            mat = np.full((len(q.options), len(values)), w)
            for i, o in enumerate(q.options):
                for j, v in enumerate(values):
                    if v & o.matches:
                        mat[i, j] = 1.0
                    elif v & o.missed:
                        mat[i, j] = max(MISSED, w)
                base = mat[i, known].mean() if known.any() else 1.0
                mat[i, ~known] = base
            self.L[key], self.known[key] = mat, known

    def mismatch_of(self, key: str) -> float:
        if isinstance(self.mismatch, Mapping):
            return float(self.mismatch.get(key, DEFAULT_MISMATCH))
        return float(self.mismatch)

    @classmethod
    def for_labels(
        cls,
        labels: Sequence[str],
        traits: Traits,
        resolve=None,
        mismatch: float | Mapping[str, float] = DEFAULT_MISMATCH,
        temperature: float = 1.0,
    ):
        """``resolve``: label -> accepted catalog name (``Catalog.resolve``); a label it does not know has
        no traits (every answer neutral for it)."""
        names = [(resolve(n) if resolve else n) for n in labels]
        return cls(list(labels), [traits.of(n) if n else {} for n in names], mismatch, temperature)

    @classmethod
    def from_config(cls, labels: Sequence[str], config: Mapping, traits: Traits, resolve=None) -> FieldEvidence:
        """The evidence with the settings fitted for this model (its config.json ``field_questions``:
        ``mismatch`` (one weight or per question), ``temperature``, ``strategy``; see :func:`field_settings`)."""
        mismatch, _, temperature = field_settings(config)
        return cls.for_labels(labels, traits, resolve, mismatch, temperature)

    def likelihood(self, key: str, value: str) -> np.ndarray:
        q = QUESTIONS[key]
        return self.L[key][[o.value for o in q.options].index(value)]

    def reweight(self, probs: np.ndarray, answers: Mapping[str, str], likelihoods=()) -> np.ndarray:
        """p(species | photo, answers), normalised. ``answers`` already parsed (:func:`parse_answers`).

        With answers the posterior is tempered by :attr:`temperature` (p^(1/T), renormalised): evidence
        from several answers is not independent, and untempered it reads more certain than it is.
        ``likelihoods``: extra likelihood vectors (the evaluation's held-out-source answers)."""
        logp = np.log(np.maximum(np.asarray(probs, dtype=np.float64), 1e-300))
        factors = [self.likelihood(k, v) for k, v in answers.items()] + list(likelihoods)
        if not factors:
            return np.asarray(probs, dtype=np.float64)
        for lk in factors:
            logp = logp + np.log(lk)
        logp = logp / self.temperature
        p = np.exp(logp - logp.max())
        return p / p.sum()

    def rules_out(self, label_index: int, key: str, value: str) -> bool:
        """True when the answer contradicts what the sources say of this label (a plain mismatch)."""
        return bool(self.known[key][label_index]) and self.likelihood(key, value)[label_index] <= self.mismatch_of(key)

    # ------------------------------------------------------------------ which question next

    def answer_model(self, key: str) -> np.ndarray:
        """P(answer | species) for the offered options: the likelihoods normalised per species."""
        mat = self.L[key][self.shown[key]]
        return mat / mat.sum(axis=0, keepdims=True)

    def open_questions(
        self, answers: Mapping[str, str], skip: Sequence[str] = (), only: Sequence[str] | None = None
    ) -> list[str]:
        """Questions still worth asking: not answered, not skipped, in ``only`` when given, and a follow-up
        question (how the gills meet the stem) only after its answer ("gills"), and not one an answer already told
        (the stem's base after "a cup at the base")."""
        return [
            k
            for k, q in QUESTIONS.items()
            if k not in answers
            and k not in skip
            and (only is None or k in only)
            and (q.after is None or answers.get(q.after[0]) == q.after[1])
            and (q.told_by is None or answers.get(q.told_by[0]) not in q.told_by[1])
        ]

    def question_scores(
        self,
        probs: np.ndarray,
        answers: Mapping[str, str],
        strategy: str,
        skip: Sequence[str] = (),
        only: Sequence[str] | None = None,
    ) -> dict[str, float]:
        """Score of every open question (:meth:`open_questions`) under ``strategy`` (higher: ask first).

        - ``info_gain``: expected reduction of the entropy over species;
        - ``gain_per_effort``: that, divided by log10 of the seconds the question takes (+10);
        - ``top5_gain``: expected probability mass in the top 5 after the answer, minus before;
        - ``fixed:<key>,<key>,...``: that order.
        """
        open_keys = self.open_questions(answers, skip, only)
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
            if strategy in ("info_gain", "gain_per_effort"):
                h0 = -(p[p > 0] * np.log(p[p > 0])).sum()
                h = -(post * np.log(np.maximum(post, 1e-300))).sum(axis=1)
                scores[key] = float(h0 - (pa * h).sum())
                if strategy == "gain_per_effort":
                    scores[key] /= np.log10(QUESTIONS[key].cost_s + 10)
            elif strategy == "top5_gain":
                top5 = np.sort(post, axis=1)[:, -5:].sum(axis=1)
                scores[key] = float((pa * top5).sum() - np.sort(p)[-5:].sum())
            else:
                raise ValueError(
                    f"unknown question strategy {strategy!r} (info_gain, gain_per_effort, top5_gain, fixed:a,b,...)"
                )
        return scores

    def ranked_questions(
        self,
        probs: np.ndarray,
        answers: Mapping[str, str],
        strategy: str,
        skip: Sequence[str] = (),
        can_wait: bool = False,
        only: Sequence[str] | None = None,
    ) -> list[str]:
        """The open questions, best first: the instant ones (seconds, mushroom in hand) before the ones that
        take hours (the spore print), unless the person ``can_wait``."""
        scores = self.question_scores(probs, answers, strategy, skip, only)
        return sorted(
            scores,
            key=lambda k: (not (can_wait or QUESTIONS[k].instant), -scores[k], QUESTION_KEYS.index(k)),
        )

    def next_questions(
        self,
        probs: np.ndarray,
        answers: Mapping[str, str],
        strategy: str,
        skip: Sequence[str] = (),
        can_wait: bool = False,
    ) -> list[dict]:
        """The open questions (not answered, not ``skip``ped: "not sure"), best first (instant ones first
        unless ``can_wait``), each with its options, its effort and how many of the current top 5
        candidates each option keeps (a candidate is kept unless the answer contradicts its known trait)."""
        p = np.asarray(probs)
        top = [i for i in np.argsort(-p)[:CANDIDATES_SHOWN] if p[i] > 0]
        offers = []
        for key in self.ranked_questions(probs, answers, strategy, skip, can_wait):
            q = QUESTIONS[key]
            options = []
            for i, o in enumerate(q.options):
                if o.hidden:
                    continue
                kept = int((self.L[key][i, top] > self.mismatch_of(key)).sum())
                options.append({"value": o.value, "label": o.label, "keeps": kept})
            offers.append(
                {
                    "key": key,
                    "text": q.text,
                    "help": q.help,
                    "effort": q.effort,
                    "instant": q.instant,
                    "options": options,
                }
            )
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
            "effort": q.effort,
            "instant": q.instant,
            "after": list(q.after) if q.after else None,
            "options": [{"value": o.value, "label": o.label, "aliases": list(o.aliases)} for o in q.options],
        }
        for q in QUESTIONS.values()
    ]
