"""Field traits per species, from several sources, each value with its source.

The table ``mushroom_id/data/traits.csv`` is built by ``python -m data_prep traits`` and committed beside
the catalog. It is in long form: one row per (species, trait, source) with the grouped values the source
gives (``"; "``-joined: several values = any of them may be seen, "convex; flat"), so every source's word
stays visible and a disagreement between two sources is a row that says so (``note``). Sources:

- ``wikipedia``: the species' own mycomorphbox entry;
- ``wagner2021``: Wagner et al. 2021 (Harding's book), the species' own entry (common names mapped to
  catalog species in ``data_prep/wagner2021_names.csv``);
- ``inferred:genus``: every species of the genus with a Wikipedia entry agrees (at least two of them);
- ``fungaltraits:genus``: FungalTraits' genus-level lifestyle, substrate and hymenium.

How the sources combine into one set per trait (:func:`combine`), safety-minded and written once:

1. A species' own entries (wikipedia, wagner2021) come first; when they give different values, both are
   accepted (a person may see either), except that a vague word ("saprotrophic": any dead matter) is
   narrowed by a source that is more specific and consistent with it ("on wood").
2. A genus value is used only when no own entry knows the trait, or to narrow a vague own value.
3. Nothing known: the trait is unknown (a neutral answer later, never a guess).

``exclude`` drops a source family (``wikipedia`` also drops ``inferred:genus``, which is derived from it):
the field evaluation re-weights with the table *without* the source its simulated answers come from.
"""

from __future__ import annotations

import csv
import functools
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from mushroom_id.core import paths

TRAITS_CSV = paths.DATA_DIR / "traits.csv"
LIST_SEP = "; "
SOURCE_WIKIPEDIA = "wikipedia"
SOURCE_GENUS = "inferred:genus"
SOURCE_WAGNER = "wagner2021"
SOURCE_FUNGALTRAITS = "fungaltraits:genus"
SOURCES = (SOURCE_WIKIPEDIA, SOURCE_WAGNER, SOURCE_GENUS, SOURCE_FUNGALTRAITS)
OWN_SOURCES = (SOURCE_WIKIPEDIA, SOURCE_WAGNER)  # the species' own entry
# the independent source each row derives from: a held-out source takes its derived rows with it
BASIS = {SOURCE_WIKIPEDIA: "wikipedia", SOURCE_GENUS: "wikipedia", SOURCE_WAGNER: "wagner2021"}
BASIS[SOURCE_FUNGALTRAITS] = "fungaltraits"
BASES = ("wikipedia", "wagner2021", "fungaltraits")

# The trait vocabulary: every trait and the grouped values a person can tell apart. The questions
# (core.questions) offer exactly these values; the builder maps each source's words onto them.
VOCABULARY: dict[str, tuple[str, ...]] = {
    "hymenium": ("gills", "pores", "teeth", "ridges", "smooth", "glebal"),
    "stipe": ("ring", "volva", "ring_and_volva", "cortina", "bare", "no_stem"),
    "stem_base": ("cup", "bulb", "rooting", "plain"),
    "spore_print": ("white-cream", "yellow", "pink", "brown", "purple-black", "green"),
    "ecology": ("wood", "litter", "soil_trees", "soil_open", "dung", "on_fungus_or_insect"),
    "gill_attachment": ("free", "attached", "decurrent", "no_gills"),
    "cap_colour": ("white-cream", "yellow-orange", "red-pink", "brown", "grey-black", "green-blue", "purple"),
    "gill_colour": ("white-cream", "yellow-orange", "red-pink", "brown", "grey-black", "green-blue", "purple"),
    "bruising": ("changes", "no_change"),
    "cap_size": ("small", "medium", "large"),
    "season": ("spring", "summer", "autumn", "winter"),
    "cap_shape": (),  # open: kept as the source writes it ("convex", "umbonate", ...); no question asks it
}
TRAITS: tuple[str, ...] = tuple(VOCABULARY)
# traits where a source may give a vague set that a more specific source narrows
NARROWABLE = frozenset({"ecology", "stem_base"})

# Wikipedia's own words -> grouped values (one mapping, used by the builder and as answer aliases).
# A word not listed is dropped (unknown), so an unexpected word can never become a wrong trait.
ANY_SUBSTRATE = ("wood", "litter", "soil_trees", "soil_open", "dung")
RAW_GROUPS: dict[str, dict[str, tuple[str, ...]]] = {
    "hymenium": {w: (w,) for w in VOCABULARY["hymenium"]},
    "stipe": {
        "ring": ("ring",),
        "volva": ("volva",),
        "ring and volva": ("ring_and_volva",),
        "cortina": ("cortina",),
        "bare": ("bare",),
        "none": ("no_stem",),
    },
    "spore_print": {
        **dict.fromkeys(("white", "cream", "buff"), ("white-cream",)),
        **dict.fromkeys(("yellow", "yellow-orange"), ("yellow",)),
        **dict.fromkeys(("pink", "salmon"), ("pink",)),
        **dict.fromkeys(("brown", "ochre", "tan", "yellow-brown", "reddish-brown", "olive-brown", "olive"), ("brown",)),
        **dict.fromkeys(("purple-brown", "purple", "purple-black", "blackish-brown", "black"), ("purple-black",)),
        "green": ("green",),
        "pinkish-brown": ("pink", "brown"),  # between two groups: a person may call it either
    },
    # Wikipedia's ecological type says how it feeds, not where it stands: "saprotrophic" fits any dead
    # matter (narrowed by FungalTraits or Wagner where they say more), "mycorrhizal" means soil near trees.
    "ecology": {
        "mycorrhizal": ("soil_trees",),
        "saprotrophic": ANY_SUBSTRATE,
        "parasitic": ("wood", "on_fungus_or_insect"),
    },
    "gill_attachment": {
        **dict.fromkeys(("free", "seceding"), ("free",)),
        **dict.fromkeys(("adnate", "adnexed", "sinuate", "emarginate"), ("attached",)),
        **dict.fromkeys(("decurrent", "subdecurrent"), ("decurrent",)),
        "none": ("no_gills",),
    },
    "cap_shape": {},
}


def group_values(trait: str, raw: str) -> tuple[str, ...]:
    """A Wikipedia cell ("white, cream", "bare, ring") -> the grouped values, in order, no repeats."""
    groups = RAW_GROUPS.get(trait, {})
    out: list[str] = []
    for word in (w.strip().lower() for w in (raw or "").split(",")):
        if not word:
            continue
        if trait == "cap_shape":
            values = (word,) if word.replace("-", "").isalpha() else ()
        else:
            values = groups.get(word, ())
        out += [v for v in values if v not in out]
    return tuple(out)


@dataclass(frozen=True)
class TraitValue:
    values: frozenset[str]  # empty: unknown
    source: str  # the sources that gave the values, "+"-joined ("wikipedia+fungaltraits:genus"); "" unknown

    @property
    def sources(self) -> tuple[str, ...]:
        return tuple(s for s in self.source.split("+") if s)


def combine(by_source: dict[str, frozenset[str]], trait: str) -> TraitValue:
    """One trait of one species from its sources' values (the rule in the module docstring)."""

    def merge(sources: list[str]) -> tuple[frozenset[str], list[str]]:
        sets = {s: by_source[s] for s in sources if by_source.get(s)}
        if trait in NARROWABLE:  # drop a set that a more specific, consistent one narrows
            sets = {s: v for s, v in sets.items() if not any(o < v for o in sets.values())}
        values = frozenset().union(*sets.values()) if sets else frozenset()
        return values, sorted(sets, key=SOURCES.index)

    own, own_sources = merge(list(OWN_SOURCES))
    genus, genus_sources = merge([SOURCE_GENUS, SOURCE_FUNGALTRAITS])
    if not own:
        return TraitValue(genus, "+".join(genus_sources) if genus else "")
    if trait in NARROWABLE and genus and genus < own:
        return TraitValue(genus, "+".join(own_sources + genus_sources))
    return TraitValue(own, "+".join(own_sources))


class Traits:
    """The trait table, looked up by accepted species name (use ``Catalog.resolve`` first for synonyms).

    ``rows``: the long table's rows (name, trait, values, source, ...); ``exclude``: source families
    (:data:`BASES`) left out, for the held-out-source evaluation."""

    def __init__(self, rows: Iterable[dict[str, str]], exclude: Iterable[str] = ()):
        self.exclude = frozenset(exclude)
        unknown = self.exclude - set(BASES)
        if unknown:
            raise ValueError(f"unknown trait source(s) {sorted(unknown)}; the sources are {', '.join(BASES)}")
        raw: dict[str, dict[str, dict[str, frozenset[str]]]] = defaultdict(lambda: defaultdict(dict))
        self._table = list(rows)
        self._names: list[str] = []
        for row in self._table:
            name = row["name"]
            if name not in raw:
                self._names.append(name)
            raw[name]  # every species listed, even with no usable row
            source, trait = row["source"], row["trait"]
            if not trait or BASIS.get(source) in self.exclude:
                continue
            values = frozenset(v.strip() for v in (row.get("values") or "").split(LIST_SEP.strip()) if v.strip())
            if values:
                raw[name][trait][source] = values
        self._raw = raw
        self._rows: dict[str, dict[str, TraitValue]] = {
            name: {t: combine(raw[name].get(t, {}), t) for t in TRAITS} for name in self._names
        }

    @classmethod
    def load(cls, path: str | Path | None = None, exclude: Iterable[str] = ()) -> Traits:
        path = Path(path) if path is not None else TRAITS_CSV
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: build it with `python -m data_prep traits`")
        with open(path, newline="", encoding="utf-8") as f:
            return cls(csv.DictReader(f), exclude)

    def without(self, basis: str) -> Traits:
        """The same table without one source family (and what derives from it)."""
        return Traits(self._table, self.exclude | {basis})

    def __contains__(self, name: object) -> bool:
        return name in self._rows

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def names(self) -> list[str]:
        return list(self._names)

    def of(self, name: str) -> dict[str, frozenset[str]]:
        """trait -> grouped values (empty set: unknown; also for a species not in the table)."""
        row = self._rows.get(name)
        return {t: (row[t].values if row else frozenset()) for t in TRAITS}

    def value(self, name: str, trait: str) -> TraitValue:
        row = self._rows.get(name)
        return row[trait] if row else TraitValue(frozenset(), "")

    def by_source(self, name: str, trait: str) -> dict[str, frozenset[str]]:
        """Each source's own values for one trait of one species (before combining)."""
        return dict(self._raw.get(name, {}).get(trait, {}))

    def coverage(self, names: Iterable[str], traits: Iterable[str] = TRAITS) -> dict[str, dict[str, int]]:
        """Per trait: how many of ``names`` have it from an own entry, from the genus only, or not at all."""
        names = list(names)
        out: dict[str, dict[str, int]] = {}
        for t in traits:
            counts = {"own": 0, "genus": 0, "unknown": 0}
            for n in names:
                tv = self.value(n, t)
                if not tv.values:
                    counts["unknown"] += 1
                else:
                    counts["own" if set(tv.sources) & set(OWN_SOURCES) else "genus"] += 1
            out[t] = counts
        return out


@functools.lru_cache(maxsize=1)
def default_traits() -> Traits:
    """The trait table shipped with the package (loaded once)."""
    return Traits.load()
