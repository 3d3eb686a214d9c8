"""Publish stage: the folder loads with datasets.load_dataset exactly like the Hub repo would."""

from __future__ import annotations

import hashlib
import io
import json
import re
import shutil

import pytest
import yaml
from PIL import Image

from data_prep.__main__ import main
from data_prep.common import MANIFEST_COLUMNS, Manifest
from data_prep.licences import is_open_licence, normalise_licence
from data_prep.publish import push_folder
from mushroom_id.core.catalog import default_catalog

SPECIES = ("Amanita virosa", "Cantharellus cibarius", "Coprinus comatus")
# Licence texts as sources write them (Commons, CC URLs, GBIF enums, notes that name no licence).
LICENCE_TEXTS = (
    "Creative Commons Attribution-Share Alike 4.0",
    "see origin",
    "http://creativecommons.org/publicdomain/zero/1.0/",
    "unverified: no licence; photos of unknown (web) origin",
    "CC BY-NC-ND 4.0",
    "CC_BY_4_0",
)


@pytest.fixture(scope="module")
def published(photos_dir, photo_manifest, tmp_path_factory):
    work = tmp_path_factory.mktemp("publish")
    rows = []
    picked = [r for sp in SPECIES for r in [x for x in photo_manifest if x["species"] == sp][:12]]
    picked += [next(x for x in photo_manifest if x["species"] == "Galerina marginata")]  # a 1-image species
    for i, r in enumerate(picked):
        row = dict.fromkeys(MANIFEST_COLUMNS, "")
        raw_licence = LICENCE_TEXTS[i % len(LICENCE_TEXTS)]
        row.update(
            image_id=hashlib.sha1(r["path"].encode()).hexdigest()[:16],
            species=r["species"],
            source_url=f"https://example.org/{r['path']}",
            license=normalise_licence(raw_licence),
            license_raw=raw_licence,
            creator=f"Photographer {i}" if i % 2 else "",
            origin=r["origin"],
            raw_path=str(photos_dir.parent / r["path"]),
            raw_sha256=r["sha256"],
            status="ok",
            crawler="url-list",
            query="url-list:test.csv",
        )
        rows.append(row)
    Manifest(work).write(rows)
    for stage in ("normalize", "split"):
        assert main([stage, "--work-dir", str(work), "--workers", "1"]) == 0
    assert main(["publish", "--work-dir", str(work), "--licences", "all"]) == 0
    return work, work / "dataset"


def test_load_dataset_as_a_researcher_would(published, tmp_path):
    import datasets

    work, folder = published
    ds = datasets.load_dataset(str(folder), cache_dir=str(tmp_path / "hf"))
    assert set(ds) == {"train", "validation", "test"}
    names = ds["train"].features["label"].names
    assert names == sorted(default_catalog().names)
    assert isinstance(ds["train"].features["image"], datasets.Image)
    kept = {r["sha256"]: r for r in Manifest(work).rows() if r["split"]}
    seen = {}
    for split in ds:
        for ex in ds[split]:
            assert names[ex["label"]] == ex["species"]
            assert ex["image"].mode == "RGB" and ex["image"].size == (ex["width"], ex["height"])
            assert ex["sha256"] not in seen, "an image in two splits"
            seen[ex["sha256"]] = split
            assert kept[ex["sha256"]]["split"] == split
            assert ex["edibility"] == default_catalog().edibility(ex["species"])
            assert ex["source_url"].startswith("https://example.org/") and ex["license"]
    assert len(seen) == len(kept) == 37
    # the embedded bytes are the normalized JPEGs
    ex = ds["test"].with_format(None).cast_column("image", datasets.Image(decode=False))[0]
    assert hashlib.sha256(ex["image"]["bytes"]).hexdigest() == ex["sha256"]
    assert "Galerina marginata" in set(ds["train"]["species"])  # 1 image: train only


def test_card_layout_and_chart(published):
    _, folder = published
    text = (folder / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    assert meta["task_categories"] == ["image-classification"] and meta["license"] == "other"
    files = {c["split"]: c["path"] for c in meta["configs"][0]["data_files"]}
    assert files == {s: f"data/{s}-*" for s in ("train", "validation", "test")}
    info = meta["dataset_info"]
    label = next(f for f in info["features"] if f["name"] == "label")
    assert len(label["dtype"]["class_label"]["names"]) == len(default_catalog())
    n = {s["name"]: s["num_examples"] for s in info["splits"]}
    assert sum(n.values()) == 37
    for split, count in n.items():
        assert f"| {split} | {count:,} |" in text
    assert sorted(p.name for p in (folder / "data").iterdir()) == [
        "test-00000-of-00001.parquet",
        "train-00000-of-00001.parquet",
        "validation-00000-of-00001.parquet",
    ]
    chart = Image.open(folder / "images_per_species.png")
    assert chart.format == "PNG" and chart.size[0] > 600
    assert "images_per_species.png" in text and "Licences" in text and "Limitations" in text


def test_publish_is_idempotent_and_atomic(published):
    work, folder = published
    before = {p.name: p.read_bytes() for p in (folder / "data").iterdir()}
    assert main(["publish", "--work-dir", str(work), "--licences", "all"]) == 0
    after = {p.name: p.read_bytes() for p in (folder / "data").iterdir()}
    assert after == before
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".dataset")]  # no staging left


def test_shards_split_by_size(published, tmp_path):
    import datasets

    work, _ = published
    out = tmp_path / "sharded"
    assert (
        main(["publish", "--work-dir", str(work), "--out", str(out), "--max-shard-mb", "0.3", "--licences", "all"]) == 0
    )
    train = sorted(p.name for p in (out / "data").glob("train-*"))
    assert len(train) > 1 and train[-1].endswith(f"-of-{len(train):05d}.parquet")
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    assert sum(len(ds[s]) for s in ds) == 37


@pytest.fixture
def hub(tmp_path, monkeypatch):
    """The HTTP Hub stand-in with one write token, reached through HF_ENDPOINT (no saved login)."""
    import huggingface_hub

    from tests.stand_ins.fake_hub import FakeHub

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    fake = FakeHub(tmp_path / "hub", tokens={WRITE_TOKEN: "write"})
    with fake as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        monkeypatch.setenv("HF_TOKEN", WRITE_TOKEN)
        yield fake


WRITE_TOKEN = "hf_" + "w" * 30


def test_push_uploads_the_exact_folder(published, tmp_path, hub):
    import datasets

    _, folder = published
    url, visibility = push_folder(folder, "org/mushrooms", token=WRITE_TOKEN)
    assert url.endswith("datasets/org/mushrooms")
    # the fixture was built with --licences all: the repo is created private and read back as private
    assert visibility == "private" and hub.repos["org/mushrooms"] == {"type": "dataset", "private": True}
    ds = datasets.load_dataset(str(tmp_path / "hub" / "org" / "mushrooms"), cache_dir=str(tmp_path / "hf"))
    assert sum(len(ds[s]) for s in ds) == 37


def _uploaded_licences(root) -> set[str]:
    import pyarrow.parquet as pq

    return {lic for f in root.glob("data/*.parquet") for lic in pq.read_table(f)["license"].to_pylist()}


def test_images_not_openly_licensed_never_go_into_a_public_repo(published, tmp_path, hub, capsys):
    """Issue 29.1: `publish --push-to-hub org/m` (open, public), then the same with `--licences all`, used to
    upload the unknown-licence build into the public org/m (create_repo answers 409 and leaves it public)."""
    work, folder = published
    out = tmp_path / "ds"
    cmd = ["publish", "--work-dir", str(work), "--out", str(out), "--push-to-hub", "org/m"]
    assert main(cmd) == 0
    assert hub.repos["org/m"]["private"] is False
    before = _uploaded_licences(tmp_path / "hub" / "org" / "m")
    assert before and all(is_open_licence(lic) for lic in before)
    for choice in ("all", "restricted"):
        with pytest.raises(SystemExit) as err:
            main([*cmd, "--licences", choice, "--private"])
        assert "public on the Hub" in str(err.value) and "Nothing was built" in str(err.value)
    # the same folder pushed by hand (the guard is in push_folder, read from the folder's own licence column)
    hub.requests.clear()
    with pytest.raises(SystemExit) as err:
        push_folder(folder, "org/m", token=WRITE_TOKEN, private=True)
    assert "licence is not open" in str(err.value) and "unknown" in str(err.value)
    assert "Nothing was uploaded" in str(err.value)
    assert not [r for r in hub.requests if "/commit/" in r[1] or "/preupload/" in r[1]]
    assert _uploaded_licences(tmp_path / "hub" / "org" / "m") == before
    assert "(public, as the Hub reports it)" in capsys.readouterr().out  # the first push said what it did
    # a new repo is created private and says so; made public on the Hub later, the next push is refused
    assert main([*cmd[:-1], "org/private", "--licences", "all"]) == 0
    assert hub.repos["org/private"]["private"] is True
    assert "(private, as the Hub reports it)" in capsys.readouterr().out
    hub.repos["org/private"]["private"] = False
    with pytest.raises(SystemExit) as err:
        main([*cmd[:-1], "org/private", "--licences", "all"])
    assert "public on the Hub" in str(err.value)
    # --private cannot make an existing public repo private: refused rather than printed as "(private)"
    with pytest.raises(SystemExit) as err:
        main([*cmd, "--private"])
    assert "already exists and is public" in str(err.value)


def test_publish_defaults_to_open_licences_and_says_what_it_left_out(published, tmp_path, capsys):
    import csv

    import datasets

    work, _ = published
    out = tmp_path / "open"
    assert main(["publish", "--work-dir", str(work), "--out", str(out)]) == 0  # no --licences: open only
    printed = capsys.readouterr().out
    rows = [r for r in Manifest(work).rows() if r["split"]]
    open_rows = [r for r in rows if is_open_licence(r["license"])]
    # the fixture cycles 6 licence texts: SA-4.0, CC0 and CC BY are open, "see origin", "unverified" and ND not
    assert 0 < len(open_rows) < len(rows)
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    got = [ex for s in ds for ex in ds[s]]
    assert len(got) == len(open_rows)
    assert {ex["license"] for ex in got} <= {"CC-BY-SA-4.0", "CC0-1.0", "CC-BY-4.0"}
    assert {ex["license_raw"] for ex in got} <= set(LICENCE_TEXTS)
    left = len(rows) - len(open_rows)
    unknown = sum(normalise_licence(r["license"]) == "unknown" for r in rows)
    assert "left out (licence not open)" in printed and str(left) in printed
    assert "licence unknown or unverified" in printed and "no-derivatives licence (CC-BY-NC-ND-4.0)" in printed
    card = (out / "README.md").read_text()
    assert f"Left out: {left:,} images: licence unknown or unverified: {unknown:,}" in card
    # attribution: creator (or that the source named none), licence and link, per image, in the csv and the card
    with open(out / "attribution.csv", newline="") as f:
        credits = list(csv.DictReader(f))
    assert len(credits) == len(open_rows)
    by_id = {r["image_id"]: r for r in open_rows}
    for c in credits:
        r = by_id[c["image_id"]]
        assert c["creator"] == r["creator"] and c["license"] == r["license"] and c["license_raw"] == r["license_raw"]
        assert c["link"] == (r["origin"] if r["origin"].startswith("http") else r["source_url"])
        who = c["creator"] or "not named by the source (see link)"
        assert f"| {c['image_id']} | {who} | {c['license']} | {c['link']} |" in card
    assert any(c["creator"] for c in credits) and any(not c["creator"] for c in credits)


def test_push_checks_the_token_first_against_an_http_hub(published, tmp_path, monkeypatch, capsys):
    import datasets
    import huggingface_hub

    from tests.stand_ins.fake_hub import FakeHub

    work, _ = published
    secret, reader = "hf_" + "w" * 30, "hf_" + "r" * 30
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))  # no saved login
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    out = tmp_path / "ds"
    hub = FakeHub(tmp_path / "hub", tokens={secret: "write", reader: "read"})
    with hub as url:
        monkeypatch.setenv("HF_ENDPOINT", url)
        cmd = ["publish", "--work-dir", str(work), "--out", str(out), "--push-to-hub", "org/m"]
        # no token: stops before building anything, naming both ways to give one
        with pytest.raises(SystemExit) as err:
            main(cmd)
        assert "HF_TOKEN" in str(err.value) and "--token" in str(err.value) and "Nothing was built" in str(err.value)
        assert not out.exists()
        # a token the Hub does not know: 401 from whoami, still nothing built
        with pytest.raises(SystemExit) as err:
            main([*cmd, "--token", "hf_" + "x" * 30])
        assert "rejected the token (HTTP 401)" in str(err.value) and not out.exists()
        # a read-only token cannot push
        with pytest.raises(SystemExit) as err:
            main([*cmd, "--token", reader])
        assert "can only read" in str(err.value) and reader not in str(err.value) and not out.exists()
        # a write token from the environment: built, then pushed over HTTP; open licences, so public
        monkeypatch.setenv("HF_TOKEN", secret)
        hub.requests.clear()
        assert main(cmd) == 0
        assert hub.requests[0][1].startswith("/api/whoami-v2") and hub.repos["org/m"] == {
            "type": "dataset",
            "private": False,
        }
        pushed = {p.relative_to(tmp_path / "hub" / "org" / "m") for p in (tmp_path / "hub" / "org" / "m").rglob("*")}
        assert pushed == {p.relative_to(out) for p in out.rglob("*")}
        # --licences all: every image, and the repo is private whatever --private says
        assert main([*cmd[:-1], "org/all", "--licences", "all"]) == 0
    printed = capsys.readouterr()
    assert secret not in printed.out + printed.err
    assert "created private" in printed.out and hub.repos["org/all"]["private"] is True
    ds = datasets.load_dataset(str(tmp_path / "hub" / "org" / "all"), cache_dir=str(tmp_path / "hf"))
    assert sum(len(ds[s]) for s in ds) == 37


def test_images_are_normalized_jpegs(published):
    import pyarrow.parquet as pq

    _, folder = published
    table = pq.read_table(next((folder / "data").glob("train-*.parquet")), columns=["image", "sha256"])
    for cell in table.column("image").to_pylist()[:5]:
        img = Image.open(io.BytesIO(cell["bytes"]))
        assert img.format == "JPEG" and max(img.size) <= 600


def test_card_says_what_this_build_did(published, tmp_path):
    """A local ingest is described as an ingest (not a crawl), the split as the strategy that ran (with its
    held-out sources and the same-source share of test photos), the evaluation's cap, and a citation."""
    from collections import defaultdict

    work, _ = published
    local = tmp_path / "work"
    shutil.copytree(work, local, ignore=shutil.ignore_patterns("dataset"))
    ingest = {"folder": "/somewhere/photos", "photos": 40, "kept": 37, "species": 4, "sources": {}, "dropped": {}}
    (local / "summaries" / "ingest.json").write_text(json.dumps(ingest))
    rows = [r for r in Manifest(local).rows() if r["split"]]
    # two sources per species, so that the cross-source split holds one out
    for i, r in enumerate(rows):
        r["source"] = "inat" if i % 3 else "commons"
    Manifest(local).write(rows)
    assert main(["split", "--work-dir", str(local)]) == 0
    assert main(["publish", "--work-dir", str(local), "--licences", "all"]) == 0
    card = (local / "dataset" / "README.md").read_text()
    steps = card.split("## How it was built")[1].split("###")[0]
    assert "**ingest**: the local folder `photos` (40 photos, 37 of catalog species" in steps
    assert "**crawl**" not in steps and "species ->" not in card
    split = json.loads((local / "summaries" / "split.json").read_text())
    assert split["strategy"] == "cross-source" and split["species_cross_source"] > 0
    assert f"cross-source: for the {split['species_cross_source']:,} species with photos from two or more" in steps
    rows = [r for r in Manifest(local).rows() if r["split"]]
    trained = defaultdict(set)
    for r in rows:
        if r["split"] == "train":
            trained[r["species"]].add(r["source"])
    test = [r for r in rows if r["split"] == "test"]
    same = sum(r["source"] in trained[r["species"]] for r in test)
    assert f"{same:,} of {len(test):,} test photos come from a source their species also trained on" in steps
    assert "at most 5 photos per species from validation and test" in steps
    citation = card.split("## Citation")[1].split("## Limitations")[0]
    assert "@misc{" in citation and "Original project: Mushroom Recognition Classifier using CNNs" in citation
    assert "`inat` (" in citation and "Wikimedia Commons contributors" in citation


def test_open_means_cc0_pd_by_and_by_sa_not_nc_or_nd(published, tmp_path, capsys):
    """Issue 29.4: CC BY-NC counted as open. Open = CC0, PD, CC BY, CC BY-SA (any version); NC and ND only
    with --licences restricted (never into a public repo), each image with its licence and credit."""
    restricted = ("CC BY-NC 4.0", "http://creativecommons.org/licenses/by-nc-sa/3.0/", "CC_BY_NC_4_0", "CC BY-ND 2.0")
    assert not any(is_open_licence(text) for text in restricted)
    from data_prep.licences import publishable

    for text in restricted:
        assert publishable(text, "restricted") and not publishable(text, "open")
    for text in ("CC BY-SA 2.5", "CC_BY_4_0", "http://creativecommons.org/publicdomain/zero/1.0/", "public domain"):
        assert is_open_licence(text) and publishable(text, "open")
    assert not publishable("see origin", "restricted") and publishable("see origin", "all")
    work, _ = published
    local = tmp_path / "work"
    shutil.copytree(work, local, ignore=shutil.ignore_patterns("dataset"))
    rows = Manifest(local).rows()
    nc = [r for r in rows if r["split"] and r["license"] == "CC-BY-SA-4.0"][:3]
    for r in nc:
        r["license"], r["license_raw"] = "CC-BY-NC-4.0", "CC BY-NC 4.0"
    Manifest(local).write(rows)
    assert main(["publish", "--work-dir", str(local), "--out", str(tmp_path / "open")]) == 0
    assert re.search(rf"non-commercial licence \(CC-BY-NC-4\.0\)\s+{len(nc)}\n", capsys.readouterr().out)
    import pyarrow.parquet as pq

    ids = {i for f in (tmp_path / "open" / "data").glob("*.parquet") for i in pq.read_table(f)["image_id"].to_pylist()}
    assert ids and not ids & {r["image_id"] for r in nc}
    assert main(["publish", "--work-dir", str(local), "--out", str(tmp_path / "nc"), "--licences", "restricted"]) == 0
    table = [pq.read_table(f) for f in (tmp_path / "nc" / "data").glob("*.parquet")]
    got = {
        row["image_id"]: (row["license"], row["creator"])
        for t in table
        for row in t.select(["image_id", "license", "creator"]).to_pylist()
    }
    for r in nc:
        assert got[r["image_id"]] == ("CC-BY-NC-4.0", r["creator"])
    assert "unknown" not in {lic for lic, _ in got.values()}
    card = (tmp_path / "nc" / "README.md").read_text()
    assert "--licences restricted" in card and "must stay private" in card


def test_a_build_without_training_photos_is_refused_and_says_why(published, tmp_path, capsys):
    """Issue 29.2: a build whose open-licence photos were all held out published train 0 / validation 1 /
    test 1 and would have pushed it. Now publish refuses, naming the species and what to do; a build that
    trains prints its split counts per species."""
    work, _ = published
    local = tmp_path / "work"
    shutil.copytree(work, local, ignore=shutil.ignore_patterns("dataset"))
    rows = Manifest(local).rows()
    for r in rows:  # only held-out photos carry an open licence (as with 6 species of ../shared)
        r["license"] = "CC0-1.0" if r["split"] in ("validation", "test") else "unknown"
    Manifest(local).write(rows)
    out = tmp_path / "ds"
    with pytest.raises(SystemExit) as err:
        main(["publish", "--work-dir", str(local), "--out", str(out)])
    message = str(err.value)
    assert "the train split is empty" in message and "second source" in message and "--licences all" in message
    held = {r["species"] for r in rows if r["split"] in ("validation", "test")}
    assert held and all(sp in message for sp in held)
    assert not out.exists()
    # one species loses its training photos only: refused, naming that species (and not the others)
    victim = sorted(held)[0]
    for r in rows:
        r["license"] = "unknown" if (r["species"] == victim and r["split"] == "train") else "CC0-1.0"
    Manifest(local).write(rows)
    with pytest.raises(SystemExit) as err:
        main(["publish", "--work-dir", str(local), "--out", str(out)])
    assert "1 species have validation/test photos but no training photo" in str(err.value)
    assert victim in str(err.value) and not out.exists()
    others = sorted({r["species"] for r in rows} - {victim})
    assert not any(sp in str(err.value) for sp in others)
    # a build that can train: the output ends with every species' split counts
    for r in rows:
        r["license"] = "CC0-1.0"
    Manifest(local).write(rows)
    capsys.readouterr()
    assert main(["publish", "--work-dir", str(local), "--out", str(out)]) == 0
    printed = capsys.readouterr().out.split("== published images per species")[1]
    for sp in {r["species"] for r in rows if r["split"]}:
        n = [sum(r["species"] == sp and r["split"] == s for r in rows) for s in ("train", "validation", "test")]
        assert re.search(rf"{sp}\s+{n[0]}\s+{n[1]}\s+{n[2]}\n", printed), sp
