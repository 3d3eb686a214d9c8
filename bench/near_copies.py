"""Mirrored copies and crops among the shared photos: how many each method finds, at which threshold.

    python bench/near_copies.py                         # PHash + mirror PHash of every photo (~1 min on 2 cores)
    python bench/near_copies.py --embeddings            # + backbone embeddings (~6 min on 2 cores, cached)
    python bench/near_copies.py --embeddings --show 0.86   # list the embedding pairs from this cosine on

Pairs already caught by the split's PHash grouping (distance <= 10, or the same bytes) are left out:
what is counted is what each extra method adds. Each listed pair names both files, species, source and
observation id, so it can be checked by eye; the thresholds of ``data_prep.dedup`` were chosen on them.
"""

from __future__ import annotations

import argparse
import csv
import multiprocessing
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _hash(path: str) -> tuple[str, str, str]:
    from data_prep.near_duplicates import phash_pair

    return (path, *phash_pair(path))


def main() -> int:
    from data_prep.near_duplicates import cosine_pairs, hash_pairs
    from data_prep.split import observation_id
    from mushroom_id.core.paths import shared_photos_dir

    ap = argparse.ArgumentParser()
    ap.add_argument("--photos", type=Path, default=shared_photos_dir())
    ap.add_argument("--embeddings", action="store_true")
    ap.add_argument("--cache", type=Path, default=Path("/tmp/near_copies_cache"))
    ap.add_argument("--show", type=float, default=0.9, help="list embedding pairs from this cosine on")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    with open(args.photos / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    paths = [str(args.photos.parent / r["path"]) for r in rows]
    t0 = time.perf_counter()
    import imagededup.methods  # noqa: F401

    with multiprocessing.get_context("fork").Pool(args.workers) as pool:
        hashed = dict((p, (c, m)) for p, c, m in pool.imap(_hash, paths, chunksize=16))
    print(f"hashed {len(paths)} photos in {time.perf_counter() - t0:.1f} s")
    codes = [hashed[p][0] for p in paths]
    mirrors = [hashed[p][1] for p in paths]
    close = {(i, j) for i, j, _ in hash_pairs(codes, 10)}
    same = {}
    for i, r in enumerate(rows):
        same.setdefault(r["sha256"], []).append(i)
    for members in same.values():
        close |= {(a, b) for a in members for b in members if a < b}

    def describe(i: int) -> str:
        r = rows[i]
        obs = observation_id(r["origin"])
        return f"{r['path'].split('/', 1)[1]} [{r['source']}{' ' + obs if obs else ''}]"

    mirror = {}
    for i, j, d in hash_pairs(mirrors, 16, against=codes):
        key = (min(i, j), max(i, j))
        if key not in close:
            mirror[key] = min(d, mirror.get(key, d))
    print("\nmirror PHash: pairs not already within PHash 10, by mirror distance (cumulative)")
    hist = Counter(mirror.values())
    total = 0
    for d in range(17):
        total += hist.get(d, 0)
        print(f"  <= {d:2d}: {total}")
    for (i, j), d in sorted(mirror.items(), key=lambda x: x[1]):
        if d <= 12:
            print(f"  d={d:2d} {describe(i)}  <->  {describe(j)}")

    if args.embeddings:
        import numpy as np

        cache = args.cache / "embeddings.npy"
        if cache.is_file():
            vectors = np.load(cache)
        else:
            from data_prep.dedup import embeddings

            t0 = time.perf_counter()
            vectors = embeddings(paths)
            np.save(cache, vectors)
            print(f"\nembedded {len(paths)} photos in {time.perf_counter() - t0:.1f} s")
        pairs = {(i, j): s for i, j, s in cosine_pairs(vectors, 0.8) if (i, j) not in close}
        print("\nembedding cosine: pairs not within PHash 10, cumulative from the top")
        for t in (0.97, 0.95, 0.93, 0.92, 0.91, 0.90, 0.89, 0.88, 0.86, 0.84, 0.82, 0.80):
            n = sum(s >= t for s in pairs.values())
            nm = sum(s >= t and k in mirror and mirror[k] <= 8 for k, s in pairs.items())
            same_obs = sum(
                s >= t and observation_id(rows[k[0]]["origin"]) == observation_id(rows[k[1]]["origin"]) != ""
                for k, s in pairs.items()
            )
            same_sp = sum(s >= t and rows[k[0]]["species"] == rows[k[1]]["species"] for k, s in pairs.items())
            print(f"  >= {t:.2f}: {n:5d} pairs ({same_sp} same species, {same_obs} same observation, {nm} mirrors)")
        for (i, j), s in sorted(pairs.items(), key=lambda x: -x[1]):
            if s >= args.show:
                print(f"  cos={s:.3f} {describe(i)}  <->  {describe(j)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
