"""Near-duplicate primitives of the dedup stage: perceptual hashes (plain and mirrored), the one pair search.

* :func:`phash_pair` hashes a file with imagededup's PHash, and its left-right mirror image from the same
  decoded 32 x 32 grayscale array (a flipped copy of a photo is one hash away from its mirror hash).
* :func:`hash_pairs` is the one PHash pair search of the pipeline, exact: all pairs (numpy popcount in
  blocks) for small sets, multi-index hashing (four 16-bit blocks, pigeonhole) from 20,000 hashes on.
  With ``against`` it searches one set of hashes against another (mirror hashes against plain ones).
* Embedding searches run within each species (:func:`pairs_within_groups`: the split's groups never
  cross species anyway): :func:`cosine_pairs` (crops, cosine alone) and :func:`joint_pairs` (PHash and
  cosine together, one threshold pass).
* Grouping pairs into clusters is :func:`data_prep.grouping.connected_groups` (scipy's connected
  components; the split's own grouping uses it too).
"""

from __future__ import annotations

from collections.abc import Sequence

# Hamming distance over 64 bits; measured on ../shared: <= 8 were all true duplicates, 10 already
# paired unrelated photos.
DEFAULT_PHASH_THRESHOLD = 8

_HASHER = None


def hamming(a: str, b: str) -> int:
    """Hamming distance between two hex-encoded 64-bit hashes (imagededup's PHash format)."""
    return (int(a, 16) ^ int(b, 16)).bit_count()


def phash_pair(path: str) -> tuple[str, str]:
    """(PHash, PHash of the mirrored image) of one file; ("", "") when it cannot be read."""
    global _HASHER
    import numpy as np

    if _HASHER is None:
        import logging

        from imagededup.methods import PHash

        logging.getLogger("imagededup").setLevel(logging.WARNING)
        _HASHER = PHash(verbose=False)
    from imagededup.utils.image_utils import load_image

    try:
        small = load_image(image_file=path, target_size=_HASHER.target_size, grayscale=True)
    except Exception:
        small = None
    if small is None:
        return "", ""
    code = _HASHER.encode_image(image_array=small)  # == encode_image(image_file=path)
    mirror = _HASHER.encode_image(image_array=np.ascontiguousarray(small[:, ::-1]))
    return str(code or ""), str(mirror or "")


def _as_uint64(codes: Sequence[str]):
    import numpy as np

    return np.fromiter((int(c, 16) for c in codes), dtype=np.uint64, count=len(codes))


def _all_pairs(
    values, others, threshold: int, self_search: bool, block: int = 64, base: int = 0, upper: bool | None = None
) -> list[tuple[int, int, int]]:
    """Every (i, j, distance) within ``threshold``: numpy popcount, ``block x M`` bytes at a time."""
    import numpy as np

    out: list[tuple[int, int, int]] = []
    for start in range(0, len(values), block):
        stop = min(start + block, len(values))
        offset = start if self_search else 0  # upper triangle only when searching one set
        dist = np.bitwise_count(values[start:stop, None] ^ others[None, offset:])
        rows, cols = np.nonzero(dist <= threshold)
        i, j = rows + start, cols + offset
        keep = j > i + base if (self_search if upper is None else upper) else j != i + base
        for a, b, d in zip(i[keep].tolist(), j[keep].tolist(), dist[rows[keep], cols[keep]].tolist(), strict=True):
            out.append((a, b, int(d)))
    return out


BLOCKS = 4  # 16-bit blocks of the 64-bit hash
BLOCK_BITS = 64 // BLOCKS


def _masks(radius: int):
    """Every 16-bit value with at most ``radius`` bits set (the probes of one block)."""
    import itertools

    import numpy as np

    masks = [0]
    for k in range(1, radius + 1):
        masks += [sum(1 << b for b in bits) for bits in itertools.combinations(range(BLOCK_BITS), k)]
    return np.array(masks, dtype=np.uint64)


def _indexed_pairs(
    values, others, threshold: int, self_search: bool, chunk: int = 4096, base: int = 0, upper: bool | None = None
):
    """Multi-index hashing (Norouzi et al., 2012): the 64 bits in 4 blocks of 16; two hashes within
    ``threshold`` bits agree within ``threshold // 4`` bits on at least one block (pigeonhole), so each
    hash only meets the hashes of the buckets within that radius of its blocks. Exact: every candidate's
    full distance is checked. Returns arrays (i, j, distance)."""
    import numpy as np

    sub_radius = threshold // BLOCKS
    masks = _masks(sub_radius)
    found_i, found_j, found_d = [], [], []
    n_buckets = 1 << BLOCK_BITS
    for b in range(BLOCKS):
        shift = np.uint64(b * BLOCK_BITS)
        key_others = ((others >> shift) & np.uint64(n_buckets - 1)).astype(np.int64)
        order = np.argsort(key_others, kind="stable").astype(np.int32)
        counts = np.bincount(key_others, minlength=n_buckets).astype(np.int32)
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int32)
        key_values = (values >> shift) & np.uint64(n_buckets - 1)
        for c0 in range(0, len(values), chunk):
            probes = (key_values[c0 : c0 + chunk, None] ^ masks[None, :]).astype(np.int64)  # (c, probes)
            n = counts[probes].ravel()
            ends = np.cumsum(n, dtype=np.int64)
            total = int(ends[-1])
            if not total:
                continue
            # candidate k of probe p sits at order[starts[p] + k]: one repeat of (start - offset) + a range
            item = np.repeat(np.arange(c0, c0 + len(probes), dtype=np.int32), (n.reshape(len(probes), -1).sum(1)))
            other = order[np.repeat(starts[probes].ravel() - (ends - n), n) + np.arange(total)]
            keep = other > item + base if (self_search if upper is None else upper) else other != item + base
            item, other = item[keep], other[keep]
            dist = np.bitwise_count(values[item] ^ others[other])
            close = dist <= threshold
            found_i.append(item[close])
            found_j.append(other[close])
            found_d.append(dist[close])
    if not found_i:
        return []
    i, j, d = np.concatenate(found_i), np.concatenate(found_j), np.concatenate(found_d)
    key = i.astype(np.int64) * len(others) + j  # a pair met through two blocks counts once
    _, first_seen = np.unique(key, return_index=True)
    return [(int(a), int(b), int(c)) for a, b, c in zip(i[first_seen], j[first_seen], d[first_seen], strict=True)]


INDEX_FROM = 20_000  # below this many hashes the all-pairs search is as fast and simpler


def hash_pairs(
    codes: Sequence[str],
    threshold: int = DEFAULT_PHASH_THRESHOLD,
    against: Sequence[str] | None = None,
    method: str = "auto",
    base: int = 0,
    upper: bool | None = None,
) -> list[tuple[int, int, int]]:
    """Index pairs (i, j, distance) of hex hashes within ``threshold`` bits, exact, sorted.

    Without ``against``: pairs inside ``codes`` with i < j (same answer as imagededup's brute-force
    search). With ``against``: every (i, j) with ``codes[i]`` close to ``against[j]`` and i != j (for
    mirror hashes searched against the plain hashes of the same images). ``method``: ``all-pairs``
    (numpy popcount over every pair), ``index`` (multi-index hashing over 16-bit blocks: each hash
    meets only the buckets within ``threshold // 4`` bits of its own blocks, so the work grows with the
    close candidates, not with N^2; exact for any threshold, fast while ``threshold // 4 <= 2``), or
    ``auto`` (the index from :data:`INDEX_FROM` hashes on, for thresholds up to 11).

    One block of a search (the Ray engine's tasks): ``codes`` is the block that starts at index ``base`` of
    ``against``; pairs (i, j) of the block's i keep ``j > base + i`` (``upper``, a set searched against
    itself) or ``j != base + i`` (mirror hashes); i stays local to the block.
    """
    values = _as_uint64(codes)
    others = values if against is None else _as_uint64(against)
    if len(values) == 0 or len(others) == 0:
        return []
    if method == "auto":
        method = "index" if max(len(values), len(others)) >= INDEX_FROM and threshold < 12 else "all-pairs"
    if method == "index":
        pairs = _indexed_pairs(values, others, threshold, self_search=against is None, base=base, upper=upper)
    else:
        pairs = _all_pairs(values, others, threshold, self_search=against is None, base=base, upper=upper)
    return sorted(pairs)


def cosine_pairs(vectors, threshold: float, block: int = 256) -> list[tuple[int, int, float]]:
    """Index pairs (i < j, similarity) of rows of ``vectors`` (L2-normalised) with cosine >= ``threshold``."""
    import numpy as np

    vectors = np.asarray(vectors, dtype=np.float32)
    out: list[tuple[int, int, float]] = []
    for start in range(0, len(vectors), block):
        sim = vectors[start : start + block] @ vectors[start:].T
        rows, cols = np.nonzero(sim >= threshold)
        keep = cols > rows
        for r, c in zip(rows[keep].tolist(), cols[keep].tolist(), strict=True):
            out.append((start + r, start + c, round(float(sim[r, c]), 4)))
    return out


def pairs_within_groups(groups: Sequence[str], search) -> list[tuple[int, int, float]]:
    """``search(indices)`` run inside each group (a species) on its members' global indices: the pairs
    of one species only, at the cost of the sum of the squared group sizes instead of N^2."""
    from collections import defaultdict

    members: dict[str, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        members[g].append(i)
    out = []
    for idx in members.values():
        if len(idx) > 1:
            out += [(idx[a], idx[b], v) for a, b, v in search(idx)]
    return sorted(out)


def joint_pairs(
    codes: Sequence[str],
    vectors,
    groups: Sequence[str],
    max_distance: int = 24,
    min_cosine: float = 0.80,
) -> list[tuple[int, int, int, float]]:
    """(i, j, PHash distance, cosine) of pairs of one group (species) that are close on BOTH measures:
    PHash within ``max_distance`` bits and embedding cosine >= ``min_cosine``. Each alone is too loose
    (PHash 24 or cosine 0.80 pair unrelated photos); together they catch re-framed and re-coloured
    shots of one specimen that neither strict threshold sees (measured in data_prep/README.md)."""
    import numpy as np

    values = _as_uint64(codes)
    vectors = np.asarray(vectors, dtype=np.float32)
    out = []

    def search(idx: list[int]):
        sub = values[idx]
        dist = np.bitwise_count(sub[:, None] ^ sub[None, :])
        sim = vectors[idx] @ vectors[idx].T
        a, b = np.nonzero(np.triu((dist <= max_distance) & (sim >= min_cosine), k=1))
        return [
            (x, y, (int(dist[x, y]), round(float(sim[x, y]), 4))) for x, y in zip(a.tolist(), b.tolist(), strict=True)
        ]

    for i, j, (d, c) in pairs_within_groups(groups, search):
        out.append((i, j, d, c))
    return out
