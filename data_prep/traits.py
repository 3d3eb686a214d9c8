"""Build the field-trait table (hymenium, stipe, spore print, ecology, gills, cap) for every catalog species.

    python -m data_prep traits            # -> mushroom_id/data/traits.csv (committed beside the catalog)

Source: Wikipedia's mycomorphbox (``edibility_wikipedia.csv``), every value of a multi-valued cell read
("ring and volva", "convex, flat"), names resolved through the catalog (synonyms included; several
entries of one species are joined). Gaps are filled only where it is safe: when every species of the
genus that has an entry (at least two) gives the same values, the species gets them marked
``inferred:genus``; otherwise the trait stays unknown (a neutral answer later, never a guess).
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

from data_prep.catalog import parse_name
from mushroom_id.core.catalog import Catalog
from mushroom_id.core.io import write_csv
from mushroom_id.core.traits import (
    LIST_SEP,
    SOURCE_GENUS,
    SOURCE_WIKIPEDIA,
    TRAIT_COLUMNS,
    TRAITS,
    TRAITS_CSV,
    Traits,
    group_values,
)

MIN_GENUS_AGREEING = 2  # a genus value needs at least this many species with an entry, all agreeing
COLUMNS = ("name", "genus") + tuple(c for t in TRAITS for c in (t, f"{t}_source"))


def build_traits(catalog: Catalog, wikipedia_rows: list[dict]) -> tuple[list[dict], dict]:
    """(rows of the table, build report). Pure: no I/O."""
    own: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    by_genus: dict[str, dict[str, list[tuple[str, ...]]]] = defaultdict(lambda: defaultdict(list))
    unresolved = 0
    for row in wikipedia_rows:
        parsed = parse_name(row.get("scientific name"))
        if parsed is None:
            unresolved += 1
            continue
        accepted = catalog.resolve(parsed.species)
        genus = (catalog.get(accepted).genus if accepted else parsed.species.split()[0]).lower()
        for trait, column in TRAIT_COLUMNS.items():
            values = group_values(trait, row.get(column, ""))
            if not values:
                continue
            by_genus[genus][trait].append(values)  # every species with an entry counts, in the catalog or not
            if accepted:
                own[accepted][trait] += [v for v in values if v not in own[accepted][trait]]
        if accepted is None:
            unresolved += 1

    def genus_value(genus: str, trait: str) -> tuple[str, ...]:
        seen = by_genus.get(genus.lower(), {}).get(trait, [])
        agreed = {frozenset(v) for v in seen}
        return seen[0] if len(seen) >= MIN_GENUS_AGREEING and len(agreed) == 1 else ()

    rows = []
    for sp in catalog:
        row = {"name": sp.name, "genus": sp.genus}
        for trait in TRAITS:
            values, source = tuple(own.get(sp.name, {}).get(trait, ())), SOURCE_WIKIPEDIA
            if not values:
                values, source = genus_value(sp.genus, trait), SOURCE_GENUS
            row[trait] = LIST_SEP.join(values)
            row[f"{trait}_source"] = source if values else ""
        rows.append(row)
    report = {
        "species": len(rows),
        "species with an entry of their own": len(own),
        "entries not resolved to a catalog species": unresolved,
    }
    return rows, report


def coverage_lines(traits: Traits, names: list[str], title: str) -> list[str]:
    lines = [f"{title} ({len(names)} species): own entry / inferred from genus / unknown"]
    for trait, c in traits.coverage(names).items():
        lines.append(f"  {trait:16s} {c[SOURCE_WIKIPEDIA]:4d} / {c[SOURCE_GENUS]:4d} / {c['unknown']:4d}")
    return lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from mushroom_id.core import paths

    parser.add_argument("--source", type=Path, default=None, help=f"default: {paths.shared_catalog_dir()}")
    parser.add_argument("--catalog", type=Path, default=None, help=f"default: {paths.CATALOG_CSV}")
    parser.add_argument("--out", type=Path, default=None, help=f"default: {TRAITS_CSV}")


def run(args: argparse.Namespace) -> int:
    import json

    from mushroom_id.core import paths

    source = args.source or paths.shared_catalog_dir()
    with open(Path(source) / "edibility_wikipedia.csv", newline="", encoding="utf-8") as f:
        wikipedia = list(csv.DictReader(f))
    catalog = Catalog.load(args.catalog)
    rows, report = build_traits(catalog, wikipedia)
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
        for line in coverage_lines(traits, labels, "embedded model's labels"):
            print(line)
    print(f"wrote {out}")
    return 0
