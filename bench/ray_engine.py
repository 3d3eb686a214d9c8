"""The single-machine path against Ray Data on the same cores, side by side in one run (issue 29).

    python bench/ray_engine.py                          # 3,000 real photos, 250,000 hashes, 2 CPUs
    python bench/ray_engine.py --photos 500 --rows 50000 --cpus 2

* ``phash`` and ``normalize``: the first ``--photos`` photos of ../shared taken in (``ingest``) once, then
  hashed and normalized by each engine from an empty journal (``dedup.compute_phashes``, the ``normalize``
  stage); the results are compared (same hashes, same manifest).
* ``pair search``: ``--rows`` synthetic 64-bit hashes with 1% planted near copies (``bench/data_prep.py``), the
  exact search at distance 10 (dedup's group threshold) by ``near_duplicates.hash_pairs`` and by the Ray
  engine's block search (``ray_engine.pair_search``); same pairs checked.

Ray is started once with ``--cpus`` CPUs (its start-up is shown apart); the local engine gets ``--cpus``
workers. Times are wall seconds of one pass each; on a loaded machine compare within one run only.
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=3000)
    ap.add_argument("--rows", type=int, default=250_000)
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--tmp", type=Path, default=None, help="scratch folder (default: a temporary one)")
    args = ap.parse_args()
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())

    import ray

    from bench.data_prep import synthetic_hashes
    from data_prep import ray_engine
    from data_prep.__main__ import main as data_prep
    from data_prep.common import Manifest
    from data_prep.dedup import compute_phashes
    from data_prep.near_duplicates import hash_pairs
    from mushroom_id.core.paths import shared_photos_dir

    tmp = args.tmp or Path(tempfile.mkdtemp(prefix="bench-ray-"))
    photos = shared_photos_dir()
    with open(photos / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if (photos.parent / r["path"]).is_file()][: args.photos]
    folder = tmp / "photos"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["species", "path", "source", "origin", "license"])
        for r in rows:
            w.writerow([r["species"], str(photos.parent / r["path"]), r["source"], r["origin"], r["license"]])
    base = tmp / "base"
    data_prep(["ingest", "--from", str(folder), "--work-dir", str(base)])
    results: list[tuple[str, str, float, float]] = []

    t0 = time.perf_counter()
    os.environ.setdefault("PYTHONPATH", str(Path(__file__).resolve().parents[1]))
    ray_engine.ensure_ray(None, args.cpus)
    startup = time.perf_counter() - t0

    def fresh(name: str) -> Path:
        work = tmp / name
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(base, work, ignore=shutil.ignore_patterns("cache", "ray"))
        return work

    # PHash
    works = {e: fresh(f"phash-{e}") for e in ("local", "ray")}
    live = {e: [r for r in Manifest(w).rows() if r["status"] == "ok"] for e, w in works.items()}
    codes_local, t_local = _timed(lambda: compute_phashes(live["local"], works["local"], args.cpus, "local"))
    codes_ray, t_ray = _timed(lambda: compute_phashes(live["ray"], works["ray"], args.cpus, "ray"))
    assert codes_local == codes_ray, "PHash differs between the engines"
    results.append(("phash", f"{len(codes_local):,} photos", t_local, t_ray))

    # normalize
    times = {}
    for e in ("local", "ray"):
        work = fresh(f"normalize-{e}")
        _, times[e] = _timed(
            lambda work=work, e=e: data_prep(
                ["normalize", "--work-dir", str(work), "--workers", str(args.cpus), "--engine", e]
            )
        )
    manifests = [(tmp / f"normalize-{e}" / "manifest.parquet").read_bytes() for e in ("local", "ray")]
    assert manifests[0] == manifests[1], "normalize manifests differ between the engines"
    results.append(("normalize", f"{len(live['local']):,} photos", times["local"], times["ray"]))

    # pair search
    codes = synthetic_hashes(args.rows)
    pairs_local, t_local = _timed(lambda: hash_pairs(codes, 10))
    search = ray_engine.pair_search(tmp / "search")
    pairs_ray, t_ray = _timed(lambda: search(codes, 10))
    assert pairs_local == pairs_ray, "the pair searches differ"
    results.append(("pair search (distance 10)", f"{args.rows:,} hashes, {len(pairs_local):,} pairs", t_local, t_ray))
    ray.shutdown()

    print(f"\n{started}; nproc {os.cpu_count()}; load average at start {load}; python {' '.join(sys.argv)}")
    print(f"\nRay {ray.__version__} start-up (local, {args.cpus} CPUs): {startup:.1f} s (not counted below)\n")
    print(f"| stage | size | single machine ({args.cpus} workers) s | Ray Data ({args.cpus} CPUs) s | ratio |")
    print("|---|---|---:|---:|---:|")
    for name, size, a, b in results:
        print(f"| {name} | {size} | {a:.1f} | {b:.1f} | {a / b:.2f}x |")
    if not args.tmp:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
