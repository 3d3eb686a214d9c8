from collections import Counter

from data_prep.grouping import connected_groups, grouped_split
from data_prep.near_duplicates import DEFAULT_PHASH_THRESHOLD, hamming, hash_pairs, phash_pair


def phash_encodings(files):
    return {f: phash_pair(f)[0] for f in files}


# Pairs checked by eye in ../shared/data/photos (web-scraped thumbnails re-used across sets).
KNOWN_EXACT = (
    "Boletus_edulis/webthumb_train_boletus_edulis_181.jpg",
    "Boletus_erythropus/webthumb_train_boletus_erythropus_61.jpg",
)
KNOWN_NEAR = (
    "Amanita_vaginata/webthumb_train_amanita_vaginata_109.jpg",
    "Amanita_vaginata/webthumb_train_amanita_vaginata_303.jpg",
)
DISTINCT = ("Amanita_vaginata/webthumb_train_amanita_vaginata_170.jpg", "Rhodocollybia_butyracea/inat_4527999512_0.jpg")


def test_known_duplicates_close_and_distinct_photos_not(photos_dir):
    import hashlib

    files = [str(photos_dir / p) for pair in (KNOWN_EXACT, KNOWN_NEAR, DISTINCT) for p in pair]
    codes = phash_encodings(files)
    digest = [hashlib.sha256(open(f, "rb").read()).hexdigest() for f in files]
    assert digest[0] == digest[1]  # exact: the same bytes filed under two species
    assert hamming(codes[files[2]], codes[files[3]]) <= DEFAULT_PHASH_THRESHOLD  # near
    assert hamming(codes[files[4]], codes[files[5]]) > DEFAULT_PHASH_THRESHOLD  # look alike in PHash only at 10


def test_near_duplicate_search_finds_known_pair(photos_dir):
    files = sorted(str(p) for p in (photos_dir / "Amanita_vaginata").glob("*.jpg"))[:200]
    files.append(str(photos_dir / KNOWN_NEAR[1]))
    codes = phash_encodings(files)
    pairs = {tuple(sorted((files[i], files[j]))) for i, j, _ in hash_pairs([codes[f] for f in files])}
    a, b = sorted(str(photos_dir / p) for p in KNOWN_NEAR)
    assert (a, b) in pairs


def test_connected_groups():
    groups = connected_groups("abcde", [("b", "a"), ("d", "c"), ("c", "b"), ("x", "e")])
    assert {groups[x] for x in "abcd"} == {"a"} and groups["e"] == "e"


def test_connected_groups_are_linear_for_a_big_group_of_copies():
    """10,000 copies of one placeholder: a star of 9,999 pairs, one group, in well under a second."""
    import time

    keys = [f"k{i:05d}" for i in range(10_000)]
    t0 = time.perf_counter()
    groups = connected_groups(keys, [(keys[0], k) for k in keys[1:]])
    assert set(groups.values()) == {"k00000"} and time.perf_counter() - t0 < 2


def test_grouped_split_keeps_groups_together_and_is_deterministic():
    items = [(f"s{i}_{j}", f"sp{i % 7}", f"g{i}_{j // 3}") for i in range(40) for j in range(6)]
    split = grouped_split(items, seed=3)
    assert split == grouped_split(items, seed=3)
    assert split != grouped_split(items, seed=4)
    by_group = {}
    for key, _, group in items:
        by_group.setdefault(group, set()).add(split[key])
    assert all(len(s) == 1 for s in by_group.values())
    counts = Counter(split.values())
    assert 0.6 < counts["train"] / len(items) < 0.8
    assert counts["validation"] > 0 and counts["test"] > 0


def test_grouped_split_small_species_rule():
    items = [
        ("a1", "A", "ga"),
        ("b1", "B", "gb1"),
        ("b2", "B", "gb2"),
        ("c1", "C", "gc1"),
        ("c2", "C", "gc2"),
        ("c3", "C", "gc3"),
    ]
    split = grouped_split(items)
    assert split["a1"] == "train"
    assert sorted(split[k] for k in ("b1", "b2")) in (["test", "train"], ["train", "validation"])
    assert sorted(split[k] for k in ("c1", "c2", "c3")) == ["test", "train", "validation"]


def test_two_group_species_feed_validation_and_test_alike():
    """Species with two photo groups hold one out; validation and test must both get some."""
    items = [(f"{sp}_{j}", f"sp{sp}", f"g{sp}_{j}") for sp in range(200) for j in range(2)]
    split = grouped_split(items, seed=0)
    counts = Counter(split.values())
    assert counts["train"] == 200
    assert 70 < counts["validation"] < 130 and 70 < counts["test"] < 130
