"""Deterministic, grouped, per-species train/validation/test splits.

Near-duplicate groups never span two splits. Rule for small species (by number of
distinct groups n): n == 1 -> train only; n == 2 -> train + one held-out group, which
goes to validation or test by a seeded hash of the species (so validation and test hold the
same kind of species and a threshold calibrated on validation transfers to test); n >= 3
-> at least one group in validation and one in test, the rest by the target fractions.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Sequence

SPLITS = ("train", "validation", "test")


def _rank(seed: int, key: str) -> str:
    return hashlib.sha256(f"{seed}:{key}".encode()).hexdigest()


def grouped_split(
    items: Sequence[tuple[str, str, str]],
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15),
    seed: int = 0,
) -> dict[str, str]:
    """Assign each item to a split.

    ``items`` are (key, species, group) triples. A group whose members carry several
    species goes with the alphabetically first of them. Returns {key: split}.
    """
    if abs(sum(fractions) - 1.0) > 1e-6:
        raise ValueError(f"split fractions must add up to 1, got {fractions}")
    group_species: dict[str, str] = {}
    for _, species, group in items:
        group_species[group] = min(species, group_species.get(group, species))
    groups_of: dict[str, list[str]] = defaultdict(list)
    for group, species in group_species.items():
        groups_of[species].append(group)

    split_of_group: dict[str, str] = {}
    for species, groups in groups_of.items():
        groups.sort(key=lambda g: _rank(seed, g))
        n = len(groups)
        if n == 1:
            n_val, n_test = 0, 0
        elif n == 2:
            to_val = int(_rank(seed, "species:" + species), 16) % 2 == 0
            n_val, n_test = (1, 0) if to_val else (0, 1)
        else:
            n_val = max(1, round(n * fractions[1]))
            n_test = max(1, round(n * fractions[2]))
        for i, g in enumerate(groups):
            split_of_group[g] = "test" if i < n_test else "validation" if i < n_test + n_val else "train"
    return {key: split_of_group[group] for key, _, group in items}
