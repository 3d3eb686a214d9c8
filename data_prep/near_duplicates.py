"""Near-duplicate primitives of the dedup stage: perceptual hashes (plain and mirrored), the one pair search.

* :func:`phash_pair` hashes a file with imagededup's PHash, and its left-right mirror image from the same
  decoded 32 x 32 grayscale array (a flipped copy of a photo is one hash away from its mirror hash).
* :func:`hash_pairs` is the only pair search of the pipeline: exact, all pairs, numpy popcount in blocks
  (memory ``block x N`` bytes). With ``against`` it searches one set of hashes against another (mirror
  hashes against plain ones). :func:`cosine_pairs` is the same block search over embeddings (crops).
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


def hash_pairs(
    codes: Sequence[str],
    threshold: int = DEFAULT_PHASH_THRESHOLD,
    against: Sequence[str] | None = None,
    block: int = 64,
) -> list[tuple[int, int, int]]:
    """Index pairs (i, j, distance) of hex hashes within ``threshold`` bits: exact, all pairs, numpy.

    Without ``against``: pairs inside ``codes`` with i < j (same answer as imagededup's brute-force
    search). With ``against``: every (i, j) with ``codes[i]`` close to ``against[j]`` and i != j (for
    mirror hashes searched against the plain hashes of the same images). Memory: ``block x N`` bytes.
    """
    import numpy as np

    values = _as_uint64(codes)
    others = values if against is None else _as_uint64(against)
    n, m = len(values), len(others)
    out: list[tuple[int, int, int]] = []
    if n == 0 or m == 0:
        return out
    for start in range(0, n, block):
        stop = min(start + block, n)
        offset = start if against is None else 0  # upper triangle only when searching one set
        dist = np.bitwise_count(values[start:stop, None] ^ others[None, offset:])
        rows, cols = np.nonzero(dist <= threshold)
        i, j = rows + start, cols + offset
        keep = j > i if against is None else j != i
        for a, b, d in zip(i[keep].tolist(), j[keep].tolist(), dist[rows[keep], cols[keep]].tolist(), strict=True):
            out.append((a, b, int(d)))
    return out


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
