"""Data-preparation throughput: normalize and dedup hashing per core and on all cores, next to raw
Pillow on the same files, and the near-duplicate search at 10k / 50k / 154k hashes.

    python bench/data_prep.py                  # ~3 min on 2 cores: 500 shared photos, search up to 154k
    python bench/data_prep.py --all --repeats 5    # every shared photo (2,908)
    python bench/data_prep.py --sizes 10000,50000 --imagededup-upto 10000   # imagededup: ~80 s at 10k

* normalize: ``data_prep.normalize.normalize_image`` (the stage's per-image work: probe, decode with
  EXIF transpose, grayscale check, LANCZOS resize to 600 px, JPEG q90 with ``optimize``) on the raw
  bytes, in a forked pool like the stage's ``parallel_map``.
* peers on the same files: Pillow decode + JPEG q90 encode (the floor for any re-encoding stage),
  and Pillow decode + resize to 600 px (bicubic) + encode.
* dedup hashing: imagededup PHash per file (what ``data_prep.dedup`` runs per image).
* search: ``data_prep.near_duplicates.hash_pairs`` (numpy, exact, all pairs) on random 64-bit hashes with
  1% planted near duplicates (1-8 bits flipped), vs imagededup's own ``find_duplicates``.
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import time
from pathlib import Path

from _common import header, median, shared_photos, show

# ---- per-image work (module level so forked workers can run it) ---------------------------------


def normalize_one(path: str) -> int:
    from data_prep.normalize import normalize_image

    out, _reason, _size = normalize_image(Path(path).read_bytes())
    return len(out or b"")


def pillow_decode_encode(path: str) -> int:
    from PIL import Image

    with Image.open(path) as im:
        buf = io.BytesIO()
        im.convert("RGB").save(buf, "JPEG", quality=90)
    return buf.tell()


def pillow_decode_resize_encode(path: str) -> int:
    from PIL import Image

    with Image.open(path) as im:
        img = im.convert("RGB")
        w, h = img.size
        scale = 600 / max(w, h)
        if scale < 1:
            img = img.resize((round(w * scale), round(h * scale)), Image.Resampling.BICUBIC)
        buf = io.BytesIO()
        img.save(buf, "JPEG", quality=90)
    return buf.tell()


_HASHER = None


def phash_one(path: str) -> str:
    global _HASHER
    if _HASHER is None:
        import logging

        from imagededup.methods import PHash

        logging.getLogger("imagededup").setLevel(logging.WARNING)
        _HASHER = PHash(verbose=False)
    return str(_HASHER.encode_image(image_file=path) or "")


def throughput(fn, files: list[str], workers: int) -> float:
    """Images per second for ``fn`` over ``files`` with ``workers`` forked processes."""
    t0 = time.perf_counter()
    if workers <= 1:
        for f in files:
            fn(f)
    else:
        with multiprocessing.get_context("fork").Pool(workers) as pool:
            for _ in pool.imap_unordered(fn, files, chunksize=8):
                pass
    return len(files) / (time.perf_counter() - t0)


# ---- synthetic hashes for the search -------------------------------------------------------------


def synthetic_hashes(n: int, seed: int = 0) -> list[str]:
    import numpy as np

    rng = np.random.default_rng(seed)
    values = rng.integers(0, 2**63, size=n, dtype=np.int64).astype(np.uint64) * np.uint64(2) + rng.integers(
        0, 2, size=n
    ).astype(np.uint64)
    planted = rng.choice(n, size=n // 100, replace=False)
    for i in planted:  # a near duplicate of a random other hash
        j = int(rng.integers(n))
        flips = rng.choice(64, size=int(rng.integers(1, 9)), replace=False)
        values[i] = values[j] ^ np.uint64(sum(1 << int(b) for b in flips))
    return [f"{int(v):016x}" for v in values]


def search_numpy(codes: list[str]) -> int:
    from data_prep.near_duplicates import hash_pairs as phash_pairs

    return len(phash_pairs(codes, 8))


def search_imagededup(codes: list[str]) -> int:
    import logging
    import warnings

    from imagededup.methods import PHash

    logging.getLogger("imagededup").setLevel(logging.WARNING)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        found = PHash(verbose=False).find_duplicates(
            encoding_map={str(i): c for i, c in enumerate(codes)}, max_distance_threshold=8
        )
    return sum(len(v) for v in found.values()) // 2


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--files", type=int, default=500, help="shared photos to process (default 500, a spread)")
    ap.add_argument("--all", action="store_true", help="every shared photo")
    ap.add_argument("--repeats", type=int, default=3, help="timed passes per case; the median is shown")
    ap.add_argument("--sizes", default="5000,10000,50000,154000", help="hash counts for the search")
    ap.add_argument("--imagededup-upto", type=int, default=5000, help="run imagededup's search up to this size")
    args = ap.parse_args()
    header("Data preparation (bench/data_prep.py)")

    all_files = [str(p) for p in shared_photos()]
    files = all_files if args.all else all_files[:: max(1, len(all_files) // args.files)][: args.files]
    mpix = 0.0
    from PIL import Image

    for f in files:
        with Image.open(f) as im:
            mpix += im.size[0] * im.size[1] / 1e6
    cores = os.cpu_count() or 1
    import data_prep.near_duplicates  # noqa: F401  - imported before forking, like the stage
    from data_prep import normalize  # noqa: F401

    phash_one(files[0])  # imagededup import (~7 s) outside the timing, before the workers fork
    cases = {
        "normalize (data_prep)": normalize_one,
        "Pillow decode + encode q90": pillow_decode_encode,
        "Pillow decode + resize 600 + encode q90": pillow_decode_resize_encode,
        "dedup: PHash per file (imagededup)": phash_one,
    }
    rates: dict[tuple[str, int], list[float]] = {}
    for _ in range(args.repeats):  # round-robin: load changes hit every case alike
        for name, fn in cases.items():
            for workers in sorted({1, cores}):
                rates.setdefault((name, workers), []).append(throughput(fn, files, workers))
    rows = []
    for name in cases:
        one, many = median(rates[(name, 1)]), median(rates[(name, cores)])
        rows.append([name, one, many, many / one, len(files) / many, 154_000 / many / 60])
    show(
        [
            "work per image",
            "img/s, 1 core",
            f"img/s, {cores} cores",
            "scaling",
            "s for these files",
            "min for 154k (same sizes)",
        ],
        rows,
        f"{len(files)} shared photos ({mpix / len(files):.2f} MP average), median of {args.repeats} passes",
    )
    base = median(rates[("Pillow decode + resize 600 + encode q90", 1)])
    print(
        f"normalize reaches {median(rates[('normalize (data_prep)', 1)]) / base:.0%} of raw Pillow "
        "decode + resize + encode on one core.\n"
    )

    rows = []
    for n in [int(s) for s in args.sizes.split(",")]:
        codes = synthetic_hashes(n)
        t0 = time.perf_counter()
        pairs = search_numpy(codes)
        t_np = time.perf_counter() - t0
        t_idd, pairs_idd = float("nan"), "-"
        if n <= args.imagededup_upto:
            t0 = time.perf_counter()
            pairs_idd = search_imagededup(codes)
            t_idd = time.perf_counter() - t0
        rows.append([f"{n:,}", t_np, pairs, t_idd, pairs_idd])
        print(f"  search n={n:,}: {t_np:.1f} s", flush=True)
    show(
        ["hashes", "phash_pairs s (numpy)", "pairs found", "imagededup find_duplicates s", "pairs found"],
        rows,
        "Near-duplicate search (PHash distance <= 8), synthetic hashes, 1% planted near duplicates",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
