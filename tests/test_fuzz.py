"""Fuzzing the image path with mutated real photos: every case is a prediction or an ImageError.

Cases: MUSHROOM_FUZZ_CASES (default 300 in CI; raise it for a longer hunt), seeded by
MUSHROOM_FUZZ_SEED so a failure can be replayed.
"""

from __future__ import annotations

import io
import os
import struct
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from mushroom_id.core.images import ImageError, load_image
from mushroom_id.core.models import load_model
from mushroom_id.serving.predictor import Predictor

CASES = int(os.environ.get("MUSHROOM_FUZZ_CASES", "300"))
SEED = int(os.environ.get("MUSHROOM_FUZZ_SEED", "0"))


def _sof_dims(data: bytes, w: int, h: int) -> bytes:
    """Rewrite the frame size in a JPEG's SOF0/SOF2 marker (a lying header)."""
    for marker in (b"\xff\xc0", b"\xff\xc2"):
        i = data.find(marker)
        if i >= 0:
            return data[: i + 5] + struct.pack(">HH", h, w) + data[i + 9 :]
    return data


def mutate(data: bytes, rng: np.random.Generator) -> tuple[str, bytes]:
    n = len(data)
    kind = rng.integers(9)
    if kind == 0:
        return "truncate", data[: rng.integers(0, n)]
    if kind == 1:
        b = bytearray(data)
        for i in rng.integers(0, n, size=rng.integers(1, 50)):
            b[i] = rng.integers(256)
        return "flip bytes", bytes(b)
    if kind == 2:
        i = rng.integers(0, n)
        return "insert junk", data[:i] + rng.bytes(int(rng.integers(1, 4000))) + data[i:]
    if kind == 3:
        i, j = sorted(rng.integers(0, n, size=2))
        return "zero range", data[:i] + bytes(j - i) + data[j:]
    if kind == 4:
        return "header smash", rng.bytes(int(rng.integers(1, 64))) + data[64:]
    if kind == 5:
        return "lying size", _sof_dims(data, int(rng.integers(1, 65535)), int(rng.integers(1, 65535)))
    if kind == 6:
        i, j = sorted(rng.integers(0, n, size=2))
        return "duplicate chunk", data[:j] + data[i:j] + data[j:]
    if kind == 7:
        return "random bytes", rng.bytes(int(rng.integers(0, 5000)))
    return "append junk", data + rng.bytes(int(rng.integers(1, 100000)))


@pytest.fixture(scope="module")
def predictor():
    return Predictor(load_model("embedded"))


@pytest.fixture(scope="module")
def seeds(photo_manifest, photos_dir):
    rows = [r for r in photo_manifest if r["source"] in ("inat", "wiki", "web", "mo", "seed")]
    rng = np.random.default_rng(SEED)
    pick = rng.choice(len(rows), size=20, replace=False)
    return [(photos_dir.parent / rows[i]["path"]).read_bytes() for i in pick]


def test_mutated_real_photos_never_crash(seeds, predictor):
    rng = np.random.default_rng(SEED)
    outcomes = {"predicted": 0, "rejected": 0}
    decoded = []
    for case in range(CASES):
        kind, data = mutate(seeds[case % len(seeds)], rng)
        try:
            img = load_image(data)
            decoded.append(predictor.transform(img))
        except ImageError as e:
            assert str(e), (case, kind)
            outcomes["rejected"] += 1
        except Exception as e:  # pragma: no cover - this is the failure being hunted
            pytest.fail(f"case {case} ({kind}, seed {SEED}): unhandled {type(e).__name__}: {e}")
    # what decoded goes through the model in batches (the full path, safety logic included)
    for i in range(0, len(decoded), 32):
        logp, fungus = predictor.forward(torch.stack(decoded[i : i + 32]))
        for lp, f in zip(logp, fungus, strict=True):
            r = predictor.answer(np.exp(lp), float(f))
            assert np.isfinite(r["fungus_score"])
            outcomes["predicted"] += 1
    assert outcomes["predicted"] + outcomes["rejected"] == CASES
    # the mutations are not all trivially fatal, nor all harmless
    assert outcomes["predicted"] > CASES // 10 and outcomes["rejected"] > CASES // 10, outcomes


def _png_bomb(width: int, height: int) -> bytes:
    """A valid PNG header claiming width x height, with a small compressed body."""

    def chunk(tag: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + tag + body + struct.pack(">I", zlib.crc32(tag + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1_000_000, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


@pytest.mark.parametrize("size", [(30_000, 30_000), (100_000, 10), (9_000, 8_000)])
def test_decompression_bombs_are_refused_quickly(size):
    with pytest.raises(ImageError, match="pixels"):
        load_image(_png_bomb(*size))


def test_many_frame_gif_uses_the_first_frame(photo_of):
    base = Image.open(photo_of("Boletus edulis", "wiki")).convert("RGB").resize((64, 64))
    frames = [base] + [Image.new("RGB", (64, 64), (i, 0, 0)) for i in range(0, 250, 10)]
    buf = io.BytesIO()
    frames[0].save(buf, "GIF", save_all=True, append_images=frames[1:], loop=0)
    img = load_image(buf.getvalue())
    assert img.size == (64, 64) and img.mode == "RGB"
