"""Dedup grouping, split and manifest memory on a synthetic manifest (hashes and rows, no images).

    python bench/manifest_scale.py                      # 250,000 rows (~2 min on 2 cores)
    python bench/manifest_scale.py --rows 154000 --search-sizes 10000,20000,40000

Rows look like a crawl's: 974 species, long-tailed, URLs and sha256s of real length, 2% exact copies,
2% near copies (1-6 bits flipped), 0.5% photos sharing an observation, and 10,000 copies of one
"image unavailable" placeholder (same bytes, same hash) spread over 300 species. Each stage runs in a
fresh process and reports its wall time and the process's peak RSS (``ru_maxrss``):

* ``rows``: building the rows (dicts as ``Manifest.rows()`` returns them): memory per row.
* ``dedup grouping``: ``data_prep.dedup.find_edges`` (star edges) + ``deduplicate`` (scipy connected
  components, drop rules, split groups) with the pair search replaced by the planted pairs, then the
  pair search itself timed at ``--search-sizes`` and projected quadratically (it is exact all-pairs).
* ``split``: ``data_prep.split.assign_splits`` (cross-source) on the dedup survivors.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import random
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

PLACEHOLDERS = 10_000


def synthetic_rows(n: int, seed: int = 0) -> tuple[list[dict], list[tuple[int, int, int]]]:
    """(rows, planted near pairs as (code index a, code index b, distance)) - rows as the manifest holds them."""
    from data_prep.common import MANIFEST_COLUMNS

    rng = random.Random(seed)
    species = [f"Genus{i // 7} species{i}" for i in range(974)]
    weights = [1 / (k + 1) ** 0.6 for k in range(len(species))]
    sources = ["inaturalist.org", "wikimedia.org", "flickr.com", "mushroomobserver.org"] + [
        f"site{i}.example" for i in range(400)
    ]
    rows = []
    placeholder_sha, placeholder_code = "f" * 64, "8000000000000001"
    for i in range(n):
        r = dict.fromkeys(MANIFEST_COLUMNS, "")
        sp = rng.choices(species, weights)[0] if i >= PLACEHOLDERS else species[i % 300]
        src = rng.choice(sources[:4]) if rng.random() < 0.6 else rng.choice(sources)
        url = f"https://{src}/photos/{rng.getrandbits(64):016x}/{rng.getrandbits(32):08x}/original.jpg"
        r.update(
            image_id=f"{rng.getrandbits(64):016x}",
            species=sp,
            query=f'"{sp}"',
            crawler="bing",
            source=src,
            source_url=url,
            license=rng.choice(["CC-BY-NC-4.0", "CC-BY-4.0", "CC0-1.0", "unknown"]),
            origin=f"https://www.inaturalist.org/observations/{rng.randrange(10**9)}",
            raw_path=f"raw/{sp.replace(' ', '_')}/{i:016x}.jpg",
            raw_sha256=f"{rng.getrandbits(256):064x}",
            raw_width=str(rng.randrange(300, 4000)),
            raw_height=str(rng.randrange(300, 4000)),
            raw_format="JPEG",
            phash=f"{rng.getrandbits(64):016x}",
            status="ok",
        )
        if i < PLACEHOLDERS:
            r["raw_sha256"], r["phash"] = placeholder_sha, placeholder_code
        rows.append(r)
    planted = []
    for i in range(PLACEHOLDERS, n):
        u = rng.random()
        if u < 0.04:
            j = rng.randrange(PLACEHOLDERS, n)
            rows[i]["species"] = rows[j]["species"]
            if u < 0.02:  # exact copy
                rows[i]["raw_sha256"], rows[i]["phash"] = rows[j]["raw_sha256"], rows[j]["phash"]
            else:  # near copy
                bits = rng.sample(range(64), rng.randrange(1, 7))
                rows[i]["phash"] = f"{int(rows[j]['phash'], 16) ^ sum(1 << b for b in bits):016x}"
                planted.append((j, i, len(bits)))
        elif u < 0.045:
            rows[i]["origin"] = rows[i - 1]["origin"]
            rows[i]["species"] = rows[i - 1]["species"]
    return rows, planted


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def stage(name: str, n: int, out) -> None:
    t_start = time.perf_counter()
    base = _peak_mb()
    rows, planted = synthetic_rows(n)
    t_rows = time.perf_counter() - t_start
    result = {"stage": name, "rows": n, "rows_build_s": round(t_rows, 1), "peak_rss_mb_rows": round(_peak_mb(), 0)}
    result["rss_per_row_kb"] = round((_peak_mb() - base) * 1024 / n, 2)
    if name == "dedup":
        from data_prep.dedup import deduplicate, find_edges

        planted_codes = [(rows[a]["phash"], rows[b]["phash"], d) for a, b, d in planted]

        def search(codes, threshold):
            pos = {c: k for k, c in enumerate(codes)}
            return [(pos[a], pos[b], d) for a, b, d in planted_codes if a in pos and b in pos and a != b]

        t0 = time.perf_counter()
        edges = find_edges(rows, 10, search=search)
        report = deduplicate(rows, edges, 8, 10)
        result.update(
            seconds=round(time.perf_counter() - t0, 1),
            edges=len(edges),
            dropped=sum(r["status"] == "dropped" for r in rows),
            report_rows=len(report),
            groups=len({r["dup_group"] for r in rows if r["status"] == "ok"}),
        )
    elif name == "split":
        from data_prep.split import assign_splits

        for r in rows:
            r["dup_group"] = r["image_id"]
        t0 = time.perf_counter()
        counts = assign_splits(rows)
        result.update(seconds=round(time.perf_counter() - t0, 1), images=counts["images"], groups=counts["groups"])
    result["peak_rss_mb"] = round(_peak_mb(), 0)
    out.put(result)


def search_time(n: int, out) -> None:
    from data_prep.near_duplicates import hash_pairs

    rng = random.Random(n)
    codes = [f"{rng.getrandbits(64):016x}" for _ in range(n)]
    t0 = time.perf_counter()
    hash_pairs(codes, 10)
    out.put(
        {
            "stage": "search",
            "rows": n,
            "seconds": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": round(_peak_mb(), 0),
        }
    )


def run(target, *args):
    ctx = multiprocessing.get_context("fork")
    q = ctx.Queue()
    p = ctx.Process(target=target, args=(*args, q))
    p.start()
    result = q.get()
    p.join()
    return result


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=250_000)
    ap.add_argument("--search-sizes", default="10000,20000,40000")
    args = ap.parse_args()
    import numpy  # noqa: F401  (imported before forking)
    import scipy.sparse.csgraph  # noqa: F401

    results = [run(stage, name, args.rows) for name in ("rows", "dedup", "split")]
    sizes = [int(x) for x in args.search_sizes.split(",")]
    results += [run(search_time, n) for n in sizes]
    for r in results:
        print(json.dumps(r))
    big = [r for r in results if r["stage"] == "search"][-1]
    per_pair = big["seconds"] / (big["rows"] ** 2 / 2)
    for n in (154_000, 250_000):
        print(json.dumps({"stage": "search projected", "rows": n, "seconds": round(per_pair * n * n / 2, 0)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
