"""dedup: drop exact and near-duplicate images; quarantine label conflicts (writes dedup_report.csv).

* Exact duplicates: same sha256 of the downloaded bytes. Near duplicates: imagededup PHash within
  ``--threshold`` bits (default 8, measured on ../shared: <= 8 were all true duplicates, 10 already
  paired unrelated photos).
* Mirrored copies (left-right flips) and crops are not dropped (they add a little) but join the same
  split group: a mirror hash per image (the PHash of the flipped image) within ``--mirror-threshold`` of
  another image's hash; ``--cnn`` adds pairs of one species whose embeddings from our offline backbone
  have cosine similarity >= ``--cnn-threshold`` (crops, re-framed copies), and, in one pass on both
  measures, pairs within PHash ``--joint-phash`` (24) AND cosine ``--joint-cosine`` (0.80): re-shot or
  re-coloured photos of one specimen (off by default; the embeddings are cached by content).
* Within a species each duplicate cluster keeps one copy: the largest (most pixels; ties: smallest
  image_id); the others are dropped as ``exact duplicate of <id>`` / ``near duplicate of <id>``.
* A cluster holding images filed under two or more species is a label conflict: every image of it is
  quarantined (dropped with ``label conflict``) and listed in the report; nobody can tell which label
  is right without looking.
* ``dup_group``: kept images within ``--group-threshold`` bits (default 10, looser than the drop
  threshold) share a group, and the split never puts one group on two sides, so even "same scene,
  slightly different shot" pairs cannot leak between train and test.
* Hashes are cached by sha256 in ``cache/phash.jsonl`` (resumable); the pair search is exact
  (``near_duplicates.hash_pairs``: all pairs for small sets, multi-index hashing from 20,000 hashes).
  Clusters are connected components (scipy) of a graph whose groups of identical hashes are stars, so
  memory is linear even for 10,000 copies of one "image unavailable" placeholder.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from pathlib import Path

from .common import (
    Journal,
    Stage,
    add_common_arguments,
    drop,
    parallel_map,
    write_csv,
)

# Chosen on the shared photos (bench/near_copies.py; data_prep/README.md has the numbers): mirror PHash
# distances are even; <= 8 finds 4 pairs beyond PHash <= 10 (2 mirrored copies, 2 unrelated photos of two
# species, harmless for the split), <= 10 adds 19 unrelated ones. Cosine >= 0.90 finds 11 pairs, all of them
# crops / mirrored crops / photos of one observation (checked by eye); 0.88 adds doubtful ones.
DEFAULT_MIRROR_THRESHOLD = 8
DEFAULT_CNN_THRESHOLD = 0.9
# One pass on both measures (issue 24): pairs of one species within PHash 24 AND cosine >= 0.80 share a split
# group. Each alone pairs unrelated photos; together they catch re-shot / re-coloured photos of one specimen
# (e.g. Hygrophorus poetarum webit_cd788b9aac / webit_f37cf9a210). Measured on ../shared in data_prep/README.md.
DEFAULT_JOINT_PHASH = 24
DEFAULT_JOINT_COSINE = 0.80

REPORT_COLUMNS = (
    "kind",
    "image_id",
    "species",
    "other_id",
    "other_species",
    "distance",
    "action",
    "raw_path",
    "other_raw_path",
)


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    from .near_duplicates import DEFAULT_PHASH_THRESHOLD

    g = parser.add_argument_group("dedup")
    g.add_argument(
        "--threshold",
        type=int,
        default=DEFAULT_PHASH_THRESHOLD,
        help="PHash Hamming distance (of 64 bits) up to which two images are duplicates",
    )
    g.add_argument(
        "--group-threshold", type=int, default=10, help="PHash distance up to which kept images share a split group"
    )
    g.add_argument(
        "--mirror-threshold",
        type=int,
        default=DEFAULT_MIRROR_THRESHOLD,
        help="PHash distance between one image's mirror hash and another's hash up to which they share a "
        "split group (mirrored copies; -1: off)",
    )
    g.add_argument("--cnn", action="store_true", help="also group images by CNN embeddings (offline backbone): crops")
    g.add_argument(
        "--cnn-threshold",
        type=float,
        default=DEFAULT_CNN_THRESHOLD,
        help="cosine similarity from which two images share a split group (chosen on ../shared: bench/near_copies.py)",
    )
    g.add_argument(
        "--joint-phash",
        type=int,
        default=DEFAULT_JOINT_PHASH,
        help="with --cnn: images of one species within this PHash distance AND --joint-cosine share a split group",
    )
    g.add_argument(
        "--joint-cosine",
        type=float,
        default=DEFAULT_JOINT_COSINE,
        help="with --cnn: the embedding cosine of the joint PHash + embedding pass",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_stage_arguments(parser)


def _phash_one(item: tuple[str, str]) -> tuple[str, str, str]:
    from .near_duplicates import phash_pair

    sha, path = item
    code, mirror = phash_pair(path)
    return sha, code, mirror


def compute_phashes(
    rows: list[dict], work_dir: Path, workers: int, engine: str = "local"
) -> dict[str, tuple[str, str]]:
    """(PHash, mirror PHash) per raw sha256 (cached in cache/phash.jsonl); "" for files PHash cannot read.
    ``engine="ray"``: hashed by a Ray Data pipeline (:mod:`data_prep.ray_engine`), into the same journal."""
    journal = Journal(work_dir / "cache" / "phash.jsonl", key="sha256")
    known = {k: (v["phash"], v["mirror"]) for k, v in journal.load().items() if "mirror" in v}
    todo = {}
    for r in rows:
        if r["raw_sha256"] and r["raw_sha256"] not in known:
            todo.setdefault(r["raw_sha256"], str(work_dir / r["raw_path"]))
    if not todo:
        return known
    if engine == "ray":
        from . import ray_engine

        results = ray_engine.phashes(work_dir, todo)
    else:
        import imagededup.methods  # noqa: F401  (~7 s; imported once here: forked workers inherit it)

        results = parallel_map(_phash_one, list(todo.items()), workers, total=len(todo), desc="phash")
    with journal:
        for sha, code, mirror in results:
            known[sha] = (code, mirror)
            journal.append({"sha256": sha, "phash": code, "mirror": mirror})
    return known


def embeddings(paths: list[str], batch: int = 32):
    """L2-normalised pooled features of our offline ImageNet backbone (the whole photo squashed to its
    224 px input, its own interpolation and normalisation), one row per path; a zero row for a file
    that cannot be read. Run by the package's one inference loop, channels-last (about 1.3x faster on
    CPU; the features agree to 1e-6)."""
    import numpy as np
    import torch

    from mushroom_id.core.inference import PooledFeatures, run
    from mushroom_id.core.models import imagenet_model

    backbone = imagenet_model()
    network = PooledFeatures(backbone.model.to(memory_format=torch.channels_last))
    out = run(network, paths, backbone.transform(whole_photo=True), batch, workers=0, desc="embed")
    if not len(out.first):
        return np.zeros((0, 1), np.float32)
    f = torch.nn.functional.normalize(torch.from_numpy(out.first), dim=1).numpy()
    f[~out.ok] = 0
    return f


EMBEDDINGS_CACHE = "cache/embeddings-imagenet-lite0.npz"  # by raw sha256; named after the backbone


def embedding_vectors(rows: list[dict], work_dir: Path, engine: str = "local", workers: int = 1):
    """One embedding per row (its raw file's content), cached by sha256 in the work folder: each photo
    content is embedded once, whatever its path, and a rebuild keeps the cache (``prepare_folder``).
    Only photos of species with two or more photos are embedded (a single photo has no pair within its
    species); the others get a zero row. ``engine="ray"``: ``workers`` backbones as Ray actors."""
    import numpy as np

    from .common import atomic_path

    cache = work_dir / EMBEDDINGS_CACHE
    known: dict[str, np.ndarray] = {}
    if cache.is_file():
        with np.load(cache) as saved:
            known = dict(zip(saved["sha256"].tolist(), saved["vectors"], strict=True))
    per_species = Counter(r["species"] for r in rows)
    todo = {
        r["raw_sha256"]: str(work_dir / r["raw_path"])
        for r in rows
        if r["raw_sha256"] not in known and per_species[r["species"]] > 1
    }
    if todo and engine == "ray":
        from . import ray_engine

        for sha, vec in ray_engine.embedded(work_dir, todo, actors=workers):
            known[sha] = np.asarray(vec, dtype=np.float32)
    elif todo:
        for sha, vec in zip(todo, embeddings(list(todo.values())), strict=True):
            known[sha] = vec
    if todo:
        with atomic_path(cache) as tmp, open(tmp, "wb") as f:  # a file object: np.savez adds no suffix
            np.savez(f, sha256=np.array(list(known)), vectors=np.stack(list(known.values())))
    if not rows:
        return np.zeros((0, 1), np.float32)
    width = next(iter(known.values())).shape[0] if known else 1
    zero = np.zeros(width, np.float32)
    return np.stack([known.get(r["raw_sha256"], zero) for r in rows])


def cnn_pairs(rows: list[dict], work_dir: Path, threshold: float, vectors=None) -> list[tuple[str, str, float]]:
    """Pairs (a < b, cosine) of images of one species whose backbone embeddings are at least ``threshold``
    similar (crops, re-framed copies). Embeddings: :func:`embedding_vectors` (cached)."""
    from .near_duplicates import cosine_pairs, pairs_within_groups

    vectors = embedding_vectors(rows, work_dir) if vectors is None else vectors
    ids = [r["image_id"] for r in rows]
    found = pairs_within_groups([r["species"] for r in rows], lambda idx: cosine_pairs(vectors[idx], threshold))
    return sorted((min(ids[i], ids[j]), max(ids[i], ids[j]), s) for i, j, s in found)


def joint_near_copies(
    rows: list[dict], work_dir: Path, max_distance: int, min_cosine: float, vectors=None
) -> list[tuple[str, str, int, float]]:
    """Pairs (a < b, PHash distance, cosine) of one species within ``max_distance`` PHash bits AND at
    least ``min_cosine`` similar embeddings: one threshold pass on both measures together."""
    from .near_duplicates import joint_pairs

    vectors = embedding_vectors(rows, work_dir) if vectors is None else vectors
    ids = [r["image_id"] for r in rows]
    found = joint_pairs([r["phash"] for r in rows], vectors, [r["species"] for r in rows], max_distance, min_cosine)
    return sorted((min(ids[i], ids[j]), max(ids[i], ids[j]), d, c) for i, j, d, c in found)


def _hub_edges(members: list[str]) -> list[tuple[str, str]]:
    """Link a set of identical-hash images as a star from its first member: k - 1 pairs, not k^2 / 2."""
    return [(members[0], m) for m in members[1:]]


def find_edges(rows: list[dict], max_distance: int, search=None) -> list[tuple[str, str, int, bool]]:
    """Image-level duplicate candidates: (id_a, id_b, phash distance, exact) with a < b.

    Linear in the size of each group of identical hashes: images with the same sha256 or the same PHash
    are linked to one member of the group (a star), and close hashes link one member of each hash, so
    10,000 copies of one placeholder are 9,999 edges. Connected components give the same clusters as
    the all-pairs graph. ``search`` replaces :func:`near_duplicates.hash_pairs` (benchmarks).
    """
    from .near_duplicates import hash_pairs

    search = search or hash_pairs
    by_code: dict[str, list[str]] = defaultdict(list)
    by_sha: dict[str, list[str]] = defaultdict(list)
    sha_of = {}
    for r in sorted(rows, key=lambda r: r["image_id"]):
        sha_of[r["image_id"]] = r["raw_sha256"]
        by_sha[r["raw_sha256"]].append(r["image_id"])
        if r["phash"]:
            by_code[r["phash"]].append(r["image_id"])
    edges: dict[tuple[str, str], tuple[int, bool]] = {}

    def add(a: str, b: str, d: int) -> None:
        key = (a, b) if a < b else (b, a)
        exact = sha_of[a] == sha_of[b]
        if key not in edges or d < edges[key][0]:
            edges[key] = (0 if exact else d, exact)

    for members in list(by_sha.values()) + list(by_code.values()):
        for a, b in _hub_edges(members):
            add(a, b, 0)
    codes = list(by_code)
    for i, j, d in search(codes, max_distance):
        add(by_code[codes[i]][0], by_code[codes[j]][0], d)
    return sorted((a, b, d, exact) for (a, b), (d, exact) in edges.items())


def mirror_edges(rows: list[dict], threshold: int, search=None) -> list[tuple[str, str, int]]:
    """(a, b, distance) with a < b: ``b`` is close to the mirror image of ``a`` (or the reverse).
    ``search`` replaces :func:`near_duplicates.hash_pairs` (the Ray engine's)."""
    from .near_duplicates import hash_pairs

    search = search or hash_pairs
    if threshold < 0:
        return []
    by_code: dict[str, list[str]] = defaultdict(list)
    mirror_of: dict[str, str] = {}
    for r in sorted(rows, key=lambda r: r["image_id"]):
        if r["phash"] and r.get("phash_mirror"):
            by_code[r["phash"]].append(r["image_id"])
            mirror_of.setdefault(r["phash"], r["phash_mirror"])
    codes = list(by_code)
    out = {}
    for i, j, d in search([mirror_of[c] for c in codes], threshold, against=codes):
        a, b = sorted((by_code[codes[i]][0], by_code[codes[j]][0]))
        out[(a, b)] = min(d, out.get((a, b), d))
    return sorted((a, b, d) for (a, b), d in out.items())


def deduplicate(
    rows: list[dict],
    edges: list[tuple[str, str, int, bool]],
    threshold: int,
    group_threshold: int,
    group_pairs: list[tuple[str, str]] = (),
) -> list[dict]:
    """Apply the rules to ``rows`` (status ok, with phash) in place; returns the report rows.

    ``group_pairs`` (mirrored copies, crops found by embeddings) only join split groups; they drop nothing.
    """
    from data_prep.grouping import connected_groups

    from .near_duplicates import hamming

    by_id = {r["image_id"]: r for r in rows}
    dup_edges = [(a, b, d, ex) for a, b, d, ex in edges if ex or d <= threshold]
    cluster_of = connected_groups(by_id, ((a, b) for a, b, _, _ in dup_edges))
    members: dict[str, list[str]] = defaultdict(list)
    for iid in by_id:
        members[cluster_of[iid]].append(iid)

    report = []
    for a, b, d, exact in dup_edges:
        ra, rb = by_id[a], by_id[b]
        if ra["species"] != rb["species"]:
            report.append(
                {
                    "kind": "label conflict (exact)" if exact else "label conflict (near)",
                    "image_id": a,
                    "species": ra["species"],
                    "other_id": b,
                    "other_species": rb["species"],
                    "distance": d,
                    "action": "quarantined both",
                    "raw_path": ra["raw_path"],
                    "other_raw_path": rb["raw_path"],
                }
            )
    for ids in members.values():
        if len(ids) < 2:
            continue
        species = sorted({by_id[i]["species"] for i in ids})
        if len(species) > 1:
            for i in ids:
                others = ", ".join(s for s in species if s != by_id[i]["species"])
                drop(by_id[i], "dedup", f"label conflict: duplicate cluster also filed under {others}")
            continue
        best = min(ids, key=lambda i: (-int(by_id[i]["raw_width"] or 0) * int(by_id[i]["raw_height"] or 0), i))
        kb = by_id[best]
        for i in sorted(ids):
            if i == best:
                continue
            r = by_id[i]
            exact = r["raw_sha256"] == kb["raw_sha256"]
            d = 0 if exact else (hamming(r["phash"], kb["phash"]) if r["phash"] and kb["phash"] else -1)
            kind = "exact duplicate" if exact else "near duplicate"
            drop(r, "dedup", f"{kind} of {best}" + ("" if exact else f" (phash distance {d})"))
            r["duplicate_of"] = best
            report.append(
                {
                    "kind": kind,
                    "image_id": i,
                    "species": r["species"],
                    "other_id": best,
                    "other_species": kb["species"],
                    "distance": d,
                    "action": "dropped (kept the larger copy)",
                    "raw_path": r["raw_path"],
                    "other_raw_path": kb["raw_path"],
                }
            )
    # split groups among the survivors: the looser threshold, plus mirrored copies and crops. A dropped
    # duplicate stands for the copy that was kept (its mirror or crop partner joins that copy's group).
    kept = {i for i, r in by_id.items() if r["status"] == "ok"}

    def alive(i: str) -> str:
        return by_id[i]["duplicate_of"] or i if i in by_id else i

    pairs = [(alive(a), alive(b)) for a, b, d, exact in edges if exact or d <= group_threshold]
    pairs += [(alive(a), alive(b)) for a, b in group_pairs]
    group_of = connected_groups(kept, pairs)
    for i in kept:
        by_id[i]["dup_group"] = group_of[i]
    return sorted(report, key=lambda x: (x["kind"], x["species"], x["image_id"]))


def run(args: argparse.Namespace) -> int:
    work_dir: Path = args.work_dir
    stage = Stage("dedup", work_dir)
    live = stage.live
    t0 = time.perf_counter()
    engine = getattr(args, "engine", "local")
    search = None
    if engine == "ray":
        from . import ray_engine

        ray_engine.ensure_ray(args.address, args.workers)
        search = ray_engine.pair_search(work_dir)
    codes = compute_phashes(live, work_dir, args.workers, engine)
    for r in live:
        r["phash"], r["phash_mirror"] = codes.get(r["raw_sha256"], ("", ""))
    t_hash = time.perf_counter() - t0
    edges = find_edges(live, max(args.threshold, args.group_threshold), search)
    mirrored = mirror_edges(live, args.mirror_threshold, search)
    close = {(a, b) for a, b, d, ex in edges if ex or d <= args.group_threshold}
    group_pairs = [(a, b) for a, b, _ in mirrored if (a, b) not in close]
    n_mirror = len(group_pairs)
    n_crops = n_joint = 0
    t_embed = 0.0
    if args.cnn:
        hashed = [r for r in live if r["phash"]]
        t1 = time.perf_counter()
        vectors = embedding_vectors(hashed, work_dir, engine, args.workers)
        t_embed = time.perf_counter() - t1
        crops = [(a, b) for a, b, _ in cnn_pairs(hashed, work_dir, args.cnn_threshold, vectors) if (a, b) not in close]
        joint = [
            (a, b)
            for a, b, _, _ in joint_near_copies(hashed, work_dir, args.joint_phash, args.joint_cosine, vectors)
            if (a, b) not in close
        ]
        n_crops, n_joint = len(crops), len(set(joint) - set(crops))
        group_pairs += crops + joint
    t_pairs = time.perf_counter() - t0 - t_hash - t_embed
    report = deduplicate(live, edges, args.threshold, args.group_threshold, group_pairs)
    stage.write()
    write_csv(work_dir / "dedup_report.csv", report, REPORT_COLUMNS)

    dropped = Counter(r["drop_reason"].split(" of ")[0].split(":")[0] for r in live if r["status"] == "dropped")
    kinds = Counter(x["kind"] for x in report)
    kept = [r for r in live if r["status"] == "ok"]
    group_sizes = Counter(Counter(r["dup_group"] for r in kept).values())
    summary = {
        "images_in": len(live),
        "unreadable_for_phash": sum(not r["phash"] for r in live),
        "exact_duplicates_dropped": dropped.get("exact duplicate", 0),
        "near_duplicates_dropped": dropped.get("near duplicate", 0),
        "label_conflict_pairs": kinds.get("label conflict (exact)", 0) + kinds.get("label conflict (near)", 0),
        "label_conflict_images_quarantined": dropped.get("label conflict", 0),
        "images_kept": len(kept),
        "kept_in_multi_image_split_groups": sum(size * n for size, n in group_sizes.items() if size > 1),
        "mirrored_pairs_grouped": n_mirror,
        "embedding_pairs_grouped": n_crops,
        "joint_pairs_grouped": n_joint,
        "cnn_threshold": args.cnn_threshold,
        "joint_phash": args.joint_phash,
        "joint_cosine": args.joint_cosine,
        "mirror_threshold": args.mirror_threshold,
        "threshold": args.threshold,
        "group_threshold": args.group_threshold,
        "cnn": bool(args.cnn),
        "engine": engine,
        "seconds_hashing": round(t_hash, 1),
        "seconds_embedding": round(t_embed, 1),
        "seconds_pair_search": round(t_pairs, 2),
    }
    return stage.finish(summary)
