"""The species catalog: one source of truth for species names, synonyms, edibility and lookalikes.

The table ``mushroom_id/data/catalog.csv`` is built by ``python -m data_prep catalog`` from the
read-only source tables; this module only reads it (stdlib ``csv``, no pandas), so the app, training
and data preparation all see the same names and statuses.

Edibility is safety-first: among the specific sources (Wikipedia, Wild Food UK) the most dangerous
*known* status wins; the original project's coarse "toxic" (= not edible) decides only when no
specific source knows the species; a species no source knows is ``"unknown"``, never edible.
``Species.sources_disagree`` marks species whose sources' words do not fit one verdict; the app shows
each source's word (``Species.source_words``), the cautions that qualify an edible word
(``Species.cautions``: "allergic reactions reported", "edible only when cooked") and, where sources
disagree between edible and deadly, one line saying why (``Species.edibility_reason``). The rule is in
``data_prep/catalog.py``.

Lookalikes come from two sources, each kept with its reason: the curated table of dangerous
confusions ``mushroom_id/data/confusions.csv`` (``Catalog.confusions``: every pair with why and a
source, "known confusion") and the lookalikes parsed from Wild Food UK's confusion notes
(``Species.lookalikes``). ``Catalog.lookalikes`` is their union.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mushroom_id.core import paths

# Most dangerous first. "unknown" sits between the statuses that say "do not eat" and the edible
# ones, but merge_statuses never lets it beat a known status.
EDIBILITY_LEVELS = ("deadly", "poisonous", "psychoactive", "inedible", "unknown", "edible", "choice")
DANGEROUS = frozenset({"deadly", "poisonous", "psychoactive"})
EDIBLE = frozenset({"edible", "choice"})
_RANK = {status: i for i, status in enumerate(EDIBILITY_LEVELS)}

LIST_SEP = "; "
CSV_COLUMNS = (
    "name",
    "synonyms",
    "genus",
    "family",
    "common_name",
    "edibility",
    "edibility_sources",
    "lookalikes",
    "in_original",
)
# Written by ``python -m data_prep catalog`` and read when present (older tables load without them).
OPTIONAL_COLUMNS = ("sources_disagree", "url", "edibility_reason", "edibility_reason_source")
WRITTEN_COLUMNS = CSV_COLUMNS + OPTIONAL_COLUMNS
# How each source is named to people, and what its words mean.
SOURCE_LABELS = {
    "wikipedia": "Wikipedia",
    "wildfooduk": "Wild Food UK",
    "seed": "original project's list",
}
SOURCE_NOTES = {("seed", "toxic"): "toxic (= not edible)"}
# Source words that qualify an edible verdict instead of giving one (data_prep.catalog's rule): shown
# to people as cautions beside the status.
CAUTION_WORDS = {
    "allergic": "allergic reactions reported",
    "allergenic": "allergic reactions reported",
    "caution": "adverse reactions reported",
    "not recommended": "not recommended",
    "edible when cooked": "edible only when cooked",
    "deadly raw": "deadly raw",
}
CONFUSION_COLUMNS = ("dangerous", "confused_with", "why", "source", "url")
WILD_FOOD_UK_NOTES = "Wild Food UK's confusion notes"


def merge_statuses(statuses: Iterable[str]) -> str:
    """Combine statuses from several sources: the most dangerous known one wins.

    Empty strings and ``"unknown"`` carry no information and are ignored; with nothing known the
    result is ``"unknown"``. An unrecognised status raises ``ValueError`` rather than being guessed.
    """
    known = []
    for status in statuses:
        status = (status or "").strip().lower()
        if not status or status == "unknown":
            continue
        if status not in _RANK:
            raise ValueError(f"unknown edibility status {status!r}; expected one of {EDIBILITY_LEVELS}")
        known.append(status)
    return min(known, key=_RANK.__getitem__) if known else "unknown"


def is_dangerous(status: str) -> bool:
    """True for statuses that must raise a warning (deadly, poisonous, psychoactive)."""
    return (status or "").strip().lower() in DANGEROUS


def normalize_name(name: str) -> str:
    """Lookup key for a name: case-insensitive, ``_`` as space, whitespace collapsed."""
    return " ".join(str(name).replace("_", " ").split()).lower()


def _split_list(value: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in value.split(LIST_SEP.strip()) if part.strip())


@dataclass(frozen=True)
class Species:
    name: str
    genus: str
    family: str
    common_name: str
    edibility: str
    sources: tuple[str, ...]  # e.g. ("wikipedia:deadly", "seed:toxic")
    synonyms: tuple[str, ...]
    lookalikes: tuple[str, ...]  # accepted names of catalog species
    in_original: bool  # one of the original project's 933 labels maps to it
    sources_disagree: bool = False  # the sources' words do not fit one verdict (data_prep.catalog)
    url: str = ""  # the species' page (Wikipedia, else Wild Food UK); "" when none is known
    edibility_reason: str = ""  # one line why, where sources disagree between edible and deadly (or curated)
    edibility_reason_source: str = ""  # where that line comes from

    @property
    def dangerous(self) -> bool:
        return is_dangerous(self.edibility)

    def cautions(self) -> list[str]:
        """The qualifying words of the sources, as people read them ("allergic reactions reported
        (Wikipedia)", "edible only when cooked (Wild Food UK)"), in source order."""
        out = []
        for entry in self.sources:
            source, _, value = entry.split(" (as ")[0].partition(":")
            text = CAUTION_WORDS.get(value.strip().lower())
            if text:
                line = f"{text} ({SOURCE_LABELS.get(source, source)})"
                if line not in out:
                    out.append(line)
        return out

    def source_words(self) -> list[tuple[str, str]]:
        """``[(source as people name it, its word), ...]``: the fine sources first, one entry per
        source with its words joined ("Wikipedia", "deadly, choice")."""
        words: dict[str, list[str]] = {}
        for entry in self.sources:
            source, _, value = entry.split(" (as ")[0].partition(":")
            text = SOURCE_NOTES.get((source, value.lower()), value.lower())
            words.setdefault(source, [])
            if text not in words[source]:
                words[source].append(text)
        order = list(SOURCE_LABELS)
        ranked = sorted(words, key=lambda s: order.index(s) if s in order else len(order))
        return [(SOURCE_LABELS.get(s, s), ", ".join(words[s])) for s in ranked]

    @classmethod
    def from_row(cls, row: dict[str, str]) -> Species:
        return cls(
            name=row["name"],
            genus=row["genus"],
            family=row["family"],
            common_name=row["common_name"],
            edibility=row["edibility"],
            sources=_split_list(row["edibility_sources"]),
            synonyms=_split_list(row["synonyms"]),
            lookalikes=_split_list(row["lookalikes"]),
            in_original=row["in_original"].strip().lower() in ("1", "true", "yes"),
            sources_disagree=(row.get("sources_disagree") or "").strip().lower() in ("1", "true", "yes"),
            url=(row.get("url") or "").strip(),
            edibility_reason=(row.get("edibility_reason") or "").strip(),
            edibility_reason_source=(row.get("edibility_reason_source") or "").strip(),
        )


@dataclass(frozen=True)
class Confusion:
    """One curated dangerous confusion: ``dangerous`` is mistaken for ``confused_with`` (accepted
    catalog names; a table row naming a genus gives one Confusion per catalog species of it, with
    ``genus`` set). ``why`` says what they share and what separates them; ``source`` names where the
    pair is documented and ``url`` links it."""

    dangerous: str
    confused_with: str
    why: str
    source: str
    url: str
    genus: str = ""  # the table named this genus, not the species

    def other(self, name: str) -> str:
        return self.confused_with if name == self.dangerous else self.dangerous

    @property
    def reason(self) -> str:
        """One line for people: "known confusion: <why> (source)"."""
        return f"known confusion: {self.why} ({self.source})"


def read_confusion_rows(path: str | Path | None = None) -> list[dict[str, str]]:
    """The rows of the curated confusion table, checked for its columns and a source on every row."""
    path = Path(path) if path is not None else paths.CONFUSIONS_CSV
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        missing = set(CONFUSION_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}; expected {list(CONFUSION_COLUMNS)}")
        rows = [{k: (v or "").strip() for k, v in row.items()} for row in reader]
    for i, row in enumerate(rows, start=2):
        empty = [c for c in CONFUSION_COLUMNS if not row[c]]
        if empty:
            raise ValueError(f"{path}, line {i}: empty {empty}: every pair needs why, a source and its url")
        if not row["url"].startswith("https://"):
            raise ValueError(f"{path}, line {i}: url {row['url']!r} is not an https:// link")
    return rows


class Catalog:
    """All accepted species, looked up by accepted name, synonym or misspelling; with the curated
    confusions (``confusion_rows``: rows of ``confusions.csv``) when given."""

    def __init__(self, species: Iterable[Species], confusion_rows: Iterable[dict[str, str]] = ()):
        self._species: dict[str, Species] = {}
        self._index: dict[str, str] = {}
        for sp in sorted(species, key=lambda s: s.name):
            if sp.name in self._species:
                raise ValueError(f"duplicate species {sp.name!r} in catalog")
            if sp.edibility not in _RANK:
                raise ValueError(f"{sp.name}: edibility {sp.edibility!r} not in {EDIBILITY_LEVELS}")
            self._species[sp.name] = sp
        # Accepted names first, so a synonym can never shadow another species' accepted name.
        for sp in self._species.values():
            self._index[normalize_name(sp.name)] = sp.name
        for sp in self._species.values():
            for syn in sp.synonyms:
                key = normalize_name(syn)
                owner = self._index.setdefault(key, sp.name)
                if owner != sp.name and normalize_name(owner) != key:
                    raise ValueError(f"synonym {syn!r} maps to both {owner!r} and {sp.name!r}")
        self._confusions: dict[str, list[Confusion]] = {}
        for row in confusion_rows:
            for c in self._expand(row):
                for name in (c.dangerous, c.confused_with):
                    self._confusions.setdefault(name, []).append(c)

    def _expand(self, row: dict[str, str]) -> list[Confusion]:
        """A table row as Confusions between accepted names (a genus row: one per species of it)."""
        dangerous = self.resolve(row["dangerous"])
        if dangerous is None:
            raise ValueError(f"confusions: {row['dangerous']!r} is not a catalog species (rebuild the catalog)")
        other = row["confused_with"]
        if " " not in other.strip():
            species = [sp.name for sp in self.species_in_genus(other) if sp.name != dangerous]
            if not species:
                raise ValueError(f"confusions: the genus {other!r} has no catalog species")
            genus = other.strip()
        else:
            accepted = self.resolve(other)
            if accepted is None:
                raise ValueError(f"confusions: {other!r} is not a catalog species (rebuild the catalog)")
            species, genus = [accepted], ""
        fields = {k: row[k] for k in ("why", "source", "url")}
        return [Confusion(dangerous, name, genus=genus, **fields) for name in species]

    @classmethod
    def load(cls, path: str | Path | None = None, confusions: str | Path | None = None) -> Catalog:
        """The catalog table (default: the shipped one, with the shipped confusion table; an explicit
        table gets confusions only when ``confusions`` names a file)."""
        if confusions is None and path is None:
            confusions = paths.CONFUSIONS_CSV
        path = Path(path) if path is not None else paths.CATALOG_CSV
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = set(CSV_COLUMNS) - set(reader.fieldnames or ())
            if missing:
                raise ValueError(f"{path}: missing columns {sorted(missing)}")
            species = [Species.from_row(row) for row in reader]
        return cls(species, read_confusion_rows(confusions) if confusions is not None else ())

    def __len__(self) -> int:
        return len(self._species)

    def __iter__(self) -> Iterator[Species]:
        return iter(self._species.values())

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.resolve(name) is not None

    @property
    def names(self) -> list[str]:
        """Accepted names, sorted."""
        return list(self._species)

    def resolve(self, name: str) -> str | None:
        """The accepted name for an accepted name, synonym or misspelling; None if unknown."""
        return self._index.get(normalize_name(name))

    def get(self, name: str) -> Species:
        accepted = self.resolve(name)
        if accepted is None:
            raise KeyError(
                f"{name!r} is not in the species catalog ({len(self)} species; names are matched "
                "case-insensitively with synonyms; genus- or family-level names are not species)"
            )
        return self._species[accepted]

    def edibility(self, name: str) -> str:
        """The species' status, or "unknown" for a name not in the catalog."""
        accepted = self.resolve(name)
        return self._species[accepted].edibility if accepted else "unknown"

    def mask(self, labels: Iterable[str], statuses: Iterable[str] = DANGEROUS) -> np.ndarray:
        """Boolean array: is each label's edibility one of ``statuses`` (default: deadly, poisonous,
        psychoactive)? A label outside the catalog is "unknown": never dangerous, never edible."""
        wanted = frozenset(statuses)
        return np.array([self.edibility(n) in wanted for n in labels], dtype=bool)

    def confusions(self, name: str) -> list[Confusion]:
        """The curated confusions the species is in (on either side), the table's order."""
        accepted = self.resolve(name)
        return list(self._confusions.get(accepted, ())) if accepted else []

    def lookalikes(self, name: str) -> list[Species]:
        """The curated confusion partners first, then Wild Food UK's lookalikes, each once."""
        accepted = self.get(name).name
        names = [c.other(accepted) for c in self.confusions(accepted)] + list(self._species[accepted].lookalikes)
        return [self._species[n] for n in dict.fromkeys(names) if n in self._species and n != accepted]

    def confusion_between(self, name: str, other: str) -> Confusion | None:
        """The curated confusion of the two species (either order), or None."""
        a, b = self.resolve(name), self.resolve(other)
        return next((c for c in self.confusions(a or "") if c.other(a) == b), None)

    def lookalike_source(self, name: str, other: str) -> str:
        """Where the pair is documented: the curated pair's source, else "Wild Food UK's confusion
        notes" for a lookalike parsed from them; "" when ``other`` is not a lookalike of ``name``."""
        c = self.confusion_between(name, other)
        if c is not None:
            return c.source
        a, b = self.resolve(name), self.resolve(other)
        return WILD_FOOD_UK_NOTES if a and b and b in self._species[a].lookalikes else ""

    def lookalike_reason(self, name: str, other: str) -> str:
        """Why ``other`` is listed as a lookalike of ``name``: the curated pair's "known confusion: why
        (source)" when there is one, else Wild Food UK's confusion notes; "" when it is not one."""
        c = self.confusion_between(name, other)
        if c is not None:
            return c.reason
        source = self.lookalike_source(name, other)
        return f"known confusion: named in {source}" if source else ""

    def danger_is_specific(self, name: str) -> bool:
        """True when a specific source calls the species dangerous (Wikipedia or Wild Food UK say deadly,
        poisonous or psychoactive, or the curated confusion table lists it as the dangerous one); False
        when only the original project's binary "toxic" (= not edible) does, or it is not dangerous."""
        accepted = self.resolve(name)
        if accepted is None or not self._species[accepted].dangerous:
            return False
        for entry in self._species[accepted].sources:
            source, _, value = entry.split(" (as ")[0].partition(":")
            if source != "seed" and value.strip().lower() in DANGEROUS:
                return True
        return any(c.dangerous == accepted for c in self.confusions(accepted))

    def species_in_genus(self, genus: str) -> list[Species]:
        key = normalize_name(genus)
        return [sp for sp in self._species.values() if sp.genus.lower() == key]


@functools.lru_cache(maxsize=1)
def default_catalog() -> Catalog:
    """The catalog shipped with the package (loaded once)."""
    return Catalog.load()
