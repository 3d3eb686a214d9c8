"""The whole chain on real photos from ../shared, crawled through a local server (python -m data_prep all)."""

from __future__ import annotations

import io
import json

import pytest
from PIL import Image

from data_prep.__main__ import main
from data_prep.common import Manifest, read_csv, write_csv
from data_prep.near_duplicates import hamming
from mushroom_id.core.catalog import default_catalog
from tests.stand_ins.fake_web import FakeWeb, chain_argv, write_url_list

SPECIES = {
    "Boletus edulis",
    "Boletus erythropus",
    "Amanita muscaria",
    "Amanita hongoi",
    "Imleria badia",
    "Coprinus comatus",
    "Galerina marginata",
    "Psora decipiens",
}  # the last is a lichen: not in the catalog
PINNED = (
    "Boletus_edulis/webthumb_train_boletus_edulis_181.jpg",
    "Boletus_erythropus/webthumb_train_boletus_erythropus_61.jpg",
    "Amanita_muscaria/wiki_1.jpg",
    "Amanita_hongoi/web_1.jpg",
    "Boletus_edulis/webthumb_val_boletus_edulis_227.jpg",
    "Boletus_edulis/webthumb_train_boletus_edulis_101.jpg",
)


def _phash_of_bytes(hasher, data: bytes) -> str:
    import numpy as np

    return hasher.encode_image(image_array=np.asarray(Image.open(io.BytesIO(data)).convert("RGB")))


@pytest.mark.slow
def test_all_stages_on_real_photos(tmp_path, photos_dir):
    import datasets
    from imagededup.methods import PHash

    work = tmp_path / "work"
    with FakeWeb(photos_dir) as web:
        url_list = tmp_path / "urls.csv"
        write_url_list(web, url_list, species=SPECIES)
        rows = list(read_csv(url_list))
        count: dict[str, int] = {}
        keep = []
        for r in rows:  # the web-thumbnail sets are big: their first 70 each, plus the pinned pairs
            count[r["species"]] = count.get(r["species"], 0) + 1
            if count[r["species"]] <= 70 or any(r["url"].endswith(p) for p in PINNED):
                keep.append(r)
        keep.append({"species": "Boletus edulis", "url": web.url("missing/porcino.jpg"), "license": "", "origin": ""})
        keep.append({"species": "Boletus edulis", "url": web.url("html/porcino.jpg"), "license": "", "origin": ""})
        write_csv(url_list, keep, ("species", "url", "license", "origin"))
        argv = chain_argv(work, url_list, "--timeout", "30", "--retries", "0", "--workers", "2")
        assert main(argv) == 0
        first = {p.name: p.read_bytes() for p in (work / "dataset" / "data").iterdir()}
        assert main(argv) == 0  # rerun: everything is reused, nothing changes
        n_requests = len(web.requests)
    summaries = {p.stem: json.loads(p.read_text()) for p in (work / "summaries").glob("*.json")}
    assert summaries["crawl"]["species_resumed_as_done"] == summaries["crawl"]["species"]
    assert summaries["normalize"]["processed_now"] == 0
    assert {p.name: p.read_bytes() for p in (work / "dataset" / "data").iterdir()} == first
    # every URL fetched exactly once over both runs (the lichen's never: not a catalog species)
    assert n_requests == len(keep) - sum("Psora" in r["url"] for r in keep)

    manifest = {r["source_url"]: r for r in Manifest(work).rows()}
    assert len(manifest) == len(keep)
    lichen = [r for r in manifest.values() if r["species"] == "Psora decipiens"]
    assert lichen and all(r["drop_reason"] == "not a catalog species: Psora decipiens" for r in lichen)
    assert manifest[web.url("missing/porcino.jpg")]["drop_reason"] == "http 404"
    assert manifest[web.url("html/porcino.jpg")]["drop_reason"].startswith("not an image")
    # synonyms were filed under the accepted name
    assert "Boletus erythropus" not in {r["species"] for r in manifest.values()}
    for rel in PINNED[:4]:
        row = manifest[web.url(f"photos/{rel}")]
        assert row["status"] == "dropped" and row["drop_reason"].startswith("label conflict"), row
    leak = [manifest[web.url(f"photos/{rel}")] for rel in PINNED[4:]]
    assert sorted(r["status"] for r in leak) == ["dropped", "ok"]

    ds = datasets.load_dataset(str(work / "dataset"), cache_dir=str(tmp_path / "hf"))
    assert set(ds) == {"train", "validation", "test"}
    assert ds["train"].features["label"].names == sorted(default_catalog().names)
    kept = [r for r in manifest.values() if r["status"] == "ok"]
    assert sum(len(ds[s]) for s in ds) == len(kept) > 150
    hasher = PHash(verbose=False)
    codes: dict[str, list[str]] = {}
    sha_split: dict[str, str] = {}
    for split in ds:
        raw = ds[split].cast_column("image", datasets.Image(decode=False))
        for ex in raw:
            assert sha_split.setdefault(ex["sha256"], split) == split, "the same image in two splits"
            codes.setdefault(split, []).append(_phash_of_bytes(hasher, ex["image"]["bytes"]))
    # no near duplicate across splits, measured again on the published bytes
    for a, b in (("train", "validation"), ("train", "test"), ("validation", "test")):
        closest = min(hamming(x, y) for x in codes[a] for y in codes[b])
        assert closest > 8, (a, b, closest)
    card = (work / "dataset" / "README.md").read_text()
    assert f"| train | {len(ds['train']):,} |" in card and "label conflict" in card
