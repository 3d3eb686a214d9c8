"""species: choose the species to crawl and the search queries for each (writes species.csv).

Default: every accepted species of the catalog, each queried under all its names (accepted name and
synonyms); whatever a synonym query finds is filed under the accepted name, so one species can never
come back as two classes (the original's Boletus badius / Imleria badia).

``--candidates CSV`` reproduces the original's method instead: from a table of candidate names with
a popularity column (``../shared/data/catalog/species_search_hits.csv``: 1911 names with Google hit
counts) drop ``var.`` names and duplicates and keep the names above ``--min-hits``. Hit counts are parsed
from the search-result text (``--results-column``: "Aproximadamente 2.050.000 resultados", Spanish
thousands separators): the table's numeric column read "2.050.000" as 2,050, which put Amanita muscaria,
Boletus edulis, Agaricus bisporus and more popular species under the cut (``--hits-as-original``
reproduces that). The original's own labels are kept whatever their count (``--keep-labels``, default
``../shared/data/catalog/labels_933.csv``; ``--keep-labels ""`` turns it off): the original kept *Rhodocybe
gemina* (now *Clitopilus geminus*) at 11,100 hits, the one label of its 933 below its own cut, so the cut
alone loses one of the 860 species the labels resolve to. Kept names are resolved through the catalog; the
summary lists the species the parsing fix brings in, the labels kept below the cut, the catalog species the
method misses and the names it would keep twice.
"""

from __future__ import annotations

import argparse
import re
from collections import defaultdict
from pathlib import Path

from .common import add_common_arguments, atomic_write_text, read_csv, write_csv
from .common import report as report_summary

SPECIES_COLUMNS = ("species", "queries", "edibility", "dangerous", "target")
QUERY_SEP = "; "
VAR_RE = re.compile(r"\b(var|f|subsp|ssp)\.(\s|$)", re.IGNORECASE)


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("species")
    g.add_argument("--candidates", type=Path, help="original method: candidate names table (names + hit counts)")
    g.add_argument("--min-hits", type=float, default=20000, help="keep candidates with more hits than this")
    g.add_argument("--name-column", default="names")
    g.add_argument("--hits-column", default="Number_Hits_Google", help="numeric column (used when the text has none)")
    g.add_argument("--results-column", default="Results_Google", help="search-result text the hit count is parsed from")
    g.add_argument(
        "--hits-as-original",
        action="store_true",
        help="use the numeric column as the original did (thousands separators misread: 2.050.000 -> 2050)",
    )
    g.add_argument(
        "--keep-labels",
        default=None,
        help="with --candidates: a labels table (column Names) whose names are kept whatever their hit count "
        "(default: the original's labels_933.csv in the shared catalog; '' for none)",
    )
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


_HITS_RE = re.compile(r"(\d{1,3}(?:[.,\u00a0\u202f ]\d{3})+|\d+)\s*(?:resultados?|results?)", re.I)


def parse_hits(text: str) -> float | None:
    """The hit count in a search-result line, any thousands separator ("Aproximadamente 2.050.000
    resultados (0,45 segundos)" -> 2050000; "About 1,230 results" -> 1230); None when there is none."""
    m = _HITS_RE.search(text or "")
    return float(re.sub(r"\D", "", m.group(1))) if m else None


def _column_hits(row: dict, hits_col: str) -> float:
    try:
        return float(row.get(hits_col) or 0)
    except ValueError:
        return 0.0


def select_from_candidates(
    rows: list[dict[str, str]],
    catalog,
    min_hits: float,
    name_col: str,
    hits_col: str,
    results_col: str | None = "Results_Google",
    as_original: bool = False,
    keep: list[str] | None = None,
):
    """The original's selection: names above ``min_hits``, plus the names in ``keep`` (the original's
    labels) whatever their count. Returns (accepted names kept, report dict)."""
    seen, kept_names = set(), []
    kept_by_column: list[str] = []
    misparsed: dict[str, list[float]] = {}
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
        column = _column_hits(row, hits_col)
        parsed = parse_hits(row.get(results_col) or "") if results_col else None
        if parsed is not None and parsed != column:
            misparsed[name] = [column, parsed]
        hits = column if as_original or parsed is None else parsed
        if hits > min_hits:
            kept_names.append(name)
        if column > min_hits:
            kept_by_column.append(name)
    by_threshold = {catalog.resolve(n) for n in kept_names} - {None}
    kept_labels_below = []
    for name in keep or ():
        accepted = catalog.resolve(name)
        if accepted is not None and accepted not in by_threshold and name not in kept_labels_below:
            kept_labels_below.append(name)
    by_accepted: dict[str, list[str]] = defaultdict(list)
    unresolved = []
    for name in kept_names + kept_labels_below:
        accepted = catalog.resolve(name)
        if accepted is None:
            unresolved.append(name)
        else:
            by_accepted[accepted].append(name)
    twice = {acc: names for acc, names in by_accepted.items() if len(names) > 1}
    missed = sorted(set(catalog.names) - set(by_accepted))
    by_column = {catalog.resolve(n) for n in kept_by_column} - {None}
    brought_in = sorted(set(by_accepted) - by_column)
    left_out = sorted(by_column - set(by_accepted))
    report = {
        "candidates": len(rows),
        "dropped_var_names": n_var,
        "dropped_duplicate_names": n_dup,
        "kept_by_threshold": len(kept_names),
        "kept_as_labels_below_the_cut": sorted(kept_labels_below),
        "kept_species_in_catalog": len(by_accepted),
        "kept_not_in_catalog": unresolved,
        "kept_twice_under_two_names": twice,
        "catalog_species_missed": missed,
        "hits_parsed_from_text": not as_original,
        "names_misparsed_by_the_numeric_column": len(misparsed),
        "misparsed_examples": dict(sorted(misparsed.items(), key=lambda x: -x[1][1])[:10]),
        "species_brought_in_by_parsing": brought_in if not as_original else [],
        "species_left_out_by_parsing": left_out if not as_original else [],
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
        from mushroom_id.core.paths import shared_catalog_dir

        labels_path = shared_catalog_dir() / "labels_933.csv" if args.keep_labels is None else args.keep_labels
        keep = [r["Names"] for r in read_csv(Path(labels_path))] if labels_path else []
        names, report = select_from_candidates(
            list(read_csv(args.candidates)),
            catalog,
            args.min_hits,
            args.name_column,
            args.hits_column,
            args.results_column,
            args.hits_as_original,
            keep,
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
    summary["toxic_factor"] = args.toxic_factor
    if report:
        twice = "; ".join(f"{acc} <- {', '.join(v)}" for acc, v in sorted(report["kept_twice_under_two_names"].items()))
        atomic_write_text(
            args.work_dir / "species_candidates_report.txt",
            f"kept twice: {twice}\nmissed: {', '.join(report['catalog_species_missed'])}\n"
            f"not in catalog: {', '.join(report['kept_not_in_catalog'])}\n",
        )
    report_summary(args.work_dir, "species", summary)
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
