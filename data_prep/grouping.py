"""Deterministic, grouped, per-species train/validation/test splits.

Near-duplicate groups never span two splits. Rule for small species (by number of
distinct groups n): n == 1 -> train only; n == 2 -> train + one held-out group, which
goes to validation or test by a seeded hash of the species (so validation and test hold the
same kind of species and a threshold calibrated on validation transfers to test); n >= 3
-> at least one group in validation and one in test, the rest by the target fractions.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Sequence

SPLITS = ("train", "validation", "test")


def connected_groups(keys: Iterable[Hashable], pairs: Iterable[tuple[Hashable, Hashable]]) -> dict:
    """key -> the smallest key of its connected component (scipy's connected components over ``pairs``).

    Linear in keys + pairs: a group of k identical images needs k - 1 pairs (a star), not k^2 / 2.
    Pairs naming unknown keys are ignored.
    """
    import numpy as np
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    ordered = sorted(set(keys))
    index = {k: i for i, k in enumerate(ordered)}
    a, b = [], []
    for x, y in pairs:
        if x in index and y in index:
            a.append(index[x])
            b.append(index[y])
    n = len(ordered)
    if n == 0:
        return {}
    graph = coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    first = {}
    for i, label in enumerate(labels.tolist()):  # keys are sorted: the first seen is the smallest
        first.setdefault(label, i)
    return {k: ordered[first[label]] for k, label in zip(ordered, labels.tolist(), strict=True)}


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


def held_out_sources(group_sources: dict[str, set[str]], held_out_fraction: float, seed: int, species: str) -> set[str]:
    """Sources of one species to hold out: whole sources, smallest first, about ``held_out_fraction`` of its
    groups, never every source (training keeps at least one). Sources that share a duplicate group are one
    unit, so no photo in validation or test has a copy from a training source."""
    sources = sorted({s for ss in group_sources.values() for s in ss})
    unit_of = connected_groups(sources, ((min(ss), s) for ss in group_sources.values() for s in ss))
    units: dict[str, set[str]] = defaultdict(set)
    for s in sources:
        units[unit_of[s]].add(s)
    size = Counter(unit_of[min(ss)] for ss in group_sources.values())  # groups per unit
    order = sorted(units, key=lambda u: (size[u], _rank(seed, f"source:{species}:{u}")))
    target = max(1, round(held_out_fraction * len(group_sources)))
    held: set[str] = set()
    n_held = 0
    for u in order[:-1]:  # the largest unit always trains
        if n_held >= target:
            break
        held |= units[u]
        n_held += size[u]
    return held


def cross_source_split(
    items: Sequence[tuple[str, str, str, str]],
    fractions: tuple[float, float, float] = (0.70, 0.15, 0.15),
    seed: int = 0,
) -> dict[str, str]:
    """Assign each item to a split so that held-out photos come from sources the species did not train on.

    ``items`` are (key, species, group, source) quadruples; ``group`` keys should be content-derived
    (e.g. the smallest sha256 of the group), so that the split does not depend on file locations.
    For a species whose groups come from two or more sources, whole sources are held out (smallest first,
    about ``fractions[1] + fractions[2]`` of its groups); their groups go to validation and test, one by one
    in seeded-hash order (a species with one held-out group sends it to validation or test by a seeded hash
    of the species). Species with a single source fall back to :func:`grouped_split`.
    Returns {key: split}.
    """
    group_species: dict[str, str] = {}
    group_sources: dict[str, set[str]] = defaultdict(set)
    for _, species, group, source in items:
        group_species[group] = min(species, group_species.get(group, species))
        group_sources[group].add(source)
    groups_of: dict[str, dict[str, set[str]]] = defaultdict(dict)
    for group, species in group_species.items():
        groups_of[species][group] = group_sources[group]

    split_of_group: dict[str, str] = {}
    single_source: list[tuple[str, str, str]] = []
    for species, groups in groups_of.items():
        if len({s for ss in groups.values() for s in ss}) < 2:
            single_source += [(g, species, g) for g in groups]
            continue
        held = held_out_sources(groups, fractions[1] + fractions[2], seed, species)
        out = sorted((g for g, ss in groups.items() if ss & held), key=lambda g: _rank(seed, g))
        for g in groups:
            split_of_group[g] = "train"
        first = "test" if len(out) > 1 or int(_rank(seed, "species:" + species), 16) % 2 else "validation"
        second = "validation" if first == "test" else "test"
        for i, g in enumerate(out):
            split_of_group[g] = first if i % 2 == 0 else second
    split_of_group.update(grouped_split(single_source, fractions, seed))
    return {key: split_of_group[group] for key, _, group, _ in items}


def cross_source_species(rows: Sequence[tuple[str, str, str]]) -> set[str]:
    """Species whose held-out photos all come from sources none of its training photos come from.

    ``rows`` are (species, source, split). Derived from a split, never stored beside it.
    """
    train: dict[str, set[str]] = defaultdict(set)
    held: dict[str, set[str]] = defaultdict(set)
    for species, source, split in rows:
        (train if split == "train" else held)[species].add(source)
    return {s for s in held if train[s] and held[s] and not (train[s] & held[s])}
