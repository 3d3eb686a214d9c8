"""Build the field-trait table for every catalog species from three independent sources.

    python -m data_prep traits            # -> mushroom_id/data/traits.csv (committed beside the catalog)

Sources (in ``../shared/data/catalog``; see TRAITS_SOURCES.md there, all CC BY 4.0 or Wikipedia's text):

- ``wikipedia``: Wikipedia's mycomorphbox (``edibility_wikipedia.csv``), every value of a multi-valued
  cell read ("ring and volva", "convex, flat"), names resolved through the catalog (synonyms included).
  Gaps are filled only where it is safe: when every species of the genus that has an entry (at least two)
  gives the same values, the species gets them as ``inferred:genus``.
- ``wagner2021``: Wagner et al. 2021 (``traits_wagner2021_primary.csv``), 173 European species under
  English book names, mapped to catalog species by ``data_prep/wagner2021_names.csv`` (curated data with
  its own test). Cap colour and size, bruising, stem base, gill colour, habitat and season come from here.
- ``fungaltraits:genus``: FungalTraits (``traits_fungaltraits_genera.tsv``), genus level: lifestyle and
  decay substrate (wood / leaf litter / soil / dung) and hymenium type.

The table is long: one row per (species, trait, source) with that source's grouped values, so each
source's word stays visible; ``note`` says where two sources disagree. How they combine is written
once, in :func:`mushroom_id.core.traits.combine`.
"""

from __future__ import annotations

import argparse
import csv
import re
from collections import defaultdict
from pathlib import Path

from data_prep.catalog import parse_name
from mushroom_id.core.catalog import Catalog
from mushroom_id.core.io import write_csv
from mushroom_id.core.traits import (
    ANY_SUBSTRATE,
    LIST_SEP,
    OWN_SOURCES,
    SOURCE_FUNGALTRAITS,
    SOURCE_GENUS,
    SOURCE_WAGNER,
    SOURCE_WIKIPEDIA,
    SOURCES,
    TRAITS,
    TRAITS_CSV,
    Traits,
    group_values,
)

MIN_GENUS_AGREEING = 2  # a genus value needs at least this many species with an entry, all agreeing
COLUMNS = ("name", "genus", "trait", "values", "source", "note")
WAGNER_NAMES_CSV = Path(__file__).with_name("wagner2021_names.csv")

# Wikipedia's mycomorphbox column of each trait it covers
WIKIPEDIA_COLUMNS = {
    "hymenium": "hymenium type",
    "stipe": "stipe type",
    "spore_print": "spore color",
    "ecology": "ecological type",
    "gill_attachment": "gill type",
    "cap_shape": "cap shape",
}
# what Wikipedia's stem words say of the base: a volva is a cup; any other stem is "not a cup" (vague)
STEM_BASE_FROM_STIPE = {
    "volva": ("cup",),
    "ring_and_volva": ("cup",),
    "ring": ("bulb", "rooting", "plain"),
    "bare": ("bulb", "rooting", "plain"),
    "cortina": ("bulb", "rooting", "plain"),
}

# Wagner's codes (traits_wagner2021_primary_meta.txt) -> grouped values
WAGNER_COLOURS = {
    "n": ("brown",),
    "b": ("white-cream", "brown"),  # buff: between the two, a person may say either
    "g": ("grey-black",),
    "r": ("green-blue",),
    "p": ("red-pink",),
    "u": ("purple",),
    "e": ("red-pink",),
    "w": ("white-cream",),
    "y": ("yellow-orange",),
    "l": ("green-blue",),
    "o": ("yellow-orange",),
    "k": ("grey-black",),
}
WAGNER_SPORES = {
    "n": ("brown",),
    "b": ("white-cream",),
    "r": ("green",),
    "p": ("pink",),
    "u": ("purple-black",),
    "w": ("white-cream",),
    "y": ("yellow",),
    "o": ("brown",),
    "k": ("purple-black",),
}
WAGNER_GILLS = {"a": "attached", "x": "attached", "s": "attached", "d": "decurrent", "e": "free"}
WAGNER_ROOT = {"u": ("cup",), "b": ("bulb",), "s": ("bulb",), "c": ("bulb",), "r": ("rooting",), "z": ("rooting",)}
WAGNER_ROOT["e"] = ("plain",)
WAGNER_HABITAT = {"d": ("wood", "litter", "soil_trees"), "l": ("litter",)}  # "woods" = in woodland, not on wood
WAGNER_HABITAT |= dict.fromkeys("gmphuw", ("soil_open",))  # grasses, meadows, paths, heaths, urban, waste
WAGNER_SEASON = {"s": "spring", "u": "summer", "a": "autumn", "w": "winter"}
CAP_SIZE_CM = {"small": (0, 5), "medium": (5, 10), "large": (10, 1000)}

# FungalTraits' lifestyle and substrate words -> where it grows; hymenium words -> under the cap
FT_ECOLOGY = {
    "wood_saprotroph": ("wood",),
    "litter_saprotroph": ("litter",),
    "soil_saprotroph": ("soil_trees", "soil_open"),
    "dung_saprotroph": ("dung",),
    "ectomycorrhizal": ("soil_trees",),
    "unspecified_saprotroph": ANY_SUBSTRATE,
    "mycoparasite": ("on_fungus_or_insect",),
    "animal_parasite": ("on_fungus_or_insect",),
    "arthropod_parasite": ("on_fungus_or_insect",),
    "wood": ("wood",),
    "leaf/fruit/seed": ("litter",),
    "soil": ("soil_trees", "soil_open"),
    "dung": ("dung",),
}
FT_HYMENIUM = {"gills": "gills", "poroid": "pores", "hydnoid": "teeth", "smooth": "smooth"}


def _ordered(values) -> tuple[str, ...]:
    out: list[str] = []
    for v in values:
        if v not in out:
            out.append(v)
    return tuple(out)


def wagner_set(cell: str) -> list[str]:
    """``"[x, f]"`` -> ``["x", "f"]`` (empty or ``?`` -> nothing)."""
    return [w.strip() for w in (cell or "").strip().strip("[]").split(",") if w.strip() and w.strip() != "?"]


def cap_sizes(cell: str) -> tuple[str, ...]:
    """A Wagner cap-diameter cell in cm (``[5, 10]`` min-max, or ``[7]`` a mean) -> size groups it spans."""
    nums = [float(x) for x in re.findall(r"[\d.]+", cell or "")]
    if not nums:
        return ()
    lo, hi = (min(nums), max(nums)) if len(nums) > 1 else (nums[0] * 0.7, nums[0] * 1.3)
    return tuple(k for k, (a, b) in CAP_SIZE_CM.items() if lo < b and hi > a)


def wagner_traits(row: dict) -> dict[str, tuple[str, ...]]:
    """One Wagner row -> trait -> grouped values (only what the row says)."""
    get = {k.lower(): v for k, v in row.items()}
    gills = wagner_set(get["gill-attachment"])
    root = wagner_set(get["stem-root"])
    ring = "t" in wagner_set(get["has-ring"])
    ring_types = set(wagner_set(get["ring-type"]))
    # a cup (volva): a cup-shaped base, or an Amanita's universal veil (the egg whose remains are the volva)
    amanita = get.get("family", "").startswith("Amanita")
    cup = "u" in root or (amanita and "u" in wagner_set(get["veil-type"]))
    out = {
        "hymenium": _ordered("pores" if g == "p" else "gills" for g in gills if g in "pxadse"),
        "gill_attachment": _ordered(WAGNER_GILLS[g] for g in gills if g in WAGNER_GILLS),
        "stem_base": _ordered(("cup",) * cup + tuple(v for r in root for v in WAGNER_ROOT.get(r, ()))),
        "spore_print": _ordered(v for c in wagner_set(get["spore-print-color"]) for v in WAGNER_SPORES.get(c, ())),
        "cap_colour": _ordered(v for c in wagner_set(get["cap-color"]) for v in WAGNER_COLOURS.get(c, ())),
        "gill_colour": _ordered(v for c in wagner_set(get["gill-color"]) for v in WAGNER_COLOURS.get(c, ())),
        "bruising": _ordered({"t": "changes", "f": "no_change"}[b] for b in wagner_set(get["does-bruise-or-bleed"])),
        "cap_size": cap_sizes(get["cap-diameter"]),
        "ecology": _ordered(v for h in wagner_set(get["habitat"]) for v in WAGNER_HABITAT.get(h, ())),
        "season": _ordered(WAGNER_SEASON[s] for s in wagner_set(get["season"]) if s in WAGNER_SEASON),
    }
    stipe = []
    if ring_types & {"c"}:
        stipe.append("cortina")
    if ring and ring_types - {"c", "f"}:
        stipe.append("ring_and_volva" if cup else "ring")
    elif ring and not ring_types:
        stipe.append("ring_and_volva" if cup else "ring")
    if not ring and cup:
        stipe.append("volva")
    if not ring and not cup and not stipe and get["has-ring"].strip():
        stipe.append("bare")
    out["stipe"] = tuple(stipe)
    return {t: v for t, v in out.items() if v}


def fungaltraits_genus(row: dict) -> dict[str, tuple[str, ...]]:
    """One FungalTraits genus row -> trait -> grouped values."""
    words = [row.get("primary_lifestyle", ""), row.get("Secondary_lifestyle", "")]
    words += (row.get("Decay_substrate_template") or "").split(",")
    out = {"ecology": _ordered(v for w in words for v in FT_ECOLOGY.get(w.strip(), ()))}
    hym = (row.get("Hymenium_type_template") or "").strip()
    fruitbody = (row.get("Fruitbody_type_template") or "").strip()
    if hym in FT_HYMENIUM:
        out["hymenium"] = (FT_HYMENIUM[hym],)
    elif hym == "closed" and fruitbody.startswith("gasteroid"):
        out["hymenium"] = ("glebal",)
    return {t: v for t, v in out.items() if v}


def wikipedia_traits(row: dict) -> dict[str, tuple[str, ...]]:
    out = {t: group_values(t, row.get(col, "")) for t, col in WIKIPEDIA_COLUMNS.items()}
    out["stem_base"] = _ordered(v for s in out["stipe"] for v in STEM_BASE_FROM_STIPE.get(s, ()))
    return {t: v for t, v in out.items() if v}


def _wikipedia(catalog: Catalog, rows: list[dict]):
    """(accepted name -> trait -> values, genus -> trait -> [values of each species with an entry], unresolved)."""
    own: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    by_genus: dict[str, dict[str, list[tuple[str, ...]]]] = defaultdict(lambda: defaultdict(list))
    unresolved = 0
    for row in rows:
        parsed = parse_name(row.get("scientific name"))
        if parsed is None:
            unresolved += 1
            continue
        accepted = catalog.resolve(parsed.species)
        genus = (catalog.get(accepted).genus if accepted else parsed.species.split()[0]).lower()
        for trait, values in wikipedia_traits(row).items():
            by_genus[genus][trait].append(values)  # every species with an entry counts, in the catalog or not
            if accepted:
                own[accepted][trait] += [v for v in values if v not in own[accepted][trait]]
        unresolved += accepted is None
    return own, by_genus, unresolved


def _wagner(catalog: Catalog, rows: list[dict], names: list[dict]) -> dict[str, dict[str, tuple[str, ...]]]:
    species_of = {n["wagner_name"]: catalog.resolve(n["species"]) for n in names if n["species"]}
    out = {}
    for row in rows:
        accepted = species_of.get(row["name"])
        if accepted:
            out[accepted] = wagner_traits(row)
    return out


def build_traits(
    catalog: Catalog,
    wikipedia_rows: list[dict],
    wagner_rows: list[dict] = (),
    wagner_names: list[dict] = (),
    fungaltraits_rows: list[dict] = (),
) -> tuple[list[dict], dict]:
    """(rows of the long table, build report). Pure: no I/O."""
    own, by_genus, unresolved = _wikipedia(catalog, wikipedia_rows)
    wagner = _wagner(catalog, list(wagner_rows), list(wagner_names))
    ft = {r["GENUS"].strip().lower(): fungaltraits_genus(r) for r in fungaltraits_rows if r.get("GENUS")}

    def genus_value(genus: str, trait: str) -> tuple[str, ...]:
        seen = by_genus.get(genus.lower(), {}).get(trait, [])
        return seen[0] if len(seen) >= MIN_GENUS_AGREEING and len({frozenset(v) for v in seen}) == 1 else ()

    rows, disagreements = [], 0
    for sp in catalog:
        for trait in TRAITS:
            by_source = {
                SOURCE_WIKIPEDIA: tuple(own.get(sp.name, {}).get(trait, ())),
                SOURCE_WAGNER: wagner.get(sp.name, {}).get(trait, ()),
                SOURCE_GENUS: () if own.get(sp.name, {}).get(trait) else genus_value(sp.genus, trait),
                SOURCE_FUNGALTRAITS: ft.get(sp.genus.lower(), {}).get(trait, ()),
            }
            for source in SOURCES:
                values = by_source[source]
                if not values:
                    continue
                note = ""
                others = [s for s in OWN_SOURCES if s != source and by_source[s]]
                if source in OWN_SOURCES and others and set(values).isdisjoint(by_source[others[0]]):
                    note = f"disagrees with {others[0]} ({LIST_SEP.join(by_source[others[0]])}): both accepted"
                    disagreements += 1
                rows.append(
                    {
                        "name": sp.name,
                        "genus": sp.genus,
                        "trait": trait,
                        "values": LIST_SEP.join(values),
                        "source": source,
                        "note": note,
                    }
                )
    named = {r["name"] for r in rows}
    rows += [
        {"name": sp.name, "genus": sp.genus, **dict.fromkeys(COLUMNS[2:], "")} for sp in catalog if sp.name not in named
    ]
    order = {sp.name: i for i, sp in enumerate(catalog)}
    rows.sort(key=lambda r: (order[r["name"]], TRAITS.index(r["trait"]) if r["trait"] else -1, r["source"]))
    report = {
        "species": len(catalog),
        "species with a Wikipedia entry": len(own),
        "Wikipedia entries not resolved to a catalog species": unresolved,
        "species with a Wagner 2021 entry": len(wagner),
        "catalog genera in FungalTraits": len({sp.genus.lower() for sp in catalog} & set(ft)),
        "own-entry disagreements (rows)": disagreements,
    }
    return rows, report


def coverage_lines(traits: Traits, names: list[str], title: str) -> list[str]:
    lines = [f"{title} ({len(names)} species): own entry / genus only / unknown"]
    for trait, c in traits.coverage(names).items():
        lines.append(f"  {trait:16s} {c['own']:4d} / {c['genus']:4d} / {c['unknown']:4d}")
    return lines


def read_sources(source: Path) -> dict[str, list[dict]]:
    """The three source tables, as the builder takes them."""

    def read(name, **kw):
        with open(Path(source) / name, newline="", encoding="utf-8", errors="replace") as f:
            return list(csv.DictReader(f, **kw))

    with open(WAGNER_NAMES_CSV, newline="", encoding="utf-8") as f:
        names = list(csv.DictReader(f))
    return {
        "wikipedia_rows": read("edibility_wikipedia.csv"),
        "wagner_rows": read("traits_wagner2021_primary.csv", delimiter=";"),
        "wagner_names": names,
        "fungaltraits_rows": read("traits_fungaltraits_genera.tsv", delimiter="\t"),
    }


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mushroom_id.core import paths

    parser.add_argument("--source", type=Path, default=None, help=f"default: {paths.shared_catalog_dir()}")
    parser.add_argument("--catalog", type=Path, default=None, help=f"default: {paths.CATALOG_CSV}")
    parser.add_argument("--out", type=Path, default=None, help=f"default: {TRAITS_CSV}")


def run(args: argparse.Namespace) -> int:
    import json

    from mushroom_id.core import paths

    catalog = Catalog.load(args.catalog)
    rows, report = build_traits(catalog, **read_sources(args.source or paths.shared_catalog_dir()))
    out = args.out or TRAITS_CSV
    write_csv(out, rows, COLUMNS)
    traits = Traits.load(out)
    for k, v in report.items():
        print(f"{k}: {v}")
    for line in coverage_lines(traits, catalog.names, "catalog"):
        print(line)
    config = paths.EMBEDDED_MODEL_DIR / "config.json"
    if config.is_file():
        labels = json.loads(config.read_text())["label_names"]
        for line in coverage_lines(traits, [catalog.resolve(n) or n for n in labels], "embedded model's labels"):
            print(line)
    print(f"wrote {out}")
    return 0
