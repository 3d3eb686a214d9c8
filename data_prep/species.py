"""species: choose the species to crawl and the search queries for each (writes species.csv).

Default: every accepted species of the catalog, each queried under all its names (accepted name and
synonyms); whatever a synonym query finds is filed under the accepted name, so one species can never
come back as two classes (the original's Boletus badius / Imleria badia).

``--candidates CSV`` reproduces the original's method instead: from a table of candidate names with
a popularity column (``../shared/data/catalog/species_search_hits.csv``: 1911 names with Google hit
counts) drop ``var.`` names and duplicates and keep the names above ``--min-hits`` (20,000 -> 1071).
Kept names are resolved through the catalog; the summary lists the catalog species the method misses
(its counts are wrong for some: Amanita muscaria 2,050 hits) and the names it would keep twice.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

from .common import add_common_arguments, atomic_write_text, print_summary, read_csv, write_csv, write_summary

SPECIES_COLUMNS = ("species", "queries", "edibility", "dangerous", "target")
QUERY_SEP = "; "
VAR_RE = re.compile(r"\b(var|f|subsp|ssp)\.(\s|$)", re.IGNORECASE)


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("species")
    g.add_argument("--candidates", type=Path, help="original method: candidate names table (names + hit counts)")
    g.add_argument("--min-hits", type=float, default=20000, help="keep candidates with more hits than this")
    g.add_argument("--name-column", default="names")
    g.add_argument("--hits-column", default="Number_Hits_Google")
    g.add_argument("--only", help="restrict to these species (comma-separated names; synonyms resolve)")
    g.add_argument("--per-species", type=int, default=200, help="images to crawl per species (0: no cap)")
    g.add_argument(
        "--toxic-factor",
        type=float,
        default=2.0,
        help="crawl this many times more images for deadly/poisonous/psychoactive species",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_stage_arguments(parser)


def select_from_candidates(rows: list[dict[str, str]], catalog, min_hits: float, name_col: str, hits_col: str):
    """The original's selection. Returns (accepted names kept, report dict)."""
    seen, kept_names = set(), []
    n_var = n_dup = 0
    for row in rows:
        name = " ".join(row[name_col].split())
        if VAR_RE.search(name):
            n_var += 1
            continue
        if name.lower() in seen:
            n_dup += 1
            continue
        seen.add(name.lower())
        try:
            hits = float(row[hits_col] or 0)
        except ValueError:
            hits = 0.0
        if hits > min_hits:
            kept_names.append(name)
    by_accepted: dict[str, list[str]] = defaultdict(list)
    unresolved = []
    for name in kept_names:
        accepted = catalog.resolve(name)
        if accepted is None:
            unresolved.append(name)
        else:
            by_accepted[accepted].append(name)
    twice = {acc: names for acc, names in by_accepted.items() if len(names) > 1}
    missed = sorted(set(catalog.names) - set(by_accepted))
    report = {
        "candidates": len(rows),
        "dropped_var_names": n_var,
        "dropped_duplicate_names": n_dup,
        "kept_by_threshold": len(kept_names),
        "kept_species_in_catalog": len(by_accepted),
        "kept_not_in_catalog": unresolved,
        "kept_twice_under_two_names": twice,
        "catalog_species_missed": missed,
    }
    return sorted(by_accepted), report


def species_rows(names: list[str], catalog, per_species: int, toxic_factor: float) -> list[dict[str, object]]:
    rows = []
    for name in sorted(names):
        sp = catalog.get(name)
        queries = [sp.name] + [s for s in sp.synonyms if s.lower() != sp.name.lower()]
        target = per_species if not sp.dangerous or per_species == 0 else round(per_species * toxic_factor)
        rows.append(
            {
                "species": sp.name,
                "queries": QUERY_SEP.join(dict.fromkeys(queries)),
                "edibility": sp.edibility,
                "dangerous": str(sp.dangerous).lower(),
                "target": target,
            }
        )
    return rows


def read_species(work_dir: Path) -> list[dict[str, str]]:
    path = work_dir / "species.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: run `python -m data_prep species` first")
    return list(read_csv(path))


def run(args: argparse.Namespace) -> int:
    from mushroom_id.core.catalog import default_catalog

    catalog = default_catalog()
    report: dict = {}
    if args.candidates:
        names, report = select_from_candidates(
            list(read_csv(args.candidates)), catalog, args.min_hits, args.name_column, args.hits_column
        )
        method = f"candidates from {args.candidates.name}, hits > {args.min_hits:g}"
    else:
        names, method = catalog.names, "catalog accepted species"
    if args.only:
        wanted = []
        for raw in args.only.split(","):
            accepted = catalog.resolve(raw.strip())
            if accepted is None:
                raise SystemExit(f"--only: {raw.strip()!r} is not a catalog species")
            wanted.append(accepted)
        names = sorted(set(names) & set(wanted))
    rows = species_rows(names, catalog, args.per_species, args.toxic_factor)
    args.work_dir.mkdir(parents=True, exist_ok=True)
    write_csv(args.work_dir / "species.csv", rows, SPECIES_COLUMNS)
    n_queries = sum(len(str(r["queries"]).split(QUERY_SEP)) for r in rows)
    summary = {
        "method": method,
        "species": len(rows),
        "queries": n_queries,
        "dangerous_species": sum(r["dangerous"] == "true" for r in rows),
        "target_images": sum(int(r["target"]) for r in rows),
        **report,
    }
    write_summary(args.work_dir, "species", summary)
    lines = [
        ("method", method),
        ("species selected", len(rows)),
        ("queries (all names)", n_queries),
        (f"dangerous species (x{args.toxic_factor:g} images)", summary["dangerous_species"]),
        ("target images (0 = no cap)", summary["target_images"]),
    ]
    if report:
        lines += [
            ("candidates read", report["candidates"]),
            (
                "dropped var. names / duplicate names",
                f"{report['dropped_var_names']} / {report['dropped_duplicate_names']}",
            ),
            (f"kept above {args.min_hits:g} hits", report["kept_by_threshold"]),
            ("  of which catalog species", report["kept_species_in_catalog"]),
            ("  not in the catalog (left out)", len(report["kept_not_in_catalog"])),
            ("  kept twice under two names", len(report["kept_twice_under_two_names"])),
            ("catalog species the method misses", len(report["catalog_species_missed"])),
        ]
        twice = "; ".join(f"{acc} <- {', '.join(v)}" for acc, v in sorted(report["kept_twice_under_two_names"].items()))
        atomic_write_text(
            args.work_dir / "species_candidates_report.txt",
            f"kept twice: {twice}\nmissed: {', '.join(report['catalog_species_missed'])}\n"
            f"not in catalog: {', '.join(report['kept_not_in_catalog'])}\n",
        )
    print_summary("species", lines)
    if report:
        for acc, v in sorted(report["kept_twice_under_two_names"].items())[:10]:
            print(f"  kept twice: {acc} <- {', '.join(v)}")
        missed = report["catalog_species_missed"]
        famous = [
            n for n in ("Amanita muscaria", "Boletus edulis", "Amanita bisporigera", "Amanita ocreata") if n in missed
        ]
        if famous:
            print(f"  missed, among others: {', '.join(famous)}")
    return 0
