"""split: train / validation / test, per species, cross-source, duplicate and observation groups never split.

Groups: images of one species within the dedup group threshold (``dup_group``: near duplicates,
mirrored copies, crops with ``dedup --cnn``) and photos of one observation (``observation_id`` /
``occurrence_id`` from the GBIF source, or an id in ``origin``: iNaturalist observation URL, GBIF
occurrence, Mushroom Observer observation) form one group; a Mushroom Observer image URL
(``mushroomobserver.org/images/320/N``) whose observation is unknown groups the copies of image N.
A group is keyed by its species and smallest ``raw_sha256`` (content, never a file path or a
location), so the same photos give the same split on every machine. (Exact and near duplicates across species
were quarantined by dedup; looser look-alikes
across species carry different labels, so they leak nothing and are split with their own species.)

``--strategy cross-source`` (default, ``data_prep.grouping.cross_source_split``): for every species with
photos from two or more sources (``source``: a collection or website), whole sources are held out
(smallest first, about 30% of its groups) and their groups go to validation and test: a held-out photo
is from a photographer/site the species never trained on, which is what a user's upload is. Species with
one source get the ordinary grouped split (``--strategy grouped`` uses it for every species):

Species with few images (n = distinct groups): n >= 3 -> at least one group in validation and one in
test; n == 2 -> train + one held-out group (validation or test, by a seeded hash of the species);
n == 1 -> train only (the model can learn it, nobody can measure it).
``--min-per-species K`` instead excludes species with fewer than K groups (dropped with that reason).
The summary counts the species of each kind.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter, defaultdict
from pathlib import Path

from .common import Stage, add_common_arguments, drop

# The project's evaluation (mushroom_id.engine.data) reads at most this many photos per species from
# validation and test, so that no species outweighs the others; the dataset card says so.
EVALUATION_HELD_OUT_CAP = 5


def add_stage_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("split")
    g.add_argument("--fractions", type=float, nargs=3, default=(0.70, 0.15, 0.15), metavar=("TRAIN", "VAL", "TEST"))
    g.add_argument("--seed", type=int, default=0)
    g.add_argument(
        "--strategy",
        choices=("cross-source", "grouped"),
        default="cross-source",
        help="cross-source: hold out whole sources per species where it has several (default)",
    )
    g.add_argument(
        "--min-per-species",
        type=int,
        default=1,
        help="exclude species with fewer distinct images (duplicate groups) than this",
    )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    add_stage_arguments(parser)


_OBSERVATION_PATTERNS = (
    (re.compile(r"inaturalist\.org/observations/(\d+)"), "inat"),
    (re.compile(r"GBIF occurrence (\d+)", re.I), "gbif"),
    (re.compile(r"gbif\.org/occurrence/(\d+)"), "gbif"),
    (re.compile(r"mushroomobserver\.org/(?:observations?/|obs/|observer/show_observation/)(\d+)"), "mo"),
)
# A Mushroom Observer image URL (any size: /images/320/N, /images/orig/N, /image/show_image/N) names
# the image, not its observation: copies of one image in two sizes share this key.
_MO_IMAGE = re.compile(r"mushroomobserver\.org/(?:images/[a-z0-9]+|image/show_image)/(\d+)")


def mushroom_observer_image(url: str) -> str:
    """``mo-image:<N>`` for a Mushroom Observer image URL; "" otherwise."""
    m = _MO_IMAGE.search(url or "")
    return f"mo-image:{m.group(1)}" if m else ""


def observation_id(origin: str) -> str:
    """The observation (specimen) a photo belongs to, from its ``origin`` note; "" when none is named."""
    for pattern, prefix in _OBSERVATION_PATTERNS:
        m = pattern.search(origin or "")
        if m:
            return f"{prefix}:{m.group(1)}"
    return ""


def observation_keys(row: dict) -> list[str]:
    """Every id naming the specimen of a photo: its ``observation_id``, its GBIF ``occurrence_id`` and the
    observation named in ``origin`` (one iNaturalist observation published through GBIF carries two ids,
    both join the group)."""
    ids = {row.get("observation_id") or "", row.get("occurrence_id") or "", observation_id(row.get("origin", ""))}
    if not any(i.startswith("mo:") for i in ids):  # no MO observation known: at least group by MO image
        ids |= {mushroom_observer_image(row.get("origin", "")), mushroom_observer_image(row.get("source_url", ""))}
    return sorted(f"obs:{i}" for i in ids if i)


def split_groups(rows: list[dict]) -> dict[str, str]:
    """image_id -> group key: duplicate groups and observations merged, keyed by their smallest raw_sha256."""
    from data_prep.grouping import connected_groups

    first: dict[str, str] = {}
    pairs = []
    for r in rows:
        for key in ([f"dup:{r['dup_group']}"] if r["dup_group"] else []) + observation_keys(r):
            pairs.append((first.setdefault(key, r["image_id"]), r["image_id"]))
    root_of = connected_groups((r["image_id"] for r in rows), pairs)
    content: dict[str, str] = {}
    for r in rows:
        root = root_of[r["image_id"]]
        content[root] = min(content.get(root, r["raw_sha256"] or r["image_id"]), r["raw_sha256"] or r["image_id"])
    # Within one species: a look-alike photo filed under another species leaks no label (the label differs),
    # and a group owned by one species would decide another species' photo (and its sources) behind its back.
    return {r["image_id"]: f"{r['species']}|{content[root_of[r['image_id']]]}" for r in rows}


def assign_splits(
    rows: list[dict],
    fractions=(0.70, 0.15, 0.15),
    seed: int = 0,
    min_per_species: int = 1,
    strategy: str = "cross-source",
) -> dict:
    """Fill ``split`` of the kept rows in place (dropping too-small species); returns counts."""
    from data_prep.grouping import cross_source_species, cross_source_split, grouped_split

    live = [r for r in rows if r["status"] == "ok"]
    group_of = split_groups(live)
    groups_of: dict[str, set[str]] = defaultdict(set)
    for r in live:
        groups_of[r["species"]].add(group_of[r["image_id"]])
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
    if strategy == "cross-source":
        items = [(r["image_id"], r["species"], group_of[r["image_id"]], r["source"] or r["crawler"]) for r in live]
        assignment = cross_source_split(items, tuple(fractions), seed)
    else:
        assignment = grouped_split(
            [(r["image_id"], r["species"], group_of[r["image_id"]]) for r in live], tuple(fractions), seed
        )
    for r in live:
        r["split"] = assignment[r["image_id"]]
    sides: dict[str, set[str]] = defaultdict(set)
    for r in live:
        sides[group_of[r["image_id"]]].add(r["split"])
    assert all(len(s) == 1 for s in sides.values()), "a duplicate or observation group spans two splits"
    crossed = cross_source_species([(r["species"], r["source"] or r["crawler"], r["split"]) for r in live])
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
        "species_cross_source": len(crossed),
        "held_out_cross_source": dict(
            Counter(r["split"] for r in live if r["species"] in crossed and r["split"] != "train")
        ),
        "groups": len(sides),
        "groups_with_several_images": sum(1 for g in Counter(group_of.values()).values() if g > 1),
        "strategy": strategy,
    }


def run(args: argparse.Namespace) -> int:
    work_dir: Path = args.work_dir
    stage = Stage("split", work_dir)
    rows = stage.rows
    if not any(r["path"] for r in rows):
        raise SystemExit("no normalized images in the manifest: run `python -m data_prep normalize` first")
    counts = assign_splits(rows, args.fractions, args.seed, args.min_per_species, args.strategy)
    stage.write()
    summary = {**counts, "fractions": list(args.fractions), "seed": args.seed, "min_per_species": args.min_per_species}
    return stage.finish(summary)
