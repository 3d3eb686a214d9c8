"""dedup: drop exact and near-duplicate images; quarantine label conflicts (writes dedup_report.csv).

* Exact duplicates: same sha256 of the downloaded bytes. Near duplicates: imagededup PHash within
  ``--threshold`` bits (default 8, measured on ../shared: <= 8 were all true duplicates, 10 already
  paired unrelated photos). ``--cnn`` adds pairs whose embeddings from our offline backbone (through
  imagededup's ``CustomModel``) have cosine similarity >= ``--cnn-threshold``.
* Within a species each duplicate cluster keeps one copy: the largest (most pixels; ties: smallest
  image_id); the others are dropped as ``exact duplicate of <id>`` / ``near duplicate of <id>``.
* A cluster holding images filed under two or more species is a label conflict: every image of it is
  quarantined (dropped with ``label conflict``) and listed in the report; nobody can tell which label
  is right without looking.
* ``dup_group``: kept images within ``--group-threshold`` bits (default 10, looser than the drop
  threshold) share a group, and the split never puts one group on two sides, so even "same scene,
  slightly different shot" pairs cannot leak between train and test.
* Hashes are cached by sha256 in ``cache/phash.jsonl`` (resumable); the pair search is exact and
  all-pairs (numpy popcount in blocks: memory ``64 x N`` bytes).
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import Counter, defaultdict
from pathlib import Path

from .common import (
    Journal,
    Manifest,
    add_common_arguments,
    drop,
    parallel_map,
    print_summary,
    reset_from,
    write_csv,
    write_summary,
)

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

_HASHER = None


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    from mushroom_id.dedup import DEFAULT_PHASH_THRESHOLD

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
    g.add_argument("--cnn", action="store_true", help="also pair images by CNN embeddings (offline backbone)")
    g.add_argument("--cnn-threshold", type=float, default=0.9,
                   help="cosine similarity for a CNN pair (known duplicates in ../shared: 0.93)")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_stage_arguments(parser)


def _phash_one(item: tuple[str, str]) -> tuple[str, str]:
    global _HASHER
    if _HASHER is None:
        from imagededup.methods import PHash

        _HASHER = PHash(verbose=False)
    sha, path = item
    try:
        code = _HASHER.encode_image(image_file=path)
    except Exception:
        code = None
    return sha, str(code) if code else ""


def compute_phashes(rows: list[dict], work_dir: Path, workers: int) -> dict[str, str]:
    """PHash per raw sha256 (cached in cache/phash.jsonl); "" for files PHash cannot read."""
    import logging

    journal = Journal(work_dir / "cache" / "phash.jsonl", key="sha256")
    known = {k: v["phash"] for k, v in journal.load().items()}
    todo = {}
    for r in rows:
        if r["raw_sha256"] and r["raw_sha256"] not in known:
            todo.setdefault(r["raw_sha256"], str(work_dir / r["raw_path"]))
    if not todo:
        return known
    import imagededup.methods  # noqa: F401  (~7 s; imported once here: forked workers inherit it)

    logging.getLogger("imagededup").setLevel(logging.WARNING)
    with journal:
        for sha, code in parallel_map(_phash_one, list(todo.items()), workers, total=len(todo), desc="phash"):
            known[sha] = code
            journal.append({"sha256": sha, "phash": code})
    return known


def cnn_pairs(rows: list[dict], work_dir: Path, threshold: float) -> list[tuple[str, str, float]]:
    """Pairs by cosine similarity of backbone embeddings, through imagededup's CNN with a CustomModel."""
    import torch
    from imagededup.methods import CNN
    from imagededup.utils import CustomModel

    from mushroom_id.core.models import imagenet_backbone

    backbone = imagenet_backbone().eval()
    cfg = backbone.pretrained_cfg
    mean, std = cfg.get("mean", (0.5, 0.5, 0.5)), cfg.get("std", (0.5, 0.5, 0.5))

    class Embed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.net = backbone

        def forward(self, x):
            return self.net.forward_head(self.net.forward_features(x), pre_logits=True)

    from torchvision import transforms

    transform = transforms.Compose(
        [transforms.Resize((224, 224)), transforms.ToTensor(), transforms.Normalize(mean, std)]
    )
    cnn = CNN(verbose=False, model_config=CustomModel(name="mushroom-id-backbone", model=Embed(), transform=transform))
    id_of = {}
    images = []
    for r in rows:
        p = str(work_dir / r["raw_path"])
        id_of[p] = r["image_id"]
        images.append(p)
    encodings = {}
    for p in images:
        vec = cnn.encode_image(image_file=p)
        if vec is not None:
            encodings[p] = vec.reshape(-1)
    with warnings.catch_warnings():  # "num_enc_workers has no effect": we pass the encodings
        warnings.simplefilter("ignore", RuntimeWarning)
        found = cnn.find_duplicates(encoding_map=encodings, min_similarity_threshold=threshold, scores=True)
    pairs = set()
    for a, dups in found.items():
        for b, score in dups:
            a_, b_ = id_of[str(a)], id_of[str(b)]
            pairs.add((min(a_, b_), max(a_, b_), round(float(score), 4)))
    return sorted(pairs)


def find_edges(rows: list[dict], max_distance: int) -> list[tuple[str, str, int, bool]]:
    """Image-level duplicate candidates: (id_a, id_b, phash distance, exact) with a < b."""
    from mushroom_id.dedup import phash_pairs

    by_code: dict[str, list[str]] = defaultdict(list)
    by_sha: dict[str, list[str]] = defaultdict(list)
    sha_of = {}
    for r in rows:
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
        for i, a in enumerate(members):
            for b in members[i + 1 :]:
                add(a, b, 0)
    codes = list(by_code)
    for i, j, d in phash_pairs(codes, max_distance):
        for a in by_code[codes[i]]:
            for b in by_code[codes[j]]:
                add(a, b, d)
    return sorted((a, b, d, exact) for (a, b), (d, exact) in edges.items())


def deduplicate(
    rows: list[dict], edges: list[tuple[str, str, int, bool]], threshold: int, group_threshold: int
) -> list[dict]:
    """Apply the rules to ``rows`` (status ok, with phash) in place; returns the report rows."""
    from mushroom_id.dedup import UnionFind, hamming

    by_id = {r["image_id"]: r for r in rows}
    dup_edges = [(a, b, d, ex) for a, b, d, ex in edges if ex or d <= threshold]
    clusters = UnionFind(by_id)
    for a, b, _, _ in dup_edges:
        clusters.union(a, b)
    members: dict[str, list[str]] = defaultdict(list)
    for iid in by_id:
        members[clusters.find(iid)].append(iid)

    report = []
    conflict_ids = set()
    for a, b, d, exact in dup_edges:
        ra, rb = by_id[a], by_id[b]
        if ra["species"] != rb["species"]:
            conflict_ids.update((a, b))
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
    # split groups among the survivors, with the looser threshold
    kept = [i for i, r in by_id.items() if r["status"] == "ok"]
    groups = UnionFind(kept)
    kept_set = set(kept)
    for a, b, d, exact in edges:
        if a in kept_set and b in kept_set and (exact or d <= group_threshold):
            groups.union(a, b)
    for i in kept:
        by_id[i]["dup_group"] = groups.find(i)
    return sorted(report, key=lambda x: (x["kind"], x["species"], x["image_id"]))


def run(args: argparse.Namespace) -> int:
    work_dir: Path = args.work_dir
    manifest = Manifest(work_dir)
    rows = manifest.rows()
    reset_from(rows, "dedup")
    live = [r for r in rows if r["status"] == "ok"]
    t0 = time.perf_counter()
    codes = compute_phashes(live, work_dir, args.workers)
    for r in live:
        r["phash"] = codes.get(r["raw_sha256"], "")
    t_hash = time.perf_counter() - t0
    edges = find_edges(live, max(args.threshold, args.group_threshold))
    if args.cnn:
        known = {(a, b) for a, b, _, _ in edges}
        for a, b, _similarity in cnn_pairs([r for r in live if r["phash"]], work_dir, args.cnn_threshold):
            if (a, b) not in known:
                edges.append((a, b, 0, False))  # counts as a duplicate whatever the PHash distance
    t_pairs = time.perf_counter() - t0 - t_hash
    report = deduplicate(live, edges, args.threshold, args.group_threshold)
    manifest.write(rows)
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
        "threshold": args.threshold,
        "group_threshold": args.group_threshold,
        "cnn": bool(args.cnn),
        "seconds_hashing": round(t_hash, 1),
        "seconds_pair_search": round(t_pairs, 2),
    }
    write_summary(work_dir, "dedup", summary)
    print_summary(
        "dedup",
        [
            ("images in", len(live)),
            ("exact duplicates dropped", summary["exact_duplicates_dropped"]),
            (f"near duplicates dropped (phash <= {args.threshold})", summary["near_duplicates_dropped"]),
            ("label-conflict pairs (two species)", summary["label_conflict_pairs"]),
            ("images quarantined for label conflicts", summary["label_conflict_images_quarantined"]),
            ("unreadable for PHash (normalize decides)", summary["unreadable_for_phash"]),
            ("images kept", len(kept)),
            (f"kept in shared split groups (<= {args.group_threshold})", summary["kept_in_multi_image_split_groups"]),
            ("time hashing / pair search", f"{t_hash:.1f} s / {t_pairs:.2f} s"),
            ("report", work_dir / "dedup_report.csv"),
        ],
    )
    return 0
