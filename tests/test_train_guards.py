"""What a researcher gets wrong, refused or handled before any training (issue 24, items 2-6): loader
settings, "trained on these photos" by content in every layout, mis-resumes, unreadable images,
one-class data, the fungus gate's own view, a launcher that lost processes, strict JSON."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_train_fixtures import (  # noqa: F401 (one_thread: an autouse fixture)
    PER_SPLIT,
    SPECIES,
    one_thread,
    photo_files,
    tiny_config,
    write_hub_dataset,
    write_image_folder,
)

from mushroom_id.engine.config import ConfigError
from mushroom_id.engine.data import load_splits
from mushroom_id.engine.loop import train

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ 2. loader settings


def test_loader_workers_from_the_cpu_count_pinned_and_persistent_on_cuda(tmp_path, hub_data):
    from mushroom_id.engine.loop import default_workers, loader_settings

    assert default_workers(1, cpus=16) == 12 and default_workers(8, cpus=16) == 1 and default_workers(1, cpus=2) == 1
    auto = tiny_config(tmp_path, hub_data, num_workers=None)
    cuda = loader_settings(auto, "cuda", processes_per_machine=1)
    assert cuda["num_workers"] == default_workers(1) >= 1 and cuda["pin_memory"] and cuda["persistent_workers"]
    cpu = loader_settings(auto, "cpu")
    assert not cpu["pin_memory"] and not cpu["persistent_workers"]
    assert loader_settings(tiny_config(tmp_path, hub_data, num_workers=0), "cuda") == {
        "num_workers": 0,
        "pin_memory": True,
        "persistent_workers": False,
    }
    for path in sorted((REPO / "configs").glob("*.yaml")):  # no config pins the old 2 workers
        from mushroom_id.engine.config import load_config

        assert load_config(path).num_workers is None, path


def test_persistent_workers_see_each_new_epoch():
    """A persistent worker keeps its copy of the dataset: the epoch that seeds augmentation must reach it."""
    from mushroom_id.engine.determinism import SeededDataset

    class Draw(torch.utils.data.Dataset):
        def __len__(self):
            return 2

        def __getitem__(self, i):
            return torch.rand(1)

    data = SeededDataset(Draw(), seed=0)
    loader = torch.utils.data.DataLoader(data, batch_size=2, num_workers=1, persistent_workers=True)
    draws = []
    for epoch in range(2):
        data.set_epoch(epoch)
        draws.append(next(iter(loader)))
    plain = SeededDataset(Draw(), seed=0)
    plain.set_epoch(1)
    assert not torch.equal(draws[0], draws[1])
    assert torch.equal(draws[1], torch.stack([plain[0], plain[1]]))  # what a fresh worker draws for epoch 1


# ------------------------------------------------------------------ 3. "trained on these photos" by content


def _model_listing(tmp_path: Path, hashes: list[str]):
    import timm

    from mushroom_id.core.models import load_model, save_model

    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=len(SPECIES))
    save_model(model, tmp_path / "m", sorted(SPECIES), training_images=hashes)
    return load_model(f"local-dir:{tmp_path / 'm'}")


def test_training_photos_are_recognised_by_content_in_every_layout(tmp_path, photos_dir, hub_data, capsys):
    """A model trained on one layout, evaluated on another holding its training photos as the test split."""
    from mushroom_id.engine.comparison import training_overlap

    train_photos = [p for p, _ in photo_files(photos_dir)["train"]]
    sha = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in train_photos)
    # Hub layout: keys are the sha256 of each embedded image, whatever its row
    from_hub = load_splits(str(hub_data))
    assert sorted(from_hub["train"].keys) == sha
    # a split-layout folder whose test split is the model's training photos (links to the same files)
    split_root = tmp_path / "split"
    for p, sp in photo_files(photos_dir)["train"]:
        for split in ("train", "test"):
            d = split_root / split / sp.replace(" ", "_")
            d.mkdir(parents=True, exist_ok=True)
            (d / f"copy_{p.name}").symlink_to(p)
    loaded = _model_listing(tmp_path, from_hub["train"].content_hashes())
    leaks = training_overlap(loaded, load_splits(str(split_root), labels=loaded.labels), "test")
    assert leaks == len(train_photos) == 16
    assert "16 of 16 test photos are in" in capsys.readouterr().err
    # and back: a model listing the split folder's training photos, evaluated on the Hub layout
    split_data = load_splits(str(split_root))
    assert sorted(split_data["train"].keys) == sha
    loaded = _model_listing(tmp_path, split_data["train"].content_hashes())
    assert training_overlap(loaded, load_splits(str(hub_data), labels=loaded.labels), "train") == 16
    assert training_overlap(loaded, load_splits(str(hub_data), labels=loaded.labels), "test") == 0


def test_training_photos_are_recognised_in_a_flat_folder(tmp_path, photos_dir, hub_data):
    """A flat folder goes through the data pipeline (manifest: raw and normalized hashes)."""
    from mushroom_id.engine.comparison import training_overlap

    flat = load_splits(str(write_image_folder(tmp_path / "flat", photos_dir, with_splits=False)))
    loaded = _model_listing(tmp_path, flat["train"].content_hashes())
    hub = load_splits(str(hub_data), labels=loaded.labels)  # the same photos, other splits
    seen = sum(training_overlap(loaded, hub, s) for s in ("train", "validation", "test"))
    assert seen == len(flat["train"]) > 0


# ------------------------------------------------------------------ 4. mis-resumes refused before training


@pytest.fixture(scope="module")
def one_epoch_run(hub_data, tmp_path_factory):
    """A tiny run stopped after its first epoch (checkpoint epoch_001 and best/ written)."""
    out = tmp_path_factory.mktemp("first") / "run"
    train(tiny_config(out, hub_data, epochs=3), stop_after=1)
    return out


def _refused(config, capsys=None) -> str:
    with pytest.raises(ConfigError) as caught:
        train(config)
    out = Path(config.output_dir)
    assert not (out / "checkpoints").exists() or [p.name for p in (out / "checkpoints").iterdir()] == ["epoch_001"]
    assert not (out / "model").exists()  # nothing trained, nothing saved
    return str(caught.value)


@pytest.mark.parametrize(
    ("change", "said"),
    [
        ({"model": "test_resnet"}, "backbone: 'test_efficientnet' (checkpoint) vs 'test_resnet' (this run)"),
        ({"batch_size": 2}, "batch size: 4 (checkpoint) vs 2 (this run)"),
        ({"img_size": 40}, "input size (px): 48 (checkpoint) vs 40 (this run)"),
    ],
    ids=["backbone", "batch-size", "img-size"],
)
def test_resume_with_other_settings_is_refused_saying_what_differs(one_epoch_run, hub_data, tmp_path, change, said):
    ckpt = one_epoch_run / "checkpoints" / "epoch_001"
    message = _refused(tiny_config(tmp_path / "new", hub_data, epochs=3, resume=str(ckpt), **change))
    assert said in message and "corrupt" not in message and "config.yaml" in message


def test_resume_with_other_classes_is_refused(one_epoch_run, tmp_path, photos_dir):
    three = write_hub_dataset(tmp_path / "three", photos_dir, species=SPECIES[:3])
    message = _refused(tiny_config(one_epoch_run, three, epochs=3, resume="auto"))
    assert f"classes: 4 species (checkpoint) vs 3 (this run); only in the checkpoint: {SPECIES[3]}" in message


def test_checkpoint_without_signature_of_another_backbone_is_not_called_corrupt(one_epoch_run, hub_data, tmp_path):
    import shutil

    ckpt = tmp_path / "old" / "checkpoints" / "epoch_001"
    shutil.copytree(one_epoch_run / "checkpoints" / "epoch_001", ckpt)
    (ckpt / "checkpoint.json").unlink()  # as written before checkpoints carried one
    message = _refused(tiny_config(tmp_path / "new", hub_data, model="test_resnet", resume=str(ckpt)))
    assert "different run" in message and "model tensors" in message and "corrupt" not in message


def test_resume_into_another_output_dir_is_refused_before_training(one_epoch_run, hub_data, tmp_path):
    ckpt = one_epoch_run / "checkpoints" / "epoch_001"
    message = _refused(tiny_config(tmp_path / "elsewhere", hub_data, epochs=3, resume=str(ckpt)))
    assert f"--output-dir {one_epoch_run}" in message and "best model so far (epoch 1)" in message


# ------------------------------------------------------------------ 5. unreadable images, one class


def test_unreadable_images_are_listed_with_full_paths_and_skipped(tmp_path, photos_dir, capsys):
    root = write_image_folder(tmp_path / "photos", photos_dir)
    real = next((root / "train" / "Boletus_edulis").iterdir())
    truncated = root / "train" / "Boletus_edulis" / real.name.replace(".jpg", "_cut.jpg")
    truncated.write_bytes(real.read_bytes()[:4000])  # a download cut short
    same_name = root / "validation" / "Amanita_virosa" / real.name  # a name another folder uses too
    same_name.write_bytes(b"<html>not a photo</html>")
    data = load_splits(str(root))
    err = capsys.readouterr().err
    assert str(truncated.absolute()) in err and str(same_name.absolute()) in err
    assert "truncated or corrupt" in err and "not an image file" in err
    assert len(data["train"]) == PER_SPLIT["train"] * len(SPECIES)  # the bad ones left out, the rest kept
    assert len(data["validation"]) == PER_SPLIT["validation"] * len(SPECIES)
    result = train(tiny_config(tmp_path / "run", root, epochs=1, test_split=None))  # and the run goes through
    assert result["finished"]


def test_one_species_is_refused(tmp_path, photos_dir):
    root = tmp_path / "one"
    for split, items in photo_files(photos_dir, species=["Boletus edulis"]).items():
        for p, sp in items:
            d = root / split / sp.replace(" ", "_")
            d.mkdir(parents=True, exist_ok=True)
            (d / p.name).symlink_to(p)
    with pytest.raises(ConfigError, match="only 'Boletus edulis'.*at least two species"):
        train(tiny_config(tmp_path / "run", root))
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------ 6. gate view, launcher, strict JSON


def test_partly_fine_tuned_lite0_at_another_size_feeds_the_gate_its_own_view(tmp_path, photos_dir):
    """Blocks 0-5 equal to the gate's: sharing them fed the gate 64 px maps (every photo "not a fungus")."""
    from mushroom_id.core.models import BASE_WEIGHTS, LITE0_PIP, load_model, save_model
    from mushroom_id.core.network import GateView, fungus_scores, served_network
    from mushroom_id.engine.trainable import create_timm_model

    model, _ = create_timm_model("tf_efficientnet_lite0", pretrained_cfg_overlay={"input_size": (3, 64, 64)})
    model.load_state_dict(BASE_WEIGHTS[LITE0_PIP][1]())
    model.reset_classifier(len(SPECIES))
    with torch.no_grad():
        model.blocks[6][0].conv_pw.weight.mul_(1.01)  # fine-tuned from block 6 on
    keep = [k for k in model.state_dict() if k.startswith(("blocks.6", "conv_head", "bn2", "classifier"))]
    save_model(model, tmp_path / "m", sorted(SPECIES), base_weights=LITE0_PIP, keep_keys=keep)
    loaded = load_model(f"local-dir:{tmp_path / 'm'}")
    assert tuple(loaded.data_config["input_size"]) == (3, 64, 64)
    network = served_network(loaded)
    from mushroom_id.core.images import load_image

    photos = [p for p, _ in photo_files(photos_dir)["train"]]  # 16 mushrooms
    x = torch.stack([loaded.transform()(load_image(p)) for p in photos])
    with torch.inference_mode():
        _, gate_logits = network(x)
    scores = fungus_scores(gate_logits)
    # measured: median 0.70, 14 of 16 above 0.5 through the view; at 64 px median 0.003, 2 of 16
    assert np.median(scores) > 0.5 and (scores > 0.5).sum() >= 12, scores
    assert isinstance(network.gate_model, GateView) and network.gate_model.size == 224 and not network.trunk_blocks


def test_a_launcher_that_started_fewer_processes_than_asked_is_named():
    from mushroom_id.engine.launch import lost_processes_warning, requested_processes

    script = ["/venv/bin/python", "/venv/bin/accelerate", "launch", "--cpu", "--num_processes", "2", "train.py"]
    message = lost_processes_warning(1, script)
    assert "asked for 2 processes but 1 started" in message and "torchrun --standalone --nproc_per_node N" in message
    assert lost_processes_warning(2, script) is None
    assert requested_processes(["python", "-m", "accelerate.commands.launch", "--num-processes=4", "x.py"]) == 4
    assert requested_processes(["bash", "-c", "python train.py"]) is None  # not accelerate launch


def test_a_launcher_config_file_counts(tmp_path):
    from mushroom_id.engine.launch import requested_processes

    (tmp_path / "cfg.yaml").write_text("distributed_type: MULTI_CPU\nnum_processes: 3\n")
    assert requested_processes(["accelerate", "launch", "--config_file", str(tmp_path / "cfg.yaml"), "t.py"]) == 3


@pytest.mark.slow
def test_accelerate_launch_cpu_with_two_processes_warns(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2", "--mixed_precision"]
    cmd += ["no", "--dynamo_backend", "no", str(REPO / "train.py"), "--data", str(tmp_path / "missing")]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert "asked for 2 processes but 1 started" in done.stderr
    assert done.stderr.count("data folder") == 1  # one process ran, then stopped on the missing data


def test_config_json_is_strict_json(tmp_path):
    import timm

    from mushroom_id.core.models import save_model

    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=2)
    save_model(model, tmp_path, ["a", "b"], extra={"calibration_fit": {"ece": float("nan"), "n": [1.0, float("inf")]}})

    def refuse(name):
        raise ValueError(f"{name} is not JSON")

    config = json.loads((tmp_path / "config.json").read_text(), parse_constant=refuse)
    assert config["calibration_fit"] == {"ece": None, "n": [1.0, None]}


def test_unreadable_rows_of_hub_layout_data_are_listed_and_skipped(tmp_path, photos_dir, capsys):
    """Hub-layout data without a sha256 column (not written by data_prep publish) is scanned too."""
    import datasets

    photos = [p for p, _ in photo_files(photos_dir)["train"]][:4]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=["a", "b"])})
    images = [{"bytes": p.read_bytes(), "path": p.name} for p in photos]
    images[2] = {"bytes": photos[2].read_bytes()[:3000], "path": "cut.jpg"}  # truncated
    (tmp_path / "data").mkdir()
    for split in ("train", "validation"):
        ds = datasets.Dataset.from_dict({"image": images, "label": [0, 1, 0, 1]}, features=features)
        ds.to_parquet(str(tmp_path / "data" / f"{split}-00000-of-00001.parquet"))
    data = load_splits(str(tmp_path))
    err = capsys.readouterr().err
    assert f"{tmp_path} train row 2: the file could not be decoded" in err and "validation row 2" in err
    assert len(data["train"]) == 3 and data["train"].targets.tolist() == [0, 1, 1]
    assert sorted(data["train"].keys) == sorted(hashlib.sha256(photos[i].read_bytes()).hexdigest() for i in (0, 1, 3))
