"""Field traits per species: what a person sees in the field but a photo often hides.

The table ``mushroom_id/data/traits.csv`` is built by ``python -m data_prep traits`` from Wikipedia's
mycomorphbox data (``../shared/data/catalog/edibility_wikipedia.csv``) and committed beside the catalog.
One row per catalog species; each trait column holds the species' grouped values joined by ``"; "``
(several values = any of them may be seen, "convex; flat"), ``""`` when no source knows it, and a
``<trait>_source`` column: ``wikipedia`` (the species' own entry), ``inferred:genus`` (every species of
its genus with a Wikipedia entry agrees, at least two of them) or ``""``.

Raw words are grouped into what a person can tell apart (a spore print is "white to cream" or "pink",
not "buff" vs "cream"); :data:`RAW_GROUPS` is the one mapping, used by the table builder and by
:mod:`mushroom_id.core.questions` to accept the source's own words as answers.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mushroom_id.core import paths

TRAITS_CSV = paths.DATA_DIR / "traits.csv"
# trait -> the mycomorphbox column it comes from
TRAIT_COLUMNS = {
    "hymenium": "hymenium type",
    "stipe": "stipe type",
    "spore_print": "spore color",
    "ecology": "ecological type",
    "gill_attachment": "gill type",
    "cap_shape": "cap shape",
}
TRAITS: tuple[str, ...] = tuple(TRAIT_COLUMNS)
LIST_SEP = "; "
SOURCE_WIKIPEDIA = "wikipedia"
SOURCE_GENUS = "inferred:genus"

# raw word (as the source writes it) -> grouped value. A word not listed is kept as is for cap_shape
# and dropped (unknown) elsewhere, so an unexpected word can never become a wrong trait.
RAW_GROUPS: dict[str, dict[str, str]] = {
    "hymenium": {w: w for w in ("gills", "pores", "teeth", "ridges", "smooth", "glebal")},
    "stipe": {
        "ring": "ring",
        "volva": "volva",
        "ring and volva": "ring_and_volva",
        "cortina": "cortina",
        "bare": "bare",
        "none": "no_stem",
    },
    "spore_print": {
        **dict.fromkeys(("white", "cream", "buff"), "white-cream"),
        **dict.fromkeys(("yellow", "yellow-orange"), "yellow"),
        **dict.fromkeys(("pink", "salmon"), "pink"),
        **dict.fromkeys(
            ("brown", "ochre", "tan", "yellow-brown", "reddish-brown", "olive-brown", "olive"),
            "brown",
        ),
        **dict.fromkeys(("purple-brown", "purple", "purple-black", "blackish-brown", "black"), "purple-black"),
        "green": "green",
    },
    "ecology": {w: w for w in ("mycorrhizal", "saprotrophic", "parasitic")},
    "gill_attachment": {
        **dict.fromkeys(("free", "seceding"), "free"),
        **dict.fromkeys(("adnate", "adnexed", "sinuate", "emarginate"), "attached"),
        **dict.fromkeys(("decurrent", "subdecurrent"), "decurrent"),
        "none": "no_gills",
    },
    "cap_shape": {},  # kept as the source writes it ("convex", "umbonate", ...; "none": no cap)
}
# A word that falls between two groups counts for both (a person may call it either).
RAW_BOTH: dict[str, dict[str, tuple[str, ...]]] = {
    "spore_print": {"pinkish-brown": ("pink", "brown")},
}


def group_values(trait: str, raw: str) -> tuple[str, ...]:
    """A source cell ("white, cream", "bare, ring") -> the grouped values, in order, no repeats.

    Unknown or placeholder words ("", "none" where it means nothing, "?") give nothing for that word.
    """
    groups = RAW_GROUPS[trait]
    out: list[str] = []
    for word in (w.strip().lower() for w in (raw or "").split(",")):
        if not word:
            continue
        if word in RAW_BOTH.get(trait, {}):
            values = RAW_BOTH[trait][word]
        elif trait == "cap_shape":
            values = (word,) if word.replace("-", "").isalpha() else ()
        else:
            values = (groups[word],) if word in groups else ()
        out += [v for v in values if v not in out]
    return tuple(out)


@dataclass(frozen=True)
class TraitValue:
    values: frozenset[str]  # empty: unknown
    source: str  # SOURCE_WIKIPEDIA, SOURCE_GENUS or ""


class Traits:
    """The trait table, looked up by accepted species name (use ``Catalog.resolve`` first for synonyms)."""

    def __init__(self, rows: Iterable[dict[str, str]]):
        self._rows: dict[str, dict[str, TraitValue]] = {}
        for row in rows:
            self._rows[row["name"]] = {
                t: TraitValue(
                    frozenset(v.strip() for v in (row.get(t) or "").split(LIST_SEP.strip()) if v.strip()),
                    (row.get(f"{t}_source") or "").strip(),
                )
                for t in TRAITS
            }

    @classmethod
    def load(cls, path: str | Path | None = None) -> Traits:
        path = Path(path) if path is not None else TRAITS_CSV
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: build it with `python -m data_prep traits`")
        with open(path, newline="", encoding="utf-8") as f:
            return cls(csv.DictReader(f))

    def __contains__(self, name: object) -> bool:
        return name in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def names(self) -> list[str]:
        return list(self._rows)

    def of(self, name: str) -> dict[str, frozenset[str]]:
        """trait -> grouped values (empty set: unknown; also for a species not in the table)."""
        row = self._rows.get(name)
        return {t: (row[t].values if row else frozenset()) for t in TRAITS}

    def value(self, name: str, trait: str) -> TraitValue:
        row = self._rows.get(name)
        return row[trait] if row else TraitValue(frozenset(), "")

    def coverage(self, names: Iterable[str]) -> dict[str, dict[str, int]]:
        """Per trait: how many of ``names`` have it from their own entry, inferred from the genus, unknown."""
        names = list(names)
        out: dict[str, dict[str, int]] = {}
        for t in TRAITS:
            counts = {SOURCE_WIKIPEDIA: 0, SOURCE_GENUS: 0, "unknown": 0}
            for n in names:
                tv = self.value(n, t)
                counts[tv.source if tv.values and tv.source in counts else "unknown"] += 1
            out[t] = counts
        return out


@functools.lru_cache(maxsize=1)
def default_traits() -> Traits:
    """The trait table shipped with the package (loaded once)."""
    return Traits.load()
