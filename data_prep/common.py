"""What every dataset stage shares: the work folder, the per-image manifest, journals, atomic writes.

Layout of a work folder (default ``artifacts/data``)::

    species.csv              species stage: accepted name, the queries (all its names), target count
    crawl/<Genus_species>.jsonl   crawl journal: one line per URL tried (outcome, hash, size, licence)
    raw/<Genus_species>/<url-hash>.<ext>   downloaded bytes, exactly as served
    local/<name>.csv         ingest: the rows of each local folder taken in (``--from DIR``)
    cache/<stage>.jsonl      per-image results of dedup (phash) and normalize, for resuming
    images/<Genus_species>/<image_id>.jpg  normalized RGB JPEGs
    manifest.parquet         THE per-image manifest (columns below, all strings, zstd), rewritten atomically by
                             each stage: what the stages exchange (at 250k rows a stage reads it 1.5-1.7x
                             faster than the CSV it read before, bench/manifest_io.py)
    manifest.csv             the same rows as CSV, written just before it: for people, and for the readers
                             outside the stages (the training engine's work-folder reader, leave-one-source-out);
                             never read by a stage except to migrate (below)
    dedup_report.csv         every duplicate pair found and what was done about it
    dataset/                 publish: the Hub-layout dataset folder
    left_out.csv             every image left out so far (the user's own file for a local folder, else its
                             URL), the stage and the reason; rewritten by each stage

Resuming: a stage appends each finished image to a journal (one JSON line, flushed) before moving
on; a rerun loads the journal and only does what is missing. A line cut short by a kill is ignored.
Files are written to a temporary name and moved into place with ``os.replace``, so a file either
exists complete or not at all.

Migration: a work folder from before ``manifest.parquet`` holds only ``manifest.csv``; the first stage that
reads it reads the CSV and rewrites it as Parquet (saying so), then carries on where the earlier run stopped
(the journals are untouched). A ``manifest.csv`` newer than ``manifest.parquet`` (written by an older version,
or edited by hand) is read and migrated the same way; a CSV copy the stages wrote is never newer.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gc
import json
import multiprocessing
import operator
import os
import re
import sys
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from mushroom_id.core.io import atomic_path, atomic_write_bytes, atomic_write_text, write_csv  # noqa: F401 (the stages' writers)
from mushroom_id.core.paths import REPO_DIR

DEFAULT_WORK_DIR = REPO_DIR / "artifacts" / "data"

# The shared per-image manifest. Stage that fills each column in brackets.
MANIFEST_COLUMNS = (
    "image_id",  # [crawl] sha1(species | source_url)[:16]; stable across reruns
    "species",  # [crawl] accepted catalog name (or the name as given, for rows dropped as unknown)
    "query",  # [crawl] the search query that found it ("url-list:<file>" for URL lists)
    "crawler",  # [crawl] bing | google | url-list | local (the ingest stage)
    "source",  # [crawl] who supplied the photo: a collection (local/url-list) or the website's host
    "source_url",  # [crawl] where the bytes came from
    "license",  # [crawl] SPDX-like id (CC-BY-SA-4.0, CC0-1.0, PD, unknown): data_prep.licences
    "license_raw",  # [crawl] the licence text exactly as the source gave it
    "origin",  # [crawl] the photo's home page (observation page, Bing's page URL) or a provenance note
    "creator",  # [crawl] photographer (GBIF media creator) when the source names one
    "rights_holder",  # [crawl] rights holder when the source names one (attribution)
    "occurrence_id",  # [crawl] GBIF occurrence ("gbif:<key>")
    "observation_id",  # [crawl] the specimen: "inat:<id>", "gbif:<key>", "mo:<id>" (else parsed from origin)
    "raw_path",  # [crawl] downloaded file, relative to the work folder
    "raw_sha256",  # [crawl] sha256 of the downloaded bytes (exact-duplicate key)
    "raw_width",  # [crawl] pixel size of the downloaded image
    "raw_height",
    "raw_format",  # [crawl] JPEG / PNG / ... as detected from the bytes, not the URL
    "phash",  # [dedup] imagededup PHash (16 hex digits)
    "dup_group",  # [dedup] images closer than --group-threshold share it; the split keeps a group together
    "duplicate_of",  # [dedup] image_id of the copy that was kept (for dropped duplicates)
    "path",  # [normalize] normalized JPEG, relative to the work folder
    "sha256",  # [normalize] sha256 of the normalized JPEG (the bytes that are published)
    "width",  # [normalize]
    "height",
    "split",  # [split] train | validation | test
    "status",  # ok | dropped
    "drop_stage",  # the stage that dropped the image
    "drop_reason",  # why, in words (e.g. "http 404", "near duplicate of ... (phash distance 3)")
)
# Columns each stage owns; rerunning a stage clears them and the columns of every later stage.
STAGE_COLUMNS = {
    "crawl": MANIFEST_COLUMNS[: MANIFEST_COLUMNS.index("raw_format") + 1],
    "dedup": ("phash", "dup_group", "duplicate_of"),
    "normalize": ("path", "sha256", "width", "height"),
    "split": ("split",),
}
STAGE_ORDER = ("crawl", "dedup", "normalize", "split", "publish")

Row = dict[str, str]


# ---------------------------------------------------------------------------------------------
# files


def species_dir_name(species: str) -> str:
    """``Amanita muscaria`` -> ``Amanita_muscaria`` (the folder name used everywhere)."""
    return re.sub(r"[^A-Za-z0-9.-]+", "_", species.strip()).strip("_")


def remove_stale_temp_files(folder: str | os.PathLike) -> int:
    """Delete the temporary files of :func:`atomic_path` that a killed run left under ``folder``.

    A SIGKILL skips the ``finally`` that removes them; they were never moved into place, so no
    manifest row or journal record points at them. Returns how many were removed.
    """
    removed = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            if name.startswith(".") and name.endswith(".tmp"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(root, name))
                    removed += 1
    return removed


def read_csv(path: str | os.PathLike) -> Iterator[Row]:
    with open(path, newline="", encoding="utf-8") as f:
        yield from csv.DictReader(f)


# ---------------------------------------------------------------------------------------------
# journal


class Journal:
    """Append-only JSON-lines log of finished work, keyed by ``record[key]``; survives SIGKILL.

    A later record for the same key replaces the earlier one. A last line cut short by a kill is
    skipped when loading (and the next append starts on a fresh line).
    """

    def __init__(self, path: str | os.PathLike, key: str = "key"):
        self.path = Path(path)
        self.key = key
        self._file = None

    def load(self) -> dict[str, dict]:
        records: dict[str, dict] = {}
        if not self.path.is_file():
            return records
        with open(self.path, encoding="utf-8") as f:
            for line in f:
                if not line.endswith("\n"):
                    break  # cut short by a kill
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError:
                    continue
                if isinstance(rec, dict) and self.key in rec:
                    records[str(rec[self.key])] = rec
        return records

    def append(self, record: dict) -> None:
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            needs_newline = self.path.is_file() and self.path.stat().st_size > 0 and not self._ends_with_newline()
            self._file = open(self.path, "a", encoding="utf-8")
            if needs_newline:
                self._file.write("\n")
        self._file.write(json.dumps(record, sort_keys=True) + "\n")
        self._file.flush()  # in the OS's hands now: a killed process loses nothing written so far

    def _ends_with_newline(self) -> bool:
        with open(self.path, "rb") as f:
            f.seek(-1, os.SEEK_END)
            return f.read(1) == b"\n"

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


# ---------------------------------------------------------------------------------------------
# manifest


class ManifestError(ValueError):
    """A manifest file that cannot be read as one (corrupt, or not a data_prep manifest)."""


class Manifest:
    """The per-image manifest: ``manifest.parquet`` with :data:`MANIFEST_COLUMNS` (all strings), one row per
    image ever seen; ``manifest.csv`` is its copy for people and for readers outside the stages (module docstring).

    Rows are plain ``dict[str, str]`` (about 2.3 kB each in memory, measured by bench/manifest_scale.py:
    250,000 rows need ~0.6 GB; the images themselves are never held in memory).
    """

    def __init__(self, work_dir: str | os.PathLike):
        self.work_dir = Path(work_dir)
        self.path = self.work_dir / "manifest.parquet"
        self.csv_path = self.work_dir / "manifest.csv"

    def exists(self) -> bool:
        return self.path.is_file() or self.csv_path.is_file()

    def rows(self) -> list[Row]:
        if self.path.is_file() and not self._csv_is_newer():
            with gc_paused():
                return read_manifest_parquet(self.path)
        if self.csv_path.is_file():
            return self._migrate()
        raise FileNotFoundError(f"{self.path} not found: run the earlier stages first (python -m data_prep crawl)")

    def write(self, rows: Iterable[Row]) -> int:
        """Rewrite the manifest (sorted by species, image_id): its CSV copy first, so that the Parquet is never
        the older of the two (a kill in between leaves a newer CSV with the new rows: read and migrated)."""
        with gc_paused():
            ordered = sorted(rows, key=lambda r: (r["species"], r["image_id"]))
            write_manifest_parquet(self.path, ordered, csv_copy=self.csv_path)
        return len(ordered)

    def _csv_is_newer(self) -> bool:
        return self.csv_path.is_file() and self.csv_path.stat().st_mtime_ns > self.path.stat().st_mtime_ns

    def _read_csv(self) -> list[Row]:
        with gc_paused(), open(self.csv_path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            missing = {"image_id", "species", "status"} - set(reader.fieldnames or ())
            if missing:
                raise ManifestError(
                    f"{self.csv_path}: not a data_prep manifest (no {', '.join(sorted(missing))} column); "
                    "move it away and rerun the stages from crawl or ingest"
                )
            return [{c: row.get(c) or "" for c in MANIFEST_COLUMNS} for row in reader]

    def _migrate(self) -> list[Row]:
        """Read ``manifest.csv`` (an earlier run's manifest, or one edited since) and rewrite it as Parquet."""
        rows = self._read_csv()
        why = "newer than manifest.parquet" if self.path.is_file() else "from an earlier run"
        print(
            f"data_prep: {self.csv_path} ({why}): read, and rewritten as {self.path.name} (the stages exchange "
            f"Parquet now; {len(rows)} rows, nothing else changed)",
            file=sys.stderr,
        )
        write_manifest_parquet(self.path, sorted(rows, key=lambda r: (r["species"], r["image_id"])))
        os.utime(self.csv_path, ns=(self.path.stat().st_atime_ns, self.path.stat().st_mtime_ns - 1))
        return rows


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while a manifest's rows are built or taken apart: each of the millions of
    new strings and dicts counts towards a collection that walks every object alive, and none of them forms
    a cycle (about a third of the read time at 250k rows, bench/manifest_io.py)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def manifest_schema():
    import pyarrow as pa

    return pa.schema([(c, pa.string()) for c in MANIFEST_COLUMNS])


def write_manifest_parquet(path: Path, rows: list[Row], csv_copy: Path | None = None) -> None:
    """``rows`` as a Parquet file of string columns, atomically (temp file, then rename); ``csv_copy``: the same
    table as CSV first (pyarrow's writer: every value quoted, about 20x faster than the csv module)."""
    import pyarrow as pa
    import pyarrow.csv
    import pyarrow.parquet as pq

    try:  # rows as the stages keep them (every column, strings): one pass in C
        columns = list(zip(*map(operator.itemgetter(*MANIFEST_COLUMNS), rows), strict=True)) or [()] * len(
            MANIFEST_COLUMNS
        )
        arrays = [pa.array(values, pa.string()) for values in columns]
    except (KeyError, pa.ArrowException):  # a missing column, a number or None: as the CSV writer wrote them
        arrays = [
            pa.array(["" if r.get(c) is None else str(r[c]) for r in rows], pa.string()) for c in MANIFEST_COLUMNS
        ]
    table = pa.Table.from_arrays(arrays, schema=manifest_schema())
    if csv_copy is not None:
        with atomic_path(csv_copy) as tmp:
            pyarrow.csv.write_csv(table, tmp)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp, compression="zstd")


def read_manifest_parquet(path: Path) -> list[Row]:
    """The rows of a manifest Parquet file, every column of :data:`MANIFEST_COLUMNS` (missing ones empty)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except (pa.ArrowException, OSError) as e:
        raise ManifestError(
            f"{path}: not a readable manifest ({e}); delete it to rebuild from manifest.csv if there is one, "
            "else rerun the stages from crawl or ingest"
        ) from e
    if "image_id" not in table.column_names:
        raise ManifestError(f"{path}: not a data_prep manifest (no image_id column)")
    n = table.num_rows
    values = [table.column(c).to_pylist() if c in table.column_names else [""] * n for c in MANIFEST_COLUMNS]
    return [dict(zip(MANIFEST_COLUMNS, [v or "" for v in row], strict=True)) for row in zip(*values, strict=True)]


def reset_from(rows: list[Row], stage: str) -> None:
    """Forget what ``stage`` and every later stage decided, so that rerunning it starts clean."""
    later = STAGE_ORDER[STAGE_ORDER.index(stage) :]
    for row in rows:
        for st in later:
            for col in STAGE_COLUMNS.get(st, ()):
                row[col] = ""
        if row["drop_stage"] in later:
            row["status"], row["drop_stage"], row["drop_reason"] = "ok", "", ""


def drop(row: Row, stage: str, reason: str) -> None:
    row["status"], row["drop_stage"], row["drop_reason"] = "dropped", stage, reason


def reason_kind(reason: str) -> str:
    """The reason without its details, for counting ("near duplicate of x (d 3)" -> "near duplicate")."""
    return re.split(r" of | \(|:", reason, maxsplit=1)[0].strip()


def drop_counts(rows: Iterable[Row], stage: str | None = None) -> Counter:
    return Counter(
        (r["drop_stage"], reason_kind(r["drop_reason"]))
        for r in rows
        if r["status"] == "dropped" and (stage is None or r["drop_stage"] == stage)
    )


# ---------------------------------------------------------------------------------------------
# parallel map and reporting


def parallel_map(
    fn: Callable[[Any], Any],
    items: Iterable[Any],
    workers: int,
    total: int | None = None,
    desc: str = "",
    chunksize: int = 8,
) -> Iterator[Any]:
    """``fn`` over ``items`` in ``workers`` processes (forked; results in completion order) with a tqdm bar.

    Streams: items are fed lazily and results are yielded as they come, so memory stays flat.
    ``workers <= 1`` runs in this process (easier to debug, no start-up cost for small jobs).
    """
    from tqdm import tqdm

    bar = tqdm(total=total, desc=desc, unit="img", disable=None, file=sys.stderr)
    try:
        if workers <= 1:
            for item in items:
                yield fn(item)
                bar.update()
            return
        ctx = multiprocessing.get_context("fork")  # children inherit already-imported libraries
        with ctx.Pool(workers) as pool:
            for result in pool.imap_unordered(fn, items, chunksize=chunksize):
                yield result
                bar.update()
    finally:
        bar.close()


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


class Stage:
    """What every manifest stage does around its own work. At the start: read the manifest and forget
    what this stage and every later one decided (``reset_from``), so a rerun starts clean. At the end:
    ``finish(summary)`` reports one summary dict, saved as JSON and printed from the same dict."""

    def __init__(self, name: str, work_dir: Path):
        self.name, self.work_dir = name, Path(work_dir)
        self.manifest = Manifest(self.work_dir)
        self.rows = self.manifest.rows()
        reset_from(self.rows, name)

    @property
    def live(self) -> list[Row]:
        """The rows still kept (the same dicts as in ``rows``: a verdict on one is a verdict in both)."""
        return [r for r in self.rows if r["status"] == "ok"]

    def write(self) -> None:
        self.manifest.write(self.rows)

    def finish(self, summary: dict[str, Any]) -> int:
        code = report(self.work_dir, self.name, summary)
        announce_left_out(self.work_dir, self.rows, self.name)
        return code


LEFT_OUT_REPORT = "left_out.csv"
LEFT_OUT_COLUMNS = ("file", "species", "stage", "reason", "image_id")


def user_files(work_dir: Path) -> dict[str, str]:
    """image_id -> the user's own file, for the photos ``ingest`` took in from a local folder."""
    out: dict[str, str] = {}
    for f in sorted((Path(work_dir) / "local" / "paths").glob("*.csv")):
        out.update((r["image_id"], r["file"]) for r in read_csv(f))
    return out


def left_out(work_dir: Path, rows: Iterable[Row]) -> list[dict[str, str]]:
    """Every dropped row as (the user's file, or the URL for a crawled one; species; stage; reason)."""
    files = user_files(work_dir)
    return [
        {
            "file": files.get(r["image_id"]) or r["source_url"],
            "species": r["species"],
            "stage": "ingest" if r["crawler"] == "local" and r["drop_stage"] == "crawl" else r["drop_stage"],
            "reason": r["drop_reason"],
            "image_id": r["image_id"],
        }
        for r in rows
        if r["status"] == "dropped"
    ]


def announce_left_out(work_dir: Path, rows: Iterable[Row], stage: str, file=None) -> list[dict[str, str]]:
    """Rewrite ``left_out.csv`` from the manifest rows, and print the user's own files this stage left out
    (a crawl's URLs are counted in its summary, not listed). Returns that stage's entries."""
    entries = left_out(work_dir, rows)
    write_csv(Path(work_dir) / LEFT_OUT_REPORT, entries, LEFT_OUT_COLUMNS)
    files = user_files(work_dir)
    mine = [e for e in entries if e["stage"] == stage and e["image_id"] in files]
    print_left_out(mine, f"{stage} left out {len(mine)} of your files", Path(work_dir) / LEFT_OUT_REPORT, file)
    return mine


def print_left_out(entries: list[dict[str, str]], title: str, report_file: Path, file=None) -> None:
    if not entries:
        return
    print(f"\n{title} (all left-out images: {report_file}):", file=file or sys.stdout)
    for e in entries:
        print(f"  {e['file']}: {e['reason']}", file=file or sys.stdout)


def report(work_dir: Path, stage: str, summary: dict[str, Any]) -> int:
    """Save a stage's summary (``summaries/<stage>.json``, quoted by publish) and print the same dict."""
    write_summary(work_dir, stage, summary)
    print_summary(stage, summary_lines(summary))
    return 0


def summary_lines(summary: dict[str, Any]) -> Iterator[tuple[str, Any]]:
    """``images_kept: 3`` -> ``("images kept", 3)``; a dict value gives one line per key, a long list
    its length (the JSON keeps it whole)."""
    for key, value in summary.items():
        label = key.replace("_", " ")
        if isinstance(value, dict) and len(value) > 6:
            yield label, f"{len(value)} (listed in summaries/)"
        elif isinstance(value, dict):
            if not value:
                yield label, "-"
            for k, v in value.items():
                yield f"{label}: {k}", v
        elif isinstance(value, list | tuple) and len(value) > 6:
            yield label, f"{len(value)} (listed in summaries/)"
        elif isinstance(value, list | tuple):
            yield label, ", ".join(map(str, value)) or "-"
        elif value is not None:
            yield label, value


def print_summary(title: str, lines: Iterable[tuple[str, Any]]) -> None:
    print(f"\n== {title} ==")
    for label, value in lines:
        print(f"  {label:<44} {value}")


def write_summary(work_dir: Path, stage: str, summary: dict) -> None:
    """Keep each stage's summary as JSON (the publish stage quotes them in the dataset card)."""
    atomic_write_text(work_dir / "summaries" / f"{stage}.json", json.dumps(summary, indent=2, sort_keys=True))


def read_summaries(work_dir: Path) -> dict[str, dict]:
    out = {}
    for file in sorted((work_dir / "summaries").glob("*.json")):
        out[file.stem] = json.loads(file.read_text())
    return out


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--work-dir",
        type=Path,
        default=DEFAULT_WORK_DIR,
        help=f"folder holding every stage's output (default {DEFAULT_WORK_DIR.relative_to(REPO_DIR)})",
    )
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="parallel processes (default: all cores)"
    )
    from .ray_engine import add_engine_arguments

    add_engine_arguments(parser)


def image_id(species: str, url: str) -> str:
    """The manifest's id of one image: stable for a species and its address (crawl, ingest)."""
    import hashlib

    return hashlib.sha1(f"{species}|{url}".encode()).hexdigest()[:16]
