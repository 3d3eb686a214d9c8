"""Build the species catalog (mushroom_id/data/catalog.csv) from the read-only source tables.

Sources (``../shared/data/catalog``): ``labels_933.csv`` (the original's class names),
``taxonomy_inat1000.json`` (iNaturalist taxonomy and common names), ``edibility_seed.csv``,
``edibility_wikipedia.csv`` and ``wildfooduk.json`` (edibility, synonyms, lookalikes), plus the
committed ``data_prep/synonyms.csv`` (hand-curated synonyms and misspellings, each with its evidence).

Decisions (copied to the README):

* **Scope.** Every original label resolves to an accepted species, except the non-species labels
  below. Accepted species = the original names, with synonyms and misspellings merged under one
  accepted name, plus the mushroom-forming species of ``taxonomy_inat1000.json`` whose edibility some
  source knows (any status other than unknown), plus an explicit ``RESTORED`` list (iconic or deadly
  species the original lost; added even if the rule would not add them).
  "Mushroom-forming" = iNaturalist class in ``MACROFUNGI_CLASSES`` (Agaricomycetes, Pezizomycetes,
  Leotiomycetes, Sordariomycetes, Dacrymycetes, Tremellomycetes), minus the microfungal and plant-
  pathogen families in ``EXCLUDED_FAMILIES`` (powdery mildews, tar spots, moulds, cankers, ergot) and
  the lichen-forming genera in ``LICHEN_GENERA``. Every other class is left out: lichens
  (Lecanoromycetes, Candelariomycetes, Arthoniomycetes, and the lichenized Verrucariaceae and
  Trypetheliaceae in Eurotiomycetes/Dothideomycetes), rusts and smuts (Pucciniomycetes,
  Ustilaginomycetes, Exobasidiomycetes), leaf-curl and insect parasites (Taphrinomycetes,
  Laboulbeniomycetes) and other microfungi (Dothideomycetes, Eurotiomycetes, Atractiellomycetes,
  Sareomycetes). Original labels are kept whatever their class (slime moulds, ergot, a rust).
* **Non-species labels.** ``Clavariaceae`` and ``Clavulinaceae`` (families), ``Pleurotus`` (a genus)
  and ``Panaeolus sp`` (a genus-level placeholder) are not species. They are listed in
  ``synonyms.csv`` with kind ``non_species`` and are not catalog rows: ``Catalog.resolve`` returns
  None for them, so they are outside the species label space and their images are dropped (with that
  reason) by the dataset stages. Their genera stay reachable through ``species_in_genus``
  (e.g. Pleurotus ostreatus is a catalog species).
* **Accepted names.** Names joined by a synonym edge (``synonyms.csv``, Wild Food UK's ``synonyms``
  field and its "Old genus / New genus epithet" headings) form one species. Its accepted name is, in
  order: the ``accepted`` column of ``synonyms.csv``; the iNaturalist name; Wild Food UK's name; the
  original label. A group with two candidates at the same level is an error until ``synonyms.csv``
  settles it. A Wild Food UK synonym that would join two species iNaturalist keeps apart is not
  applied (Hygrocybe flavescens/chlorophana, Daedaleopsis tricolor/confragosa); a ``not_synonym`` row
  vetoes any other automatic merge. The same epithet in another genus is never evidence (Morchella
  esculenta and Gyromitra esculenta stay apart); Wild Food UK's infraspecific names (``var.``,
  ``f.``) and misapplied names (``s.``/``auct.``) are not used as synonyms.
  ``synonyms.csv`` kinds: ``synonym``, ``misspelling``, ``non_species``, ``not_synonym``.
* **Edibility.** Per source: seed ``edible``/``toxic``/``no_value`` -> edible/poisonous/none;
  Wikipedia choice/edible/inedible/poisonous/deadly/psychoactive as is, ``unpalatable`` and ``too hard
  to eat`` -> inedible, ``unknown`` -> none; Wild Food UK's plain ``edibility`` field
  Edible/Inedible/Poisonous (never its derived ``edibility_detail.status``), with ``Edible`` read as
  ``edible when cooked`` where its ``edibility_detail.requires_cooking`` says so. Source names are
  matched through the synonym groups (a variety's status counts for its species). An unmapped source
  value is an error.
* **Status words** (each a written rule; the word itself stays in ``edibility_sources`` and the app
  shows it, ``mushroom_id.core.catalog.CAUTION_WORDS``):
  ``choice`` -> choice; ``edible when cooked`` -> edible (the caution "edible only when cooked");
  ``not recommended`` and ``allergic``/``allergenic``/``caution`` are *qualifiers*: next to an edible
  or choice word of the same source they are advice that qualifies it, not a second verdict
  (*Morchella semilibera*, Wikipedia "choice, allergic" -> choice, shown with "allergic reactions
  reported"); alone they mean inedible (do not eat), never poisonous: an allergy some people have is
  not a toxin; ``deadly raw`` -> deadly (a deadly word is a deadly verdict: the most dangerous
  credible status wins, cooking advice does not lower it).
* **Fine sources before the coarse one** (``decide_status``). The original's seed list is binary:
  its ``toxic`` means "not edible", not "poisonous". Wikipedia's mycomorphbox and Wild Food UK name a
  specific status. So: when a fine source knows the species, its status is the merge of the fine
  sources (``mushroom_id.core.catalog.merge_statuses``: the most dangerous known status wins, deadly >
  poisonous > psychoactive > inedible > edible > choice), and the seed word does not change it
  (Trametes versicolor: seed toxic, Wikipedia "too hard to eat", Wild Food UK Inedible -> inedible).
  Wikipedia's "not recommended" next to an edible or choice word of the same row is advice that
  qualifies it, not a second verdict (Amanita caesarea: Wikipedia "choice, not recommended", seed
  edible -> choice; the app shows both words); alone it means inedible. Only when no fine source
  knows the species does the seed word decide, safety first: ``toxic`` -> poisonous (nothing
  contradicts it), ``edible`` -> edible. With no status at all the species is ``unknown``, never
  edible. A real poisonous report (Wikipedia poisonous/deadly, Wild Food UK Poisonous) always wins
  over an edible word.
* **Why, when sources disagree between edible and deadly** (``data_prep/edibility_reasons.csv``):
  a species with an edible or choice word next to a deadly word (*Gyromitra esculenta*: Wikipedia
  "choice, deadly") must have one line from the sources saying why, with its source; the build stops
  without one. The table may also explain other statuses a person would question (*Paxillus
  involutus*, eaten for centuries and deadly). Written to ``edibility_reason`` and
  ``edibility_reason_source``.
* **Sources disagree** (``sources_disagree``) when the words of the sources (all of them, the seed
  included, and several words of one source) do not fit one verdict: an eat word (edible, choice)
  next to a do-not-eat word (deadly, poisonous, psychoactive, inedible, seed toxic), or a toxic word
  (deadly, poisonous, psychoactive) next to a fine source's plain inedible. The seed's ``toxic`` fits
  both inedible and poisonous. The app shows "sources disagree" with each source's word.
* **Family / common name.** Family from the iNaturalist row of the species, else the family of its
  genus in the iNaturalist table, else ``GENUS_FAMILIES`` (left empty where the placement is
  unsettled). Common name from Wild Food UK, else iNaturalist, else the first
  Wikipedia common name; placeholders ("none", "None", "-") are no name. ``url``: the species'
  Wikipedia page from the mycomorphbox table, else its Wild Food UK page.
* **Lookalikes.** "(Genus species)" mentions in Wild Food UK's ``possible_confusion``, resolved
  through the catalog, kept only when they are catalog species, and made symmetric.
* **Curated confusions** (``mushroom_id/data/confusions.csv``, read by ``core.catalog``): every
  species the table names is a catalog species (added like ``RESTORED`` when the scope rule would
  not add it, e.g. *Cortinarius rubellus*, *Lepiota subincarnata*), every genus it names has catalog
  species, and its ``dangerous`` side must come out deadly, poisonous or psychoactive: the build stops
  otherwise.
* The output is deterministic (rows sorted by name) so rebuilding reproduces the committed file.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from mushroom_id.core.catalog import EDIBILITY_LEVELS, LIST_SEP, WRITTEN_COLUMNS, merge_statuses, normalize_name

SYNONYMS_CSV = Path(__file__).resolve().parent / "synonyms.csv"

MACROFUNGI_CLASSES = frozenset(
    {"Agaricomycetes", "Pezizomycetes", "Leotiomycetes", "Sordariomycetes", "Dacrymycetes", "Tremellomycetes"}
)
EXCLUDED_FAMILIES = frozenset(
    {
        "Erysiphaceae",  # powdery mildews
        "Rhytismataceae",  # tar spots
        "Mycosphaerellaceae",  # leaf spots
        "Cryphonectriaceae",  # cankers
        "Clavicipitaceae",  # ergot
    }
)
EXCLUDED_GENERA = frozenset({"Beauveria", "Trichoderma", "Fusicolla", "Neonectria"})  # moulds, cankers
LICHEN_GENERA = frozenset({"Lichenomphalia", "Multiclavula", "Dictyonema", "Cora", "Lepidostroma"})

# Families for catalog genera the iNaturalist table lacks (standard placements; genera whose placement
# is unsettled are left without a family rather than guessed).
GENUS_FAMILIES = {
    "Albatrellus": "Albatrellaceae",
    "Scutiger": "Albatrellaceae",
    "Aspropaxillus": "Tricholomataceae",
    "Leucocybe": "Tricholomataceae",
    "Lepista": "Tricholomataceae",
    "Paralepistopsis": "Tricholomataceae",
    "Cystodermella": "Tricholomataceae",
    "Boletopsis": "Bankeraceae",
    "Bovista": "Lycoperdaceae",
    "Tulostoma": "Agaricaceae",
    "Myriostoma": "Geastraceae",
    "Colus": "Phallaceae",
    "Choiromyces": "Tuberaceae",
    "Tuber": "Tuberaceae",
    "Elaphomyces": "Elaphomycetaceae",
    "Ciboria": "Sclerotiniaceae",
    "Hymenoscyphus": "Helotiaceae",
    "Geoglossum": "Geoglossaceae",
    "Trichoglossum": "Geoglossaceae",
    "Disciotis": "Morchellaceae",
    "Rhizina": "Rhizinaceae",
    "Diatrype": "Diatrypaceae",
    "Poronia": "Xylariaceae",
    "Coriolopsis": "Polyporaceae",
    "Dichomitus": "Polyporaceae",
    "Daedalea": "Fomitopsidaceae",
    "Heterobasidion": "Bondarzewiaceae",
    "Onnia": "Hymenochaetaceae",
    "Corticium": "Corticiaceae",
    "Crinipellis": "Marasmiaceae",
    "Macrocystidia": "Marasmiaceae",
    "Lentinula": "Omphalotaceae",
    "Dermocybe": "Cortinariaceae",
    "Thaxterogaster": "Cortinariaceae",
    "Inosperma": "Inocybaceae",
    "Limacella": "Amanitaceae",
    "Tephrocybe": "Lyophyllaceae",
    "Tulosesus": "Psathyrellaceae",
    "Imperator": "Boletaceae",
    "Lanmaoa": "Boletaceae",
    "Rheubarbariboletus": "Boletaceae",
    "Rubroboletus": "Boletaceae",
    "Gyrodon": "Paxillaceae",
    "Melanogaster": "Paxillaceae",
    "Rhizopogon": "Rhizopogonaceae",
    "Pseudocraterellus": "Hydnaceae",
    "Sistotrema": "Hydnaceae",
    "Spinellus": "Phycomycetaceae",  # a pin mould (Mucorales) parasitising Mycena
    # slime moulds (Myxomycetes, not fungi) among the original labels
    "Arcyria": "Trichiaceae",
    "Hemitrichia": "Trichiaceae",
    "Metatrichia": "Trichiaceae",
    "Trichia": "Trichiaceae",
    "Fuligo": "Physaraceae",
    "Physarum": "Physaraceae",
    "Leocarpus": "Physaraceae",
    "Stemonitis": "Stemonitidaceae",
    "Comatricha": "Stemonitidaceae",
    "Mucilago": "Didymiaceae",
    "Ceratiomyxa": "Ceratiomyxaceae",
}

# Species the original project lost, restored whatever the scope rule says (MISSION.md).
RESTORED = {
    "Amanita muscaria": "the iconic fly agaric; missing from the original (mis-scraped hit count)",
    "Boletus edulis": "the porcini/king bolete; missing from the original (mis-scraped hit count)",
    "Amanita bisporigera": "deadly destroying angel, confused with edible white Agaricus",
    "Amanita ocreata": "deadly western destroying angel",
    "Agaricus xanthodermus": "the toxic yellow stainer, confused with edible Agaricus",
    "Agaricus bisporus": "the button mushroom: cultivated, so not among iNaturalist's most observed wild fungi",
}

SEED_STATUS = {"edible": "edible", "toxic": "poisonous", "no_value": None}
WIKIPEDIA_STATUS = {
    "choice": "choice",
    "edible": "edible",
    "inedible": "inedible",
    "poisonous": "poisonous",
    "deadly": "deadly",
    "psychoactive": "psychoactive",
    "unknown": None,
    "not recommended": "inedible",
    "unpalatable": "inedible",
    "too hard to eat": "inedible",
    "allergic": "inedible",  # alone; next to an edible word a qualifier (QUALIFIERS)
    "allergenic": "inedible",
    "caution": "inedible",
    "edible when cooked": "edible",
    "deadly raw": "deadly",
}
WILDFOODUK_STATUS = {
    "edible": "edible",
    "edible when cooked": "edible",  # "Edible" with edibility_detail.requires_cooking
    "inedible": "inedible",
    "poisonous": "poisonous",
}
SOURCE_STATUS = {"seed": SEED_STATUS, "wikipedia": WIKIPEDIA_STATUS, "wildfooduk": WILDFOODUK_STATUS}
FINE_SOURCES = frozenset({"wikipedia", "wildfooduk"})  # name a specific status
COARSE_SOURCES = frozenset({"seed"})  # the original's binary list: "toxic" means "not edible"

# Verdict of one source word, for the "sources disagree" flag.
_EAT, _TOXIC, _INEDIBLE, _NOT_EDIBLE = "eat", "toxic", "inedible", "not edible"
_VERDICT = {
    "choice": _EAT,
    "edible": _EAT,
    "deadly": _TOXIC,
    "poisonous": _TOXIC,
    "psychoactive": _TOXIC,
    "inedible": _INEDIBLE,
}
_NO_NAME = frozenset({"", "none", "-", "n/a", "unknown"})


def source_status(source: str, value: str) -> str | None:
    """The catalog status one source word maps to (None: the word carries no status)."""
    mapping = SOURCE_STATUS[source]
    key = value.strip().lower()
    if key not in mapping:
        raise ValueError(f"{source}: unmapped edibility value {value!r}")
    return mapping[key]


# Advice words that qualify an edible word of the same source instead of contradicting it
# (Wikipedia's "choice, not recommended": edible, but the source advises against picking it;
# "choice, allergic": edible, but some people react to it). Alone they mean inedible.
QUALIFIERS = frozenset(
    {("wikipedia", "not recommended"), ("wikipedia", "allergic"), ("wikipedia", "allergenic"), ("wikipedia", "caution")}
)
REASONS_CSV = Path(__file__).resolve().parent / "edibility_reasons.csv"
_EAT_STATUSES = frozenset({"edible", "choice"})


def needs_reason(evidence: Iterable[tuple[str, str]]) -> bool:
    """True when the sources hold an edible or choice word next to a deadly word (Gyromitra)."""
    statuses = {source_status(s, v) for s, v in evidence}
    return bool(statuses & _EAT_STATUSES) and "deadly" in statuses


def _fine_statuses(evidence: list[tuple[str, str]]) -> list[str]:
    words: dict[str, list[str]] = defaultdict(list)
    for source, value in evidence:
        if source in FINE_SOURCES:
            words[source].append(value.strip().lower())
    out = []
    for source, values in words.items():
        statuses = [source_status(source, v) or "" for v in values]
        eats = any(st in ("edible", "choice") for st in statuses)
        out += [st for v, st in zip(values, statuses, strict=True) if not (eats and (source, v) in QUALIFIERS)]
    return out


def decide_status(evidence: Iterable[tuple[str, str]]) -> str:
    """The species' status from ``(source, word)`` pairs: the fine sources' safety-first merge when
    any fine source knows the species, else the seed word's (toxic -> poisonous), else unknown."""
    evidence = list(evidence)
    status = merge_statuses(_fine_statuses(evidence))
    if status != "unknown":
        return status
    return merge_statuses(source_status(s, v) or "" for s, v in evidence if s in COARSE_SOURCES)


def sources_disagree(evidence: Iterable[tuple[str, str]]) -> bool:
    """True when the source words do not fit one verdict (see the module docstring)."""
    verdicts = set()
    for source, value in evidence:
        status = source_status(source, value)
        if status is None:
            continue
        if source in COARSE_SOURCES and status == "poisonous":
            verdicts.add(_NOT_EDIBLE)  # the seed's "toxic": not edible, of whatever kind
        else:
            verdicts.add(_VERDICT[status])
    if _EAT in verdicts and verdicts - {_EAT}:
        return True
    return _TOXIC in verdicts and _INEDIBLE in verdicts


_BINOMIAL = re.compile(r"^[A-Z][a-z]+ [a-z][a-z-]*[a-z]$")
_INFRA = re.compile(r"\b(var|f|subsp|ssp|forma)\.?\s")
_IN_TEXT = re.compile(r"\b([A-Z][a-z]+) ([a-z][a-z-]*[a-z])\b")


# --------------------------------------------------------------------------- names


@dataclass(frozen=True)
class ParsedName:
    species: str  # "Genus epithet"
    infraspecific: bool = False
    old_combination: str | None = None  # "Boletus badius" from the heading "Boletus / Imleria badia"


def parse_name(raw: str | None) -> ParsedName | None:
    """A source's name as a binomial, or None when it is not a species name."""
    if not raw:
        return None
    text = re.sub(r"(?<=[a-z])(var|f|subsp)\.", r" \1. ", raw)  # "phalloidesvar.alba"
    text = " ".join(text.replace("_", " ").split()).strip(" .,;")
    if re.search(r"\b(s|auct|sensu)\.?\s|\bspp?\b\.?|\bsect\.", text + " "):
        return None  # misapplied names, genus- or section-level
    old = None
    if "/" in text:
        left, right = (part.strip() for part in text.split("/", 1))
        tokens = right.split()
        if len(tokens) < 2 or " " in left:
            return None
        old = _capitalize(f"{left} {tokens[1]}")
        text = right
    infra = bool(_INFRA.search(text + " "))
    tokens = text.split()
    if len(tokens) < 2:
        return None
    species = _capitalize(" ".join(tokens[:2]))
    if not _BINOMIAL.match(species):
        return None
    if old is not None and not _BINOMIAL.match(old):
        old = None
    return ParsedName(species, infra, old)


def _capitalize(name: str) -> str:
    genus, _, rest = name.strip().partition(" ")
    return f"{genus[:1].upper()}{genus[1:].lower()} {rest.lower()}".strip()


def display(name: str) -> str:
    """Canonical spelling for output: single spaces."""
    return " ".join(name.split())


class _Groups:
    """Names merged into species, one union at a time (vetoes are checked between unions):
    scipy's DisjointSet; asking for a name's root adds the name."""

    def __init__(self):
        from scipy.cluster.hierarchy import DisjointSet

        self._sets = DisjointSet()

    def __contains__(self, key: str) -> bool:
        return key in self._sets

    def __iter__(self):
        return iter(self._sets)

    def add(self, key: str) -> None:
        if key not in self._sets:
            self._sets.add(key)

    def find(self, key: str) -> str:
        self.add(key)
        return self._sets[key]

    def union(self, a: str, b: str) -> None:
        self.add(a)
        self.add(b)
        self._sets.merge(a, b)


# --------------------------------------------------------------------------- sources


@dataclass
class Sources:
    labels: list[str]
    taxonomy: list[dict]
    seed: list[dict]
    wikipedia: list[dict]
    wildfooduk: list[dict]
    synonyms: list[dict]
    reasons: list[dict] = field(default_factory=list)  # edibility_reasons.csv
    confusions: list[dict] = field(default_factory=list)  # mushroom_id/data/confusions.csv


def read_sources(
    source_dir: Path,
    synonyms_csv: Path = SYNONYMS_CSV,
    reasons_csv: Path | None = REASONS_CSV,
    confusions_csv: Path | None = None,
) -> Sources:
    """The source tables; ``confusions_csv`` None: the shipped confusion table."""
    from mushroom_id.core.catalog import read_confusion_rows

    source_dir = Path(source_dir)

    def rows(name: str) -> list[dict]:
        with open(source_dir / name, newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    with open(synonyms_csv, newline="", encoding="utf-8") as f:
        synonyms = list(csv.DictReader(f))
    return Sources(
        labels=[r["Names"] for r in rows("labels_933.csv")],
        taxonomy=json.loads((source_dir / "taxonomy_inat1000.json").read_text(encoding="utf-8")),
        seed=rows("edibility_seed.csv"),
        wikipedia=rows("edibility_wikipedia.csv"),
        wildfooduk=json.loads((source_dir / "wildfooduk.json").read_text(encoding="utf-8")),
        synonyms=synonyms,
        reasons=read_reasons(reasons_csv) if reasons_csv is not None else [],
        confusions=read_confusion_rows(confusions_csv),
    )


def read_reasons(reasons_csv: Path = REASONS_CSV) -> list[dict]:
    with open(reasons_csv, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    for row in rows:
        if not all((row.get(k) or "").strip() for k in ("species", "reason", "source")):
            raise ValueError(f"{reasons_csv}: every row needs species, reason and source: {row}")
    return rows


def read_labels(source_dir: Path) -> list[str]:
    """The original 933 class names, exactly as written (CRLF handled by the csv module)."""
    with open(Path(source_dir) / "labels_933.csv", newline="", encoding="utf-8") as f:
        return [r["Names"] for r in csv.DictReader(f)]


def read_synonyms(synonyms_csv: Path = SYNONYMS_CSV) -> list[dict]:
    with open(synonyms_csv, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def in_macrofungi_scope(row: dict) -> bool:
    return (
        row.get("class") in MACROFUNGI_CLASSES
        and row.get("family") not in EXCLUDED_FAMILIES
        and row.get("genus") not in EXCLUDED_GENERA | LICHEN_GENERA
    )


# --------------------------------------------------------------------------- build


class _ListDict(defaultdict):
    def update(self, other: dict[str, list[str]]) -> None:  # extend the lists instead of replacing
        for key, names in other.items():
            self[key].extend(names)


@dataclass
class BuildReport:
    labels: int = 0
    non_species: list[str] = field(default_factory=list)
    merges: list[tuple[str, str, str]] = field(default_factory=list)  # (label, accepted, evidence)
    added: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    from_confusions: list[str] = field(default_factory=list)  # species added because confusions.csv names them
    out_of_scope_known: list[str] = field(default_factory=list)  # iNat non-macrofungi with a status
    unmatched_source_names: Counter = field(default_factory=Counter)
    kept_apart: list[str] = field(default_factory=list)  # Wild Food UK synonyms iNaturalist splits
    lookalike_pairs: int = 0
    label_species: int = 0  # accepted species the species labels map to
    status_counts: Counter = field(default_factory=Counter)
    disagree: list[str] = field(default_factory=list)  # species whose sources disagree
    rule_changes: _ListDict = field(default_factory=lambda: _ListDict(list))  # what decide_status changed

    def summary(self) -> str:
        rows = sum(self.status_counts.values())
        species_labels = self.labels - len(self.non_species)
        lines = [
            f"catalog: {rows} accepted species",
            "  edibility: " + ", ".join(f"{s} {self.status_counts.get(s, 0)}" for s in EDIBILITY_LEVELS),
            f"  original labels: {self.labels} = {len(self.non_species)} non-species "
            f"({', '.join(self.non_species)}) + {species_labels} species labels -> "
            f"{self.label_species} accepted species ({species_labels - self.label_species} merged into "
            f"another label's species); {len(self.merges)} labels differ from their accepted name",
            f"  added from iNaturalist (known edibility, macrofungi): {len(self.added)}; "
            f"restored list: {', '.join(self.restored) or '-'}; added because the confusion table names them: "
            f"{', '.join(self.from_confusions) or '-'}",
            f"  lookalike pairs: {self.lookalike_pairs}; iNaturalist non-macrofungi left out despite a "
            f"status: {len(self.out_of_scope_known)}",
            "  source names matching no catalog species: "
            + ", ".join(f"{k} {v}" for k, v in sorted(self.unmatched_source_names.items())),
            f"  sources disagree: {len(self.disagree)} species; the rule (fine sources first, 'not recommended' as "
            "advice) vs merging every word alike: "
            + ", ".join(f"{k}: {len(v)}" for k, v in sorted(self.rule_changes.items())),
        ]
        return "\n".join(lines)

    def details(self) -> str:
        lines = ["merges (label -> accepted: evidence):"]
        lines += [f"  {a} -> {b}: {e}" for a, b, e in self.merges]
        lines.append("added species:")
        lines += [f"  {n}" for n in self.added]
        lines.append("Wild Food UK synonyms not applied (iNaturalist keeps both species):")
        lines += [f"  {n}" for n in self.kept_apart]
        for change, names in sorted(self.rule_changes.items()):
            lines.append(f"{change} ({len(names)}):")
            lines += [f"  {n}" for n in sorted(names)]
        lines.append(f"sources disagree ({len(self.disagree)}):")
        lines += [f"  {n}" for n in sorted(self.disagree)]
        if self.out_of_scope_known:
            lines.append("left out (not macrofungi) despite a status:")
            lines += [f"  {n}" for n in self.out_of_scope_known]
        return "\n".join(lines)


def build_catalog(
    source_dir: Path,
    synonyms_csv: Path = SYNONYMS_CSV,
    reasons_csv: Path | None = REASONS_CSV,
    confusions_csv: Path | None = None,
) -> tuple[list[dict], BuildReport]:
    """All catalog rows (sorted by name) and a report of what was merged and added."""
    src = read_sources(source_dir, synonyms_csv, reasons_csv, confusions_csv)
    report = BuildReport(labels=len(src.labels))
    uf = _Groups()
    spelling: dict[str, str] = {}  # key -> preferred display spelling
    edges: list[tuple[str, str, str]] = []  # (key, key, why)

    def node(name: str, prefer: bool = False) -> str:
        key = normalize_name(name)
        uf.add(key)
        if prefer or key not in spelling:
            spelling[key] = display(name)
        return key

    vetoed: set[frozenset[str]] = set()

    def link(name: str, target: str, why: str, automatic: bool = False) -> None:
        a, b = node(name), node(target)
        if frozenset((a, b)) in vetoed:
            return
        ra, rb = uf.find(a), uf.find(b)
        inat_a, inat_b = inat_in.get(ra, set()), inat_in.get(rb, set())
        if automatic and ra != rb and inat_a and inat_b:
            # iNaturalist keeping two species apart beats a Wild Food UK synonym list
            report.kept_apart.append(f"{display(name)} / {display(target)} ({why})")
            return
        if ra != rb:
            edges.append((a, b, why))
            uf.union(a, b)
            inat_in[uf.find(a)] = inat_a | inat_b

    inat: dict[str, dict] = {}
    for row in src.taxonomy:
        inat[node(row["species"], prefer=True)] = row
    inat_in: dict[str, set[str]] = {key: {key} for key in inat}  # group root -> iNaturalist names

    # 1. the hand-curated table
    non_species = {}
    hand_accepted: dict[str, str] = {}  # key -> accepted display name
    for row in src.synonyms:
        kind = row["kind"].strip()
        if kind == "non_species":
            non_species[normalize_name(row["name"])] = row["name"]
            continue
        if kind == "not_synonym":
            vetoed.add(frozenset((normalize_name(row["name"]), normalize_name(row["accepted"]))))
            continue
        if kind not in ("synonym", "misspelling"):
            raise ValueError(f"synonyms.csv: unknown kind {kind!r} for {row['name']!r}")
        if not row["accepted"].strip() or not row["evidence"].strip():
            raise ValueError(f"synonyms.csv: {row['name']!r} needs an accepted name and evidence")
        link(row["name"], row["accepted"], f"{row['evidence']} [synonyms.csv]")
        hand_accepted[normalize_name(row["accepted"])] = display(row["accepted"])
    report.non_species = [non_species[k] for k in sorted(non_species)]

    # 2. names from the sources
    label_keys = {}
    for label in src.labels:
        key = normalize_name(label)
        if key in non_species:
            continue
        label_keys[node(label, prefer=True)] = label
    wf_heads: dict[str, list[dict]] = defaultdict(list)
    for entry in src.wildfooduk:
        parsed = parse_name(entry["scientific_name"])
        if parsed is None:
            report.unmatched_source_names["wildfooduk (not a species)"] += 1
            continue
        head = node(parsed.species)
        wf_heads[head].append(entry)
        if parsed.old_combination:
            link(
                parsed.old_combination,
                parsed.species,
                f"Wild Food UK heading {entry['scientific_name']!r}",
                automatic=True,
            )
        for raw in re.split(r",|\.\s+(?=[A-Z])", entry.get("synonyms") or ""):
            syn = parse_name(raw)
            if syn is None or syn.infraspecific or syn.old_combination:
                continue
            link(
                syn.species,
                parsed.species,
                f"Wild Food UK lists {syn.species} as synonym of {parsed.species}",
                automatic=True,
            )

    # names the build adds whatever the sources hold (RESTORED, the confusion table's species): nodes
    # now, so that their sources' statuses are matched to them
    named = list(RESTORED) + [
        n for row in src.confusions for n in (row["dangerous"], row["confused_with"]) if " " in n.strip()
    ]
    for name in named:
        node(name)

    # 3. groups and their accepted names
    groups: dict[str, set[str]] = defaultdict(set)
    for key in uf:
        groups[uf.find(key)].add(key)

    def accepted_of(members: set[str]) -> str:
        for level, candidates in (
            ("synonyms.csv accepted", {hand_accepted[k] for k in members if k in hand_accepted}),
            ("iNaturalist", {inat[k]["species"] for k in members if k in inat}),
            ("Wild Food UK", {spelling[k] for k in members if k in wf_heads}),
            ("label", {display(label_keys[k]) for k in members if k in label_keys}),
        ):
            if len(candidates) > 1:
                raise ValueError(
                    f"names {sorted(members)} form one species with several {level} names "
                    f"{sorted(candidates)}: settle it in synonyms.csv"
                )
            if candidates:
                return candidates.pop()
        return spelling[min(members)]

    accepted_by_root = {root: accepted_of(members) for root, members in groups.items()}

    def resolve(name: str) -> str | None:
        key = normalize_name(name)
        return accepted_by_root[uf.find(key)] if key in uf else None

    # 4. edibility evidence per group root
    evidence_by_root: dict[str, set[tuple[str, str, str]]] = defaultdict(set)  # (source, value, as-name)

    def add_status(source: str, raw_name: str, value: str, mapping: dict[str, str | None]) -> None:
        key_value = value.strip().lower()
        if key_value not in mapping:
            raise ValueError(f"{source}: unmapped edibility value {value!r} for {raw_name!r}")
        if mapping[key_value] is None:
            return
        names = _split_multi(raw_name)
        if not names:
            report.unmatched_source_names[source] += 1
            return
        for name in names:
            key = normalize_name(name)
            if key not in uf:
                report.unmatched_source_names[source] += 1
                continue
            evidence_by_root[uf.find(key)].add((source, value.strip(), display(name)))

    for row in src.seed:
        add_status("seed", row["name"], row["three_classes"], SEED_STATUS)
    for row in src.wikipedia:
        for value in row["edible"].split(","):
            if value.strip():
                add_status("wikipedia", row["scientific name"], value, WIKIPEDIA_STATUS)
    for entry in src.wildfooduk:
        word = entry["edibility"]
        if word.strip().lower() == "edible" and (entry.get("edibility_detail") or {}).get("requires_cooking"):
            word = "Edible when cooked"
        add_status("wildfooduk", entry["scientific_name"], word, WILDFOODUK_STATUS)

    def status_of(root: str) -> str:
        return decide_status((s, v) for s, v, _ in evidence_by_root.get(root, ()))

    def disagree(root: str) -> bool:
        return sources_disagree((s, v) for s, v, _ in evidence_by_root.get(root, ()))

    # 5. which groups are catalog species
    species_roots: set[str] = {uf.find(key) for key in label_keys}
    report.label_species = len(species_roots)
    for key, row in sorted(inat.items()):
        root = uf.find(key)
        if root in species_roots or status_of(root) == "unknown":
            continue
        if in_macrofungi_scope(row):
            species_roots.add(root)
            report.added.append(accepted_by_root[root])
        else:
            report.out_of_scope_known.append(f"{row['species']} ({row['class']}, {row['family']})")
    for name in RESTORED:
        root = uf.find(node(name))
        if root not in species_roots:
            species_roots.add(root)
            report.restored.append(f"{accepted_by_root[root]} (added only by RESTORED)")
        else:
            report.restored.append(accepted_by_root[root])
    for row in src.confusions:
        for name in (row["dangerous"], row["confused_with"]):
            if " " not in name.strip():
                continue  # a genus: checked below
            root = uf.find(normalize_name(name))
            if root not in species_roots:
                species_roots.add(root)
                report.from_confusions.append(accepted_by_root[root])
    report.added.sort()

    def why(key: str, accepted: str) -> str:
        if key == normalize_name(accepted):
            return "whitespace"
        group_edges = [e for e in edges if e[0] in groups[uf.find(key)]]
        direct = [w for a, b, w in group_edges if key in (a, b)]
        return " | ".join(sorted(set(direct or [w for _, _, w in group_edges])))

    for label in src.labels:
        key = normalize_name(label)
        if key in non_species:
            continue
        accepted = accepted_by_root[uf.find(key)]
        if label != accepted:
            report.merges.append((label, accepted, why(key, accepted)))
    report.merges.sort(key=lambda m: (m[1], m[0]))

    # 6. lookalikes (symmetric, catalog species only)
    lookalikes: dict[str, set[str]] = defaultdict(set)
    for entry in src.wildfooduk:
        parsed = parse_name(entry["scientific_name"])
        if parsed is None:
            continue
        root = uf.find(normalize_name(parsed.species))
        if root not in species_roots:
            continue
        for mention in _mentions(entry.get("possible_confusion") or ""):
            other = normalize_name(mention)
            if other not in uf:
                continue
            other_root = uf.find(other)
            if other_root in species_roots and other_root != root:
                a, b = accepted_by_root[root], accepted_by_root[other_root]
                lookalikes[a].add(b)
                lookalikes[b].add(a)
    report.lookalike_pairs = sum(len(v) for v in lookalikes.values()) // 2

    # 7. rows
    genus_family = _genus_families(src.taxonomy)
    wiki_common, wiki_url = {}, {}
    for row in src.wikipedia:
        parsed = parse_name(row["scientific name"])
        if not parsed:
            continue
        root = uf.find(normalize_name(parsed.species))
        first = _name_or_empty((row.get("common names") or "").split(",")[0])
        if first:
            wiki_common.setdefault(root, first)
        url = (row.get("URL") or "").strip()
        if url.startswith("https://") and not parsed.infraspecific:
            wiki_url.setdefault(root, url)

    rows = []
    for root in species_roots:
        members = groups[root]
        name = accepted_by_root[root]
        accepted_key = normalize_name(name)
        genus = name.split()[0]
        inat_rows = sorted((inat[k] for k in members if k in inat), key=lambda r: r["species"] != name)
        wf_entries = sorted(
            (e for k in members if k in wf_heads for e in wf_heads[k]),
            key=lambda e: (parse_name(e["scientific_name"]).infraspecific, e["scientific_name"]),
        )
        family = inat_rows[0]["family"] if inat_rows else genus_family.get(genus, GENUS_FAMILIES.get(genus, ""))
        wf_species = [e for e in wf_entries if not parse_name(e["scientific_name"]).infraspecific]
        common = (
            _name_or_empty(wf_species[0]["name"] if wf_species else "")
            or _name_or_empty(inat_rows[0].get("commonName") if inat_rows else "")
            or _name_or_empty(wf_entries[0]["name"] if wf_entries else "")
            or wiki_common.get(root, "")
        )
        url = wiki_url.get(root) or next(
            (e["source_url"] for e in wf_species if str(e.get("source_url") or "").startswith("https://")), ""
        )
        synonyms = sorted(
            {spelling[k] for k in members if k != accepted_key and normalize_name(spelling[k]) != accepted_key}
        )
        sources = sorted(
            f"{s}:{v}" + ("" if normalize_name(n) == accepted_key else f" (as {n})")
            for s, v, n in evidence_by_root.get(root, ())
        )
        status = status_of(root)
        report.status_counts[status] += 1
        if disagree(root):
            report.disagree.append(name)
        report.rule_changes.update(_rule_change(evidence_by_root.get(root, ()), status, name))
        rows.append(
            {
                "name": name,
                "synonyms": LIST_SEP.join(synonyms),
                "genus": genus,
                "family": family,
                "common_name": _sentence_case(common),
                "edibility": status,
                "edibility_sources": LIST_SEP.join(sources),
                "lookalikes": LIST_SEP.join(sorted(lookalikes.get(name, ()))),
                "in_original": "true" if any(k in label_keys for k in members) else "false",
                "sources_disagree": "true" if disagree(root) else "false",
                "url": url,
            }
        )
    rows.sort(key=lambda r: r["name"])
    _check_hand_table(src.synonyms, resolve)
    _add_reasons(rows, src.reasons, resolve)
    _check_confusions(rows, src.confusions, resolve)
    return rows, report


def _add_reasons(rows: list[dict], reasons: list[dict], resolve) -> None:
    """``edibility_reason(_source)`` from the reasons table; every species whose sources say both
    edible and deadly must have one."""
    by_name = {}
    for row in reasons:
        name = resolve(row["species"])
        if name is None:
            raise ValueError(f"edibility_reasons.csv: {row['species']!r} is not a catalog species")
        by_name[name] = row
    missing = []
    for row in rows:
        reason = by_name.get(row["name"])
        row["edibility_reason"] = reason["reason"].strip() if reason else ""
        row["edibility_reason_source"] = reason["source"].strip() if reason else ""
        evidence = [tuple(e.split(" (as ")[0].split(":", 1)) for e in row["edibility_sources"].split(LIST_SEP) if e]
        if not reason and needs_reason(evidence):
            missing.append(row["name"])
    if missing:
        raise ValueError(
            f"sources say both edible and deadly for {missing}: add one line why, with its source, "
            f"to {REASONS_CSV.name}"
        )


def _check_confusions(rows: list[dict], confusions: list[dict], resolve) -> None:
    status = {row["name"]: row["edibility"] for row in rows}
    genera = {row["genus"] for row in rows}
    for c in confusions:
        dangerous = resolve(c["dangerous"])
        if status.get(dangerous) not in ("deadly", "poisonous", "psychoactive"):
            raise ValueError(
                f"confusions.csv lists {c['dangerous']!r} as the dangerous species, but the catalog says "
                f"{status.get(dangerous, 'not a species')!r}"
            )
        other = c["confused_with"].strip()
        if " " not in other and other not in genera:
            raise ValueError(f"confusions.csv names the genus {other!r}, which has no catalog species")


def _split_multi(raw: str) -> list[str]:
    """Names in a source cell; "Scleroderma citrinum, areolatum, verrucosum" gives three."""
    parts = [p.strip() for p in raw.split(",") if p.strip()]
    if not parts:
        return []
    first = parse_name(parts[0])
    if first is None:
        return []
    names = [first.species]
    genus = first.species.split()[0]
    for extra in parts[1:]:
        if re.fullmatch(r"[a-z][a-z-]+", extra):
            names.append(f"{genus} {extra}")
    return names


def _mentions(text: str) -> list[str]:
    """Binomials written in parentheses, e.g. "Deathcap (Amanita phalloides)"."""
    found = []
    for inner in re.findall(r"\(([^()]*)\)", text):
        inner = re.sub(r"(?<=[a-z])(var|f|subsp)\.", r" \1. ", inner)
        found += [f"{g} {e}" for g, e in _IN_TEXT.findall(inner)]
    return found


def _genus_families(taxonomy: Iterable[dict]) -> dict[str, str]:
    counts: dict[str, Counter] = defaultdict(Counter)
    for row in taxonomy:
        if row.get("genus") and row.get("family"):
            counts[row["genus"]][row["family"]] += 1
    return {g: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for g, c in counts.items()}


def _name_or_empty(text: str | None) -> str:
    """A common name, or "" for the sources' placeholders ("none", "None", "-")."""
    text = " ".join(str(text or "").split())
    return "" if text.lower() in _NO_NAME else text


def _rule_change(evidence: Iterable[tuple[str, str, str]], status: str, name: str) -> dict[str, list[str]]:
    """What the fine-before-coarse rule changed for one species (for the build report)."""
    pairs = [(s, v) for s, v, _ in evidence]
    old = merge_statuses(source_status(s, v) or "" for s, v in pairs)  # every source alike
    if old == status:
        if old == "poisonous" and not any(s in FINE_SOURCES and source_status(s, v) for s, v in pairs):
            return {"poisonous from the seed list alone": [name]}
        return {}
    return {f"{old} -> {status}": [name]}


def _sentence_case(text: str) -> str:
    text = " ".join(text.split())
    return text[:1].upper() + text[1:]


def _check_hand_table(rows: list[dict], resolve) -> None:
    for row in rows:
        if row["kind"] == "non_species":
            continue
        if row["kind"] == "not_synonym":
            a, b = resolve(row["name"]), resolve(row["accepted"])
            if a is not None and a == b:
                raise ValueError(f"synonyms.csv keeps {row['name']!r} and {row['accepted']!r} apart, but they merged")
            continue
        got = resolve(row["name"])
        if got != display(row["accepted"]):
            raise ValueError(f"synonyms.csv says {row['name']!r} -> {row['accepted']!r} but the groups give {got!r}")


def write_catalog(rows: list[dict], out: Path) -> None:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(out.suffix + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=WRITTEN_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)
    tmp.replace(out)


# --------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mushroom_id.core import paths

    parser.add_argument("--source", type=Path, default=None, help=f"default: {paths.shared_catalog_dir()}")
    parser.add_argument("--out", type=Path, default=None, help=f"default: {paths.CATALOG_CSV}")
    parser.add_argument("--synonyms", type=Path, default=SYNONYMS_CSV, help="hand-curated synonyms table")
    parser.add_argument("--reasons", type=Path, default=REASONS_CSV, help="one line why, per disputed status")
    parser.add_argument(
        "--confusions", type=Path, default=None, help=f"curated dangerous confusions (default: {paths.CONFUSIONS_CSV})"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="list every merge and added species")


def run(args: argparse.Namespace) -> int:
    from mushroom_id.core import paths

    source = args.source or paths.shared_catalog_dir()
    out = args.out or paths.CATALOG_CSV
    rows, report = build_catalog(source, args.synonyms, args.reasons, args.confusions)
    write_catalog(rows, out)
    print(report.summary())
    if args.verbose:
        print(report.details())
    print(f"wrote {out}")
    return 0
