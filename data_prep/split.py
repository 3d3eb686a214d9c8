"""split: train / validation / test = 70 / 15 / 15, per species, duplicate groups never split.

``mushroom_id.splits.grouped_split``: per species, its groups (``dup_group`` from dedup: images within
the group threshold) are ordered by a seeded hash and cut by the fractions, so the result depends only
on the seed and the set of images, never on their order or on other species.

Species with few images (n = distinct groups): n >= 3 -> at least one group in validation and one in
test; n == 2 -> train + one held-out group (validation or test, by a seeded hash of the species);
n == 1 -> train only (the model can learn it, nobody can measure it).
``--min-per-species K`` instead excludes species with fewer than K groups (dropped with that reason).
The summary counts the species of each kind.
"""

from __future__ import annotations

import argparse
from collections import Counter, defaultdict
from pathlib import Path

from .common import Manifest, add_common_arguments, drop, print_summary, reset_from, write_summary


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("split")
    g.add_argument("--fractions", type=float, nargs=3, default=(0.70, 0.15, 0.15), metavar=("TRAIN", "VAL", "TEST"))
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--min-per-species",
        type=int,
        default=1,
        help="exclude species with fewer distinct images (duplicate groups) than this",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_stage_arguments(parser)


def assign_splits(rows: list[dict], fractions=(0.70, 0.15, 0.15), seed: int = 0, min_per_species: int = 1) -> dict:
    """Fill ``split`` of the kept rows in place (dropping too-small species); returns counts."""
    from mushroom_id.splits import grouped_split

    live = [r for r in rows if r["status"] == "ok"]
    groups_of: dict[str, set[str]] = defaultdict(set)
    for r in live:
        r["dup_group"] = r["dup_group"] or r["image_id"]
        groups_of[r["species"]].add(r["dup_group"])
    excluded = {s for s, g in groups_of.items() if len(g) < min_per_species}
    for r in live:
        if r["species"] in excluded:
            n = len(groups_of[r["species"]])
            drop(
                r,
                "split",
                f"species has {n} distinct image{'s' if n != 1 else ''} (< --min-per-species {min_per_species})",
            )
    live = [r for r in live if r["status"] == "ok"]
    assignment = grouped_split([(r["image_id"], r["species"], r["dup_group"]) for r in live], tuple(fractions), seed)
    for r in live:
        r["split"] = assignment[r["image_id"]]
    sides: dict[str, set[str]] = defaultdict(set)
    for r in live:
        sides[r["dup_group"]].add(r["split"])
    assert all(len(s) == 1 for s in sides.values()), "a duplicate group spans two splits"
    per_species: dict[str, set[str]] = defaultdict(set)
    for r in live:
        per_species[r["species"]].add(r["split"])
    return {
        "images": dict(Counter(r["split"] for r in live)),
        "species": len(per_species),
        "species_in_all_three": sum(len(s) == 3 for s in per_species.values()),
        "species_train_only": sum(s == {"train"} for s in per_species.values()),
        "species_without_validation": sum("validation" not in s for s in per_species.values()),
        "species_excluded": len(excluded),
        "groups": len(sides),
        "groups_with_several_images": sum(1 for g in Counter(r["dup_group"] for r in live).values() if g > 1),
    }


def run(args: argparse.Namespace) -> int:
    work_dir: Path = args.work_dir
    manifest = Manifest(work_dir)
    rows = manifest.rows()
    reset_from(rows, "split")
    if not any(r["path"] for r in rows):
        raise SystemExit("no normalized images in the manifest: run `python -m data_prep normalize` first")
    counts = assign_splits(rows, args.fractions, args.seed, args.min_per_species)
    manifest.write(rows)
    summary = {**counts, "fractions": list(args.fractions), "seed": args.seed, "min_per_species": args.min_per_species}
    write_summary(work_dir, "split", summary)
    total = sum(counts["images"].values()) or 1
    print_summary(
        "split",
        [
            *[
                (f"{s}", f"{counts['images'].get(s, 0)} ({100 * counts['images'].get(s, 0) / total:.1f}%)")
                for s in ("train", "validation", "test")
            ],
            ("species", counts["species"]),
            ("  in all three splits", counts["species_in_all_three"]),
            ("  train only (1 distinct image)", counts["species_train_only"]),
            ("  without validation (< 3 distinct images)", counts["species_without_validation"]),
            (f"species excluded (< {args.min_per_species} images)", counts["species_excluded"]),
            ("duplicate groups kept together (> 1 image)", counts["groups_with_several_images"]),
            ("seed", args.seed),
        ],
    )
    return 0
