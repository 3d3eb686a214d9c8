"""The manifest between stages: CSV (before) against Parquet (now), written and read through the real code paths.

    nice python bench/manifest_io.py                 # 250,000 rows (about a minute on 2 cores)
    nice python bench/manifest_io.py --rows 50000 --repeats 3

Rows are bench/manifest_scale.py's synthetic crawl (974 species, URLs and sha256s of real length, the
columns a build fills in: phash, dup_group, path, sha256, split). Each format is written and read back
``--repeats`` times in this one process, side by side; the best time of each is reported:

* CSV: ``write_csv`` with :data:`MANIFEST_COLUMNS` (what every stage wrote before) and the reader
  ``Manifest`` still uses to migrate a work folder from an earlier run (``csv.DictReader`` to row dicts).
* Parquet: ``Manifest.write`` / ``Manifest.rows`` (pyarrow, string columns, zstd) on an unsplit
  manifest, so no CSV copy is written.

Prints one table (seconds, MB, Parquet's speed-up) and one JSON line per format.
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
    from data_prep.common import Manifest, write_csv

    rows, _ = synthetic_rows(args.rows)
    for i, r in enumerate(rows):  # what later stages fill in, except the split (an unsplit manifest)
        r.update(dup_group=r["image_id"], path=f"images/{r['species'].replace(' ', '_')}/{r['image_id']}.jpg")
        r.update(sha256=f"{i:064x}", width="600", height="450")
    with tempfile.TemporaryDirectory(prefix="manifest_io_") as tmp:
        work = Path(tmp)
        manifest = Manifest(work)
        csv_file = work / "legacy" / "manifest.csv"
        ordered = sorted(rows, key=lambda r: (r["species"], r["image_id"]))
        csv_write, _ = best_of(args.repeats, lambda: write_csv(csv_file, ordered, COLUMNS))
        legacy = Manifest(csv_file.parent)
        csv_read, back_csv = best_of(args.repeats, lambda: legacy._read_csv())
        pq_write, _ = best_of(args.repeats, lambda: manifest.write(rows))
        pq_read, back_pq = best_of(args.repeats, manifest.rows)
        assert back_pq == back_csv, "the two formats disagree"
        assert not manifest.csv_path.exists()
        results = [
            {"format": "csv", "rows": len(back_csv), "write_s": csv_write, "read_s": csv_read,
             "mb": csv_file.stat().st_size / 1e6},
            {"format": "parquet", "rows": len(back_pq), "write_s": pq_write, "read_s": pq_read,
             "mb": manifest.path.stat().st_size / 1e6},
        ]  # fmt: skip
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"\nmanifest of {args.rows:,} rows x {len(COLUMNS)} columns, best of {args.repeats}, {cpus} CPUs visible")
    print(f"{'format':<9} {'write s':>8} {'read s':>8} {'MB':>7}")
    for r in results:
        print(f"{r['format']:<9} {r['write_s']:>8.2f} {r['read_s']:>8.2f} {r['mb']:>7.1f}")
    c, p = results
    print(
        f"{'csv/pq':<9} {c['write_s'] / p['write_s']:>7.1f}x {c['read_s'] / p['read_s']:>7.1f}x "
        f"{c['mb'] / p['mb']:>6.1f}x"
    )
    for r in results:
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
