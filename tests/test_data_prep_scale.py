"""Scale: the indexed PHash pair search finds exactly the all-pairs answer, and the per-image stages run
through datasets.map(num_proc=...) fill the same journals the stages read (same manifest either way)."""

from __future__ import annotations

import random
import shutil

import pytest

from data_prep.__main__ import main
from data_prep.common import Manifest
from data_prep.near_duplicates import hash_pairs


def _codes(n: int, seed: int = 0) -> list[str]:
    """Random 64-bit hashes with clusters of near copies (0-12 bits flipped), as a crawl's PHashes."""
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        base = rng.getrandbits(64)
        out.append(base)
        for _ in range(rng.randrange(3)):
            out.append(base ^ sum(1 << b for b in rng.sample(range(64), rng.randrange(0, 13))))
    return [f"{c:016x}" for c in dict.fromkeys(out)]


@pytest.mark.parametrize("threshold", [1, 3, 8, 10, 12])
def test_indexed_search_equals_all_pairs(threshold):
    codes = _codes(1500)
    brute = hash_pairs(codes, threshold, method="all-pairs")
    assert brute, "the set must contain close pairs"
    assert hash_pairs(codes, threshold, method="index") == brute
    mirrors = [f"{int(c, 16) ^ 0b1011:016x}" for c in codes]  # searching one set against another
    assert hash_pairs(mirrors, threshold, against=codes, method="index") == hash_pairs(
        mirrors, threshold, against=codes, method="all-pairs"
    )


def test_auto_uses_the_index_for_large_sets(monkeypatch):
    import data_prep.near_duplicates as nd

    calls = []
    monkeypatch.setattr(nd, "_indexed_pairs", lambda *a, **k: calls.append("index") or [])
    monkeypatch.setattr(nd, "INDEX_FROM", 100)
    nd.hash_pairs(_codes(200), 10)
    nd.hash_pairs(_codes(200), 20)  # a wide radius: all pairs (the index would probe too many buckets)
    assert calls == ["index"]


@pytest.mark.slow
def test_map_stages_fill_the_journals_the_stages_read(tmp_path, photos_dir):
    """ingest -> map phash / map normalize (datasets.map, 2 processes) -> dedup / normalize: same manifest
    as dedup / normalize alone, and the stages compute nothing themselves."""
    import json

    folder = tmp_path / "photos"
    for species in ("Amanita_muscaria", "Boletus_edulis"):
        (folder / species).mkdir(parents=True)
        for p in sorted((photos_dir / species).glob("*.jpg"))[:12]:
            shutil.copy(p, folder / species / p.name)
    plain, mapped = tmp_path / "plain", tmp_path / "mapped"
    for work in (plain, mapped):
        assert main(["ingest", "--from", str(folder), "--work-dir", str(work)]) == 0
    assert main(["map", "--task", "phash", "--work-dir", str(mapped), "--num-proc", "2", "--batch-size", "4"]) == 0
    summary = json.loads((mapped / "summaries" / "map-phash.json").read_text())
    assert summary["images_done_now"] == 24
    for work in (plain, mapped):
        assert main(["dedup", "--work-dir", str(work), "--workers", "1"]) == 0
    assert main(["map", "--task", "normalize", "--work-dir", str(mapped), "--num-proc", "2"]) == 0
    for work in (plain, mapped):
        assert main(["normalize", "--work-dir", str(work), "--workers", "1"]) == 0
    assert json.loads((mapped / "summaries" / "normalize.json").read_text())["reused_from_journal"] == 24
    columns = ("image_id", "phash", "dup_group", "status", "drop_reason", "path", "sha256")
    assert [tuple(r[c] for c in columns) for r in Manifest(mapped).rows()] == [
        tuple(r[c] for c in columns) for r in Manifest(plain).rows()
    ]


def test_a_rebuild_keeps_the_content_caches(tmp_path, photos_dir, monkeypatch):
    """prepare_folder rebuilds a folder when its version changes, but keeps what is keyed by photo content
    (PHashes, embeddings): the costly part of the shared-photos build is paid once."""
    import data_prep.pipeline as pipeline

    folder = tmp_path / "photos" / "Amanita_muscaria"
    folder.mkdir(parents=True)
    for p in sorted((photos_dir / "Amanita_muscaria").glob("*.jpg"))[:4]:
        shutil.copy(p, folder / p.name)
    work = tmp_path / "work"
    pipeline.prepare_folder(folder.parent, work, workers=1, quiet=True, crops=False)
    phashes = (work / "cache" / "phash.jsonl").read_bytes()
    embeddings = work / "cache" / "embeddings-imagenet-lite0.npz"
    embeddings.write_bytes(b"cached vectors")  # stands for the embeddings of a --cnn build
    (work / "images" / "marker").write_text("x")
    monkeypatch.setattr(pipeline, "PREPARE_VERSION", pipeline.PREPARE_VERSION + "-next")
    pipeline.prepare_folder(folder.parent, work, workers=1, quiet=True, crops=False)
    assert not (work / "images" / "marker").exists()  # rebuilt
    assert (work / "cache" / "phash.jsonl").read_bytes() == phashes
    assert embeddings.read_bytes() == b"cached vectors"
