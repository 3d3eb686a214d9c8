"""Dedup grouping, split and manifest memory on a synthetic manifest (hashes and rows, no images).

    python bench/manifest_scale.py                      # 250,000 rows (~2 min on 2 cores)
    python bench/manifest_scale.py --rows 154000 --search-sizes 10000,20000,40000

Rows look like a crawl's: 974 species, long-tailed, URLs and sha256s of real length, 2% exact copies,
2% near copies (1-6 bits flipped), 0.5% photos sharing an observation, and 10,000 copies of one
"image unavailable" placeholder (same bytes, same hash) spread over 300 species. Each stage runs in a
fresh process and reports its wall time and the process's peak RSS (``ru_maxrss``):

* ``rows``: building the rows (dicts as ``Manifest.rows()`` returns them): memory per row.
* ``dedup grouping``: ``data_prep.dedup.find_edges`` (star edges) + ``deduplicate`` (scipy connected
  components, drop rules, split groups) with the pair search replaced by the planted pairs.
* ``search``: ``hash_pairs`` (threshold 10) all-pairs at ``--search-sizes`` (projected quadratically) and
  through the multi-index-hashing index at the same sizes (same pairs) and at the full ``--rows``.
* ``manifest io``: the whole manifest rewritten and re-read as CSV (what each stage does) and as Parquet.
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


def search_time(n: int, method: str, out) -> None:
    """``hash_pairs`` at threshold 10 on the synthetic manifest's first ``n`` distinct hashes (random codes
    plus the planted near copies: 1-6 bits flipped), by ``method`` (all-pairs or index)."""
    from data_prep.near_duplicates import hash_pairs

    rows, _ = synthetic_rows(n + PLACEHOLDERS)  # the placeholders share one hash: n distinct hashes
    codes = list(dict.fromkeys(r["phash"] for r in rows))[:n]
    t0 = time.perf_counter()
    pairs = hash_pairs(codes, 10, method=method)
    out.put(
        {
            "stage": f"search ({method})",
            "rows": n,
            "pairs": len(pairs),
            "seconds": round(time.perf_counter() - t0, 2),
            "peak_rss_mb": round(_peak_mb(), 0),
        }
    )


def manifest_io(n: int, out) -> None:
    """Rewriting and re-reading the whole manifest, as every stage does: CSV (what the stages use) against
    Parquet (pyarrow, zstd) of the same rows."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_prep.common import MANIFEST_COLUMNS, Manifest

    rows, _ = synthetic_rows(n)
    folder = Path(f"/tmp/manifest_scale_{n}")
    folder.mkdir(exist_ok=True)
    m = Manifest(folder)
    t0 = time.perf_counter()
    m.write(rows)
    t_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    back = m.rows()
    t_read = time.perf_counter() - t0
    t0 = time.perf_counter()
    table = pa.Table.from_pylist(rows, schema=pa.schema([(c, pa.string()) for c in MANIFEST_COLUMNS]))
    pq.write_table(table, folder / "manifest.parquet", compression="zstd")
    t_pq_write = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_batches = sum(1 for _ in pq.ParquetFile(folder / "manifest.parquet").iter_batches(batch_size=50_000))
    t_pq_stream = time.perf_counter() - t0
    out.put(
        {
            "stage": "manifest io",
            "rows": len(back),
            "csv_write_s": round(t_write, 1),
            "csv_read_s": round(t_read, 1),
            "csv_mb": round((folder / "manifest.csv").stat().st_size / 1e6, 1),
            "parquet_write_s": round(t_pq_write, 1),
            "parquet_stream_s": round(t_pq_stream, 2),
            "parquet_batches": n_batches,
            "parquet_mb": round((folder / "manifest.parquet").stat().st_size / 1e6, 1),
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
    ap.add_argument("--search-sizes", default="10000,20000,40000", help="all-pairs search sizes (projected)")
    ap.add_argument("--stages", default="rows,dedup,split,search,io")
    args = ap.parse_args()
    import numpy  # noqa: F401  (imported before forking)
    import scipy.sparse.csgraph  # noqa: F401

    stages = args.stages.split(",")
    results = [run(stage, name, args.rows) for name in ("rows", "dedup", "split") if name in stages]
    if "search" in stages:
        sizes = [int(x) for x in args.search_sizes.split(",")]
        results += [run(search_time, n, "all-pairs") for n in sizes]
        results += [run(search_time, n, "index") for n in sizes]
        results.append(run(search_time, args.rows, "index"))
    if "io" in stages:
        results.append(run(manifest_io, args.rows))
    for r in results:
        print(json.dumps(r))
    brute = [r for r in results if r["stage"] == "search (all-pairs)"]
    if brute:
        per_pair = brute[-1]["seconds"] / (brute[-1]["rows"] ** 2 / 2)
        for n in (154_000, 250_000):
            print(json.dumps({"stage": "all-pairs projected", "rows": n, "seconds": round(per_pair * n * n / 2, 0)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
