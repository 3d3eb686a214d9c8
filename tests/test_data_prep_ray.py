"""`--engine ray` (issue 29.3): the per-image stages (PHash, embeddings, normalize) and the near-duplicate search
as Ray Data pipelines on Parquet write the same dataset as the default engine, on real photos from ../shared.

One end-to-end run per engine on 26 photos of 4 species, among them the known near duplicates of the shared
set (Boletus edulis webthumb val 227 ~ train 101 at PHash 4; train 151 a small copy of 129; a fly agaric filed
as Amanita hongoi), so the pair search decides something. A local Ray with 2 CPUs, shut down at the end."""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import pytest

from data_prep.__main__ import main
from data_prep.common import Manifest

REPO = Path(__file__).resolve().parents[1]
KNOWN = (
    "Boletus_edulis/webthumb_val_boletus_edulis_227.jpg",
    "Boletus_edulis/webthumb_train_boletus_edulis_101.jpg",
    "Boletus_edulis/webthumb_train_boletus_edulis_151.jpg",
    "Boletus_edulis/webthumb_train_boletus_edulis_129.jpg",
    "Amanita_muscaria/wiki_1.jpg",
    "Amanita_hongoi/web_1.jpg",
)
PER_SPECIES = {"Boletus edulis": 8, "Amanita muscaria": 10, "Amanita hongoi": 4, "Cantharellus cibarius": 8}


def _ray():
    try:
        import ray
    except ImportError:
        if os.environ.get("CI"):
            pytest.fail("ray is not installed (requirements-test.txt pins it): CI=true, failing instead of skipping")
        pytest.skip("ray not installed (pip install -r requirements-ray.txt)")
    return ray


@pytest.fixture(scope="module")
def local_ray():
    ray = _ray()
    env = {"PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p)}
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, runtime_env={"env_vars": env})
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def folder(tmp_path_factory, photos_dir, photo_manifest):
    """A folder manifest naming real photos in place (absolute paths): 4 species, several sources each."""
    picked = [r for r in photo_manifest if any(r["path"].endswith(k) for k in KNOWN)]
    for species, n in PER_SPECIES.items():
        picked += [r for r in photo_manifest if r["species"] == species and r not in picked][: n - 2]
    folder = tmp_path_factory.mktemp("ray-photos")
    with open(folder / "manifest.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["species", "path", "source", "origin", "license"])
        for r in picked:
            w.writerow([r["species"], str(photos_dir.parent / r["path"]), r["source"], r["origin"], r["license"]])
    return folder


def test_all_engine_ray_writes_the_same_dataset_as_the_default_engine(folder, tmp_path, local_ray):
    works = {}
    for engine in ("local", "ray"):
        works[engine] = work = tmp_path / engine
        args = ["all", "--from", str(folder), "--work-dir", str(work), "--workers", "2", "--cnn"]
        assert main([*args, "--licences", "all", "--engine", engine]) == 0
    local, ray = works["local"], works["ray"]
    # Ray did the work: each pipeline read and wrote Parquet in the work folder
    for task in ("phash", "pairs", "pairs-mirror", "embed", "normalize"):
        assert (ray / "ray" / task / "input.parquet").is_file(), task
    for task in ("phash", "pairs", "embed", "normalize"):  # (no mirrored copy here: pairs-mirror writes none)
        assert list((ray / "ray" / task / "output").glob("*.parquet")), task
    assert not (local / "ray").exists()
    assert json.loads((ray / "summaries" / "dedup.json").read_text())["engine"] == "ray"
    # the same decisions: byte-identical manifests, the near duplicates found and dropped the same way
    # (manifest.parquet between the stages, and its CSV copy for people once split)
    for name in ("manifest.parquet", "manifest.csv"):
        assert (ray / name).read_bytes() == (local / name).read_bytes(), name
    reasons = [r["drop_reason"] for r in Manifest(ray).rows()]
    assert any(r.startswith("near duplicate of") for r in reasons)
    assert any(r.startswith("label conflict") for r in reasons)
    # the same dataset, file by file: parquet shards (same splits, same image bytes and hashes), card, credits
    files = sorted(p.relative_to(local / "dataset") for p in (local / "dataset").rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(ray / "dataset") for p in (ray / "dataset").rglob("*") if p.is_file())
    assert any(f.suffix == ".parquet" for f in files)
    for f in files:
        if f.suffix != ".png":  # the chart: same data, but matplotlib's PNG is not promised byte-stable
            assert (ray / "dataset" / f).read_bytes() == (local / "dataset" / f).read_bytes(), f
    import numpy as np

    with (
        np.load(local / "cache" / "embeddings-imagenet-lite0.npz") as a,
        np.load(ray / "cache" / "embeddings-imagenet-lite0.npz") as b,
    ):
        ours = dict(zip(a["sha256"].tolist(), a["vectors"], strict=True))
        theirs = dict(zip(b["sha256"].tolist(), b["vectors"], strict=True))
    assert ours.keys() == theirs.keys() and ours
    assert max(float(np.abs(ours[k] - theirs[k]).max()) for k in ours) < 1e-4
