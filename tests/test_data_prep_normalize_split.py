"""Normalize (real photos and hostile files) and split stages."""

from __future__ import annotations

import io
from collections import Counter, defaultdict

import numpy as np
import pytest
from PIL import Image

from data_prep.__main__ import main
from data_prep.common import MANIFEST_COLUMNS, Journal, Manifest
from data_prep.normalize import normalize_image, target_size
from data_prep.split import assign_splits


def _jpeg(img: Image.Image, fmt="JPEG", **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.fixture(scope="module")
def photo(photo_of):
    return Image.open(photo_of("Boletus edulis", "inatse")).convert("RGB")


def test_exif_orientation_applied_and_metadata_stripped(photo):
    w, h = photo.size
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise when displayed
    exif[0x010F] = "PhoneMaker"
    out, reason, size = normalize_image(_jpeg(photo, exif=exif.tobytes()))
    assert reason == ""
    img = Image.open(io.BytesIO(out))
    assert img.format == "JPEG" and img.mode == "RGB"
    assert img.size == size == (h, w)  # already <= 600 px: rotated, not resized
    assert not img.getexif()
    # the content really is rotated: compare with a rotation done by hand
    rotated = np.asarray(photo.transpose(Image.Transpose.ROTATE_270), dtype=float)
    assert np.abs(np.asarray(img, dtype=float) - rotated).mean() < 8


@pytest.mark.parametrize("mode, expected", [("longest", (600, 450)), ("shortest", (800, 600)), ("square", (600, 600))])
def test_resize_modes(photo, mode, expected):
    big = photo.resize((1600, 1200))
    out, reason, size = normalize_image(_jpeg(big), mode=mode)
    assert reason == "" and size == expected == Image.open(io.BytesIO(out)).size


def test_never_upscales():
    assert target_size(300, 200, 600, "longest") == (300, 200)
    assert target_size(300, 200, 600, "shortest") == (300, 200)


@pytest.mark.parametrize(
    "make, reason",
    [
        (lambda p: b"<html><body>cookie wall</body></html>", "not an image"),
        (lambda p: _jpeg(p)[: len(_jpeg(p)) // 3], "truncated or corrupt"),
        (lambda p: _jpeg(p.resize((40, 30))), "tiny (40x30, min side 64)"),
        (lambda p: _jpeg(p.convert("L")), "grayscale only"),
        (lambda p: _jpeg(p.convert("L").convert("RGB")), "grayscale only"),  # gray pixels stored as RGB
    ],
)
def test_bad_inputs_dropped_with_reason(photo, make, reason):
    out, why, _ = normalize_image(make(photo))
    assert out is None and why.startswith(reason)


def test_palette_and_alpha_become_rgb_jpeg(photo):
    for img in (photo.convert("P"), photo.convert("RGBA")):
        out, reason, _ = normalize_image(_jpeg(img, "PNG"))
        assert reason == "" and Image.open(io.BytesIO(out)).mode == "RGB"


def test_normalize_stage_resumes_from_its_journal(tmp_path, photos_dir, photo):
    work = tmp_path / "work"
    bad = work / "raw" / "bad"
    bad.mkdir(parents=True)
    (bad / "page.jpg").write_bytes(b"<html>nope</html>")
    (bad / "cut.jpg").write_bytes(_jpeg(photo)[:5000])
    good = sorted((photos_dir / "Amanita_virosa").glob("*.jpg"))[:6]
    rows = []
    for i, path in enumerate([*good, bad / "page.jpg", bad / "cut.jpg"]):
        r = dict.fromkeys(MANIFEST_COLUMNS, "")
        r.update(
            image_id=f"img{i:02d}", species="Amanita virosa", raw_path=str(path), raw_sha256=f"sha{i}", status="ok"
        )
        rows.append(r)
    Manifest(work).write(rows)
    assert main(["normalize", "--work-dir", str(work), "--workers", "2"]) == 0
    out = {r["image_id"]: r for r in Manifest(work).rows()}
    assert out["img06"]["drop_reason"] == "not an image" and out["img07"]["drop_reason"].startswith("truncated")
    for i in range(6):
        r = out[f"img{i:02d}"]
        assert r["status"] == "ok" and r["path"] == f"images/Amanita_virosa/img{i:02d}.jpg"
        img = Image.open(work / r["path"])
        assert (img.format, img.mode, img.size) == ("JPEG", "RGB", (int(r["width"]), int(r["height"])))
        assert max(img.size) <= 600
    # simulate a kill: lose the last two results and leave half a line behind
    journal = work / "cache" / "normalize.jsonl"
    lines = journal.read_text().splitlines(keepends=True)
    journal.write_text("".join(lines[:-2]) + lines[-2][:20])
    assert len(Journal(journal, key="key").load()) == len(lines) - 2
    first = (work / out["img00"]["path"]).stat().st_mtime_ns
    assert main(["normalize", "--work-dir", str(work), "--workers", "1"]) == 0
    assert {r["image_id"]: r for r in Manifest(work).rows()} == out
    assert (work / out["img00"]["path"]).stat().st_mtime_ns == first  # not redone
    assert len(Journal(journal, key="key").load()) == len(lines)


def _items(n_species=30, per_species=20, group=3):
    rows = []
    for s in range(n_species):
        for i in range(per_species):
            r = dict.fromkeys(MANIFEST_COLUMNS, "")
            r.update(
                image_id=f"s{s}_{i}", species=f"Species {s:02d}", dup_group=f"s{s}_g{i // group}", status="ok", path="x"
            )
            rows.append(r)
    return rows


def test_split_fractions_groups_and_determinism():
    rows = _items()
    counts = assign_splits(rows, seed=1)
    split = {r["image_id"]: r["split"] for r in rows}
    again = _items()
    assign_splits(list(reversed(again)), seed=1)  # input order does not matter
    assert {r["image_id"]: r["split"] for r in again} == split
    other = _items()
    assign_splits(other, seed=2)
    assert {r["image_id"]: r["split"] for r in other} != split
    sides = defaultdict(set)
    for r in rows:
        sides[r["dup_group"]].add(r["split"])
    assert all(len(s) == 1 for s in sides.values())
    share = Counter(split.values())
    assert abs(share["train"] / len(rows) - 0.70) < 0.06
    assert abs(share["validation"] / len(rows) - 0.15) < 0.05 and abs(share["test"] / len(rows) - 0.15) < 0.05
    assert counts["species_in_all_three"] == 30
    for s in range(30):  # stratified: every species is in every split
        assert {r["split"] for r in rows if r["species"] == f"Species {s:02d}"} == {"train", "validation", "test"}


def test_split_small_species_rule_and_exclusion():
    rows = _items(n_species=3, per_species=9, group=1)
    rows = [r for r in rows if not (r["species"] == "Species 00" and r["image_id"] != "s0_0")]  # 1 image
    rows = [r for r in rows if not (r["species"] == "Species 01" and r["image_id"] not in ("s1_0", "s1_1"))]  # 2
    counts = assign_splits(rows)
    by = {r["image_id"]: r["split"] for r in rows}
    assert by["s0_0"] == "train"
    two = sorted([by["s1_0"], by["s1_1"]], key=lambda s: s != "train")
    assert two[0] == "train" and two[1] in ("test", "validation")  # 2 images: train + one held out
    assert counts["species_train_only"] == 1
    assert counts["species_without_validation"] == 1 + (two[1] == "test")
    rows2 = [dict(r, split="") for r in rows]
    counts2 = assign_splits(rows2, min_per_species=3)
    assert counts2["species_excluded"] == 2
    dropped = [r for r in rows2 if r["status"] == "dropped"]
    assert {r["species"] for r in dropped} == {"Species 00", "Species 01"}
    assert all(r["drop_stage"] == "split" and "< --min-per-species 3" in r["drop_reason"] for r in dropped)
