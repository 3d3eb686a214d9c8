"""Publish stage: the folder loads with datasets.load_dataset exactly like the Hub repo would."""

from __future__ import annotations

import hashlib
import io
import shutil

import pytest
import yaml
from PIL import Image

from data_prep.__main__ import main
from data_prep.common import MANIFEST_COLUMNS, Manifest
from data_prep.publish import push_folder
from mushroom_id.core.catalog import default_catalog

SPECIES = ("Amanita virosa", "Cantharellus cibarius", "Coprinus comatus")


@pytest.fixture(scope="module")
def published(photos_dir, photo_manifest, tmp_path_factory):
    work = tmp_path_factory.mktemp("publish")
    rows = []
    picked = [r for sp in SPECIES for r in [x for x in photo_manifest if x["species"] == sp][:12]]
    picked += [next(x for x in photo_manifest if x["species"] == "Galerina marginata")]  # a 1-image species
    for r in picked:
        row = dict.fromkeys(MANIFEST_COLUMNS, "")
        row.update(
            image_id=hashlib.sha1(r["path"].encode()).hexdigest()[:16],
            species=r["species"],
            source_url=f"https://example.org/{r['path']}",
            license=r["license"],
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
    assert main(["publish", "--work-dir", str(work)]) == 0
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
    assert main(["publish", "--work-dir", str(work)]) == 0
    after = {p.name: p.read_bytes() for p in (folder / "data").iterdir()}
    assert after == before
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".dataset")]  # no staging left


def test_shards_split_by_size(published, tmp_path):
    import datasets

    work, _ = published
    out = tmp_path / "sharded"
    assert main(["publish", "--work-dir", str(work), "--out", str(out), "--max-shard-mb", "0.3"]) == 0
    train = sorted(p.name for p in (out / "data").glob("train-*"))
    assert len(train) > 1 and train[-1].endswith(f"-of-{len(train):05d}.parquet")
    ds = datasets.load_dataset(str(out), cache_dir=str(tmp_path / "hf"))
    assert sum(len(ds[s]) for s in ds) == 37


class FakeHubApi:
    """Stands in for huggingface_hub.HfApi: 'uploads' into a local folder."""

    instances: list = []

    def __init__(self, token=None, remote=None):
        self.token, self.remote, self.calls = token, remote, []
        FakeHubApi.instances.append(self)

    def create_repo(self, repo_id, repo_type, private=False, exist_ok=False):
        self.calls.append(("create_repo", repo_id, repo_type, private))
        return f"https://huggingface.co/datasets/{repo_id}"

    def upload_folder(self, repo_id, repo_type, folder_path, commit_message=""):
        self.calls.append(("upload_folder", repo_id, repo_type))
        shutil.copytree(folder_path, self.remote / repo_id, dirs_exist_ok=True)


def test_push_uploads_the_exact_folder(published, tmp_path):
    import datasets

    _, folder = published
    api = FakeHubApi(remote=tmp_path / "hub")
    url = push_folder(folder, "org/mushrooms", api=api)
    assert url.endswith("datasets/org/mushrooms")
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"] and api.calls[1][2] == "dataset"
    ds = datasets.load_dataset(str(tmp_path / "hub" / "org" / "mushrooms"), cache_dir=str(tmp_path / "hf"))
    assert sum(len(ds[s]) for s in ds) == 37


def test_cli_push_takes_token_from_env_and_never_prints_it(published, tmp_path, monkeypatch, capsys):
    import huggingface_hub

    work, _ = published
    secret = "hf_" + "x" * 30
    monkeypatch.setenv("HF_TOKEN", secret)
    FakeHubApi.instances.clear()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: FakeHubApi(token, tmp_path / "hub"))
    assert main(["publish", "--work-dir", str(work), "--out", str(tmp_path / "ds"), "--push-to-hub", "org/m"]) == 0
    assert FakeHubApi.instances[-1].token == secret
    assert (tmp_path / "hub" / "org" / "m" / "README.md").is_file()

    class Failing(FakeHubApi):
        def upload_folder(self, **kw):  # a server that echoes the credentials back in its error
            raise RuntimeError(f"401 Client Error: Unauthorized (Authorization: Bearer {self.token})")

    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: Failing(token, tmp_path / "hub"))
    with pytest.raises(SystemExit) as err:
        main(["publish", "--work-dir", str(work), "--out", str(tmp_path / "ds"), "--repo-id", "org/m"])
    assert "push to org/m failed" in str(err.value) and "401 Client Error" in str(err.value)
    assert secret not in str(err.value) and "Bearer <token>" in str(err.value)  # the token was in it: redacted
    out = capsys.readouterr()
    assert secret not in out.out + out.err


def test_images_are_normalized_jpegs(published):
    import pyarrow.parquet as pq

    _, folder = published
    table = pq.read_table(next((folder / "data").glob("train-*.parquet")), columns=["image", "sha256"])
    for cell in table.column("image").to_pylist()[:5]:
        img = Image.open(io.BytesIO(cell["bytes"]))
        assert img.format == "JPEG" and max(img.size) <= 600
