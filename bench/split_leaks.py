"""Does anything of one specimen cross splits on the shared photos? Observations, mirrored copies, crops.

    python bench/split_leaks.py                       # prepares ../shared/data/photos in /tmp (once, ~5 min)
    python bench/split_leaks.py --work-dir artifacts/shared-photos   # an already prepared folder

Counts, over the kept images: observations (every id of ``data_prep.split.observation_keys``) with photos
in more than one split; pairs within PHash 10, mirror PHash 8 and embedding cosine 0.90 (the dedup
defaults) whose two images sit in different splits of the same species.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    from data_prep.common import Manifest
    from data_prep.dedup import (
        DEFAULT_CNN_THRESHOLD,
        DEFAULT_JOINT_COSINE,
        DEFAULT_JOINT_PHASH,
        DEFAULT_MIRROR_THRESHOLD,
        cnn_pairs,
        find_edges,
        joint_near_copies,
        mirror_edges,
    )
    from data_prep.near_duplicates import phash_pair
    from data_prep.pipeline import prepare_folder
    from data_prep.split import observation_keys
    from mushroom_id.core.paths import shared_photos_dir

    ap = argparse.ArgumentParser()
    ap.add_argument("--work-dir", type=Path, default=Path("/tmp/split_leaks_shared"))
    ap.add_argument("--no-crops", action="store_true", help="prepare without embedding pairs (dedup --cnn)")
    args = ap.parse_args()
    t0 = time.perf_counter()
    prepare_folder(shared_photos_dir(), args.work_dir, crops=not args.no_crops, quiet=True)
    print(f"prepared in {time.perf_counter() - t0:.0f} s (0 when it was already there)")
    rows = [r for r in Manifest(args.work_dir).rows() if r["status"] == "ok"]
    for r in rows:
        r["phash"], r["phash_mirror"] = phash_pair(str(args.work_dir / r["raw_path"]))
    split_of = {r["image_id"]: r["split"] for r in rows}
    species_of = {r["image_id"]: r["species"] for r in rows}
    sides = defaultdict(set)
    for r in rows:
        for key in observation_keys(r):
            sides[key].add(r["split"])
    several = sum(1 for k in sides if sum(k in observation_keys(r) for r in rows) > 1)
    crossing = sorted(k for k, v in sides.items() if len(v) > 1)
    print(f"kept images {len(rows)}; observations with several photos {several}; crossing splits {len(crossing)}")

    def leaks(pairs):
        return [(a, b) for a, b in pairs if species_of[a] == species_of[b] and split_of[a] != split_of[b]]

    near = [(a, b) for a, b, d, ex in find_edges(rows, 10)]
    mirrored = [(a, b) for a, b, _ in mirror_edges(rows, DEFAULT_MIRROR_THRESHOLD)]
    crops = [(a, b) for a, b, _ in cnn_pairs(rows, args.work_dir, DEFAULT_CNN_THRESHOLD)]
    joint = [(a, b) for a, b, _, _ in joint_near_copies(rows, args.work_dir, DEFAULT_JOINT_PHASH, DEFAULT_JOINT_COSINE)]
    for name, pairs in (("PHash <= 10", near), (f"mirror <= {DEFAULT_MIRROR_THRESHOLD}", mirrored),
                        (f"cosine >= {DEFAULT_CNN_THRESHOLD}", crops),
                        (f"PHash <= {DEFAULT_JOINT_PHASH} & cos >= {DEFAULT_JOINT_COSINE}", joint)):  # fmt: skip
        bad = leaks(pairs)
        print(f"{name:>26}: {len(pairs)} pairs among kept images, {len(bad)} same-species pairs across splits")
        for a, b in bad[:10]:
            print(f"    {species_of[a]}: {a} ({split_of[a]}) / {b} ({split_of[b]})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
