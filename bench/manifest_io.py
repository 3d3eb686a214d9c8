"""The manifest between stages: CSV (before) against Parquet (now), written and read through the real code paths.

    nice python bench/manifest_io.py                 # 250,000 rows (a few minutes on a busy 2-core box)
    nice python bench/manifest_io.py --rows 50000 --repeats 3

Rows are bench/manifest_scale.py's synthetic crawl (974 species, URLs and sha256s of real length) with the
columns a build fills in (phash, dup_group, path, sha256, size, split). Each line is written and read back
``--repeats`` times in this one process, one after the other; the best time of each is reported:

* ``csv``: ``write_csv`` with :data:`MANIFEST_COLUMNS` (what every stage wrote before) and the CSV reader
  (``csv.DictReader`` to row dicts; what every stage read before, and what migration reads now).
* ``csv, gc on``: the same CSV read with Python's cyclic garbage collector running, as the stages read it
  before (the readers and writers now pause it while they build or take apart rows; write time: as csv).
* ``parquet``: ``write_manifest_parquet`` / ``read_manifest_parquet`` (pyarrow, string columns, zstd).
* ``stage now``: ``Manifest.write`` (the CSV copy for people and outside readers, written from the same
  Arrow table by pyarrow's CSV writer, then the Parquet) and
  ``Manifest.rows`` (the Parquet): what a stage costs now.

All build the same row dicts (checked). Prints one table (seconds, MB, CSV / Parquet) and one JSON
line per row.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def best_of(repeats: int, fn) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rows", type=int, default=250_000)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    from manifest_scale import synthetic_rows

    from data_prep.common import MANIFEST_COLUMNS as COLUMNS
    from data_prep.common import Manifest, gc_paused, read_csv, read_manifest_parquet, write_csv, write_manifest_parquet

    rows, _ = synthetic_rows(args.rows)
    for i, r in enumerate(rows):  # what the later stages fill in
        r.update(dup_group=r["image_id"], path=f"images/{r['species'].replace(' ', '_')}/{r['image_id']}.jpg")
        r.update(sha256=f"{i:064x}", width="600", height="450", split=("train", "validation", "test")[i % 3])
    with tempfile.TemporaryDirectory(prefix="manifest_io_") as tmp:
        work = Path(tmp)
        manifest = Manifest(work / "stage")
        legacy = Manifest(work / "csv")  # only its CSV reader is used
        parquet_file = work / "parquet" / "manifest.parquet"
        ordered = sorted(rows, key=lambda r: (r["species"], r["image_id"]))
        with gc_paused():  # as Manifest.write / rows do
            csv_write, _ = best_of(args.repeats, lambda: write_csv(legacy.csv_path, ordered, COLUMNS))
            pq_write, _ = best_of(args.repeats, lambda: write_manifest_parquet(parquet_file, ordered))
        csv_read, back_csv = best_of(args.repeats, legacy._read_csv)
        before_read, back_before = best_of(  # the stages' reader before: the same, garbage collection on
            args.repeats, lambda: [{c: r.get(c) or "" for c in COLUMNS} for r in read_csv(legacy.csv_path)]
        )
        with gc_paused():
            pq_read, back_pq = best_of(args.repeats, lambda: read_manifest_parquet(parquet_file))
        stage_write, _ = best_of(args.repeats, lambda: manifest.write(rows))
        stage_read, back_stage = best_of(args.repeats, manifest.rows)
        assert back_before == back_csv == back_pq == back_stage == ordered, "the formats disagree"
        mb = {
            "csv": legacy.csv_path.stat().st_size / 1e6,
            "csv, gc on": legacy.csv_path.stat().st_size / 1e6,
            "parquet": parquet_file.stat().st_size / 1e6,
            "stage now": (manifest.path.stat().st_size + manifest.csv_path.stat().st_size) / 1e6,
        }
        times = {
            "csv": (csv_write, csv_read),
            "csv, gc on": (csv_write, before_read),
            "parquet": (pq_write, pq_read),
            "stage now": (stage_write, stage_read),
        }
        results = [
            {"format": k, "rows": len(ordered), "write_s": w, "read_s": r, "mb": mb[k]} for k, (w, r) in times.items()
        ]
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"\nmanifest of {args.rows:,} rows x {len(COLUMNS)} columns, best of {args.repeats}, {cpus} CPUs visible")
    print(f"{'':<10} {'write s':>8} {'read s':>8} {'MB':>7}")
    for r in results:
        print(f"{r['format']:<10} {r['write_s']:>8.2f} {r['read_s']:>8.2f} {r['mb']:>7.1f}")
    c, p = results[0], results[2]
    print(
        f"{'csv / pq':<10} {c['write_s'] / p['write_s']:>7.1f}x {c['read_s'] / p['read_s']:>7.1f}x "
        f"{c['mb'] / p['mb']:>6.1f}x"
    )
    for r in results:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
