"""train.py and mushroom_id.training: config, loss, schedule, data sources, the loop, resume,
early stopping, partial fine-tuning with the cached trunk, and two-process validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from test_train_fixtures import PER_SPLIT, SPECIES, tiny_config, write_hub_dataset, write_image_folder

from mushroom_id.training.config import load_config, parse_overrides
from mushroom_id.training.data import class_weights, load_splits
from mushroom_id.training.loop import TrainState, lr_at, smooth_one_hot, soft_cross_entropy, train

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def hub_data(tmp_path_factory, photos_dir):
    return write_hub_dataset(tmp_path_factory.mktemp("hub_dataset"), photos_dir)


# ------------------------------------------------------------------ config


def test_overrides_parse_and_apply():
    over = parse_overrides(["--lr", "3e-4", "--epochs=3", "--channels-last", "--trainable", "[blocks.6, classifier]",
                            "--ema-decay", "null", "--name", "1e3"])
    config = load_config(REPO / "configs" / "lite0_embedded.yaml", over)
    assert config.lr == pytest.approx(3e-4) and config.epochs == 3 and config.channels_last is True
    assert config.trainable == ["blocks.6", "classifier"] and config.ema_decay is None
    assert config.name == "1e3"  # names stay strings
    assert config.model == "tf_efficientnet_lite0"  # from the YAML
    with pytest.raises(ValueError, match="unknown config keys"):
        load_config(None, {"learning_rate": 1})
    with pytest.raises(ValueError, match="optimizer"):
        load_config(None, {"optimizer": "adam"})


def test_every_config_names_a_timm_model_with_weights():
    import timm

    configs = sorted((REPO / "configs").glob("*.yaml"))
    names = {p.stem for p in configs}
    assert {"legacy_xception", "inception_resnet_v2", "tf_efficientnetv2_s", "convnext_tiny", "lite0"} <= names
    pretrained = set(timm.list_pretrained())
    for path in configs:
        config = load_config(path)
        arch, _, tag = config.model.partition(".")
        assert arch in timm.list_models(), path
        if config.pretrained == "hub":
            assert (config.model in pretrained) if tag else timm.list_pretrained(arch), f"{path}: no weights"
    assert load_config(REPO / "configs" / "legacy_xception.yaml").img_size >= 299


# ------------------------------------------------------------------ pure parts


def test_soft_cross_entropy_equals_weighted_cross_entropy_for_hard_labels():
    torch.manual_seed(0)
    logits, y = torch.randn(16, 5), torch.randint(0, 5, (16,))
    w = torch.tensor([1.0, 2.0, 0.5, 3.0, 1.0])
    hard = F.one_hot(y, 5).float()
    assert torch.allclose(soft_cross_entropy(logits, hard, w), F.cross_entropy(logits, y, weight=w), atol=1e-6)
    assert torch.allclose(soft_cross_entropy(logits, hard), F.cross_entropy(logits, y), atol=1e-6)
    smoothed = smooth_one_hot(y, 5, 0.1)
    assert torch.allclose(smoothed.sum(1), torch.ones(16))
    assert torch.allclose(soft_cross_entropy(logits, smoothed), F.cross_entropy(logits, y, label_smoothing=0.1),
                          atol=1e-6)


def test_lr_schedule_warms_up_then_decays_to_min():
    values = [lr_at(s, 100, 10, 1.0, 0.01) for s in range(101)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert values[10] == pytest.approx(1.0) and values[100] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))


def test_class_weights_balance_and_extra_weight_for_toxic_species():
    labels = ["Amanita virosa", "Boletus edulis", "Cantharellus cibarius", "Not a species"]
    targets = np.array([0, 1, 1, 1, 2, 2, 2])  # class 3 has no training photo
    plain = class_weights(targets, labels)
    assert plain.tolist() == [1.0, 1.0, 1.0, 0.0]
    balanced = class_weights(targets, labels, balance=1.0)
    assert balanced[0] == pytest.approx(3 * balanced[1]) and balanced[1] == pytest.approx(balanced[2])
    toxic = class_weights(targets, labels, toxic_weight=4.0)
    assert toxic[0] == pytest.approx(4 * toxic[1])  # A. virosa is deadly
    assert toxic[:3].mean() == pytest.approx(1.0)


# ------------------------------------------------------------------ data sources


def test_hub_layout_and_image_folders_give_the_same_samples(hub_data, tmp_path, photos_dir):
    hub = load_splits(str(hub_data))
    assert hub.labels == sorted(SPECIES)
    assert {s: len(ds) for s, ds in hub.splits.items()} == {s: n * len(SPECIES) for s, n in PER_SPLIT.items()}
    folder = load_splits(str(write_image_folder(tmp_path / "imgs", photos_dir)))
    assert folder.labels == hub.labels
    for split in PER_SPLIT:
        assert sorted(hub[split].targets) == sorted(folder[split].targets)
    img = hub["validation"].image(0)
    assert img.mode == "RGB" and min(img.size) >= 16
    # evaluation in a model's label space: unknown species are dropped and counted
    narrowed = load_splits(str(hub_data), labels=["Boletus edulis", "Amanita virosa"])
    assert len(narrowed["test"]) == 2 * PER_SPLIT["test"] and narrowed.dropped["test"] == 2 * PER_SPLIT["test"]
    assert set(narrowed["test"].targets) == {0, 1}


def test_unsplit_image_folder_is_split_here_with_groups(tmp_path, photos_dir):
    data = load_splits(str(write_image_folder(tmp_path / "flat", photos_dir, with_splits=False)))
    total = sum(len(ds) for ds in data.splits.values())
    assert total == sum(PER_SPLIT.values()) * len(SPECIES)
    assert len(data["train"]) > len(data["test"]) > 0
    keys = [set(ds.keys) for ds in data.splits.values()]
    assert not (keys[0] & keys[1] or keys[0] & keys[2] or keys[1] & keys[2])


# ------------------------------------------------------------------ the loop


@pytest.mark.slow
def test_train_end_to_end_writes_everything(hub_data, tmp_path):
    from mushroom_id.models import load_model

    out = tmp_path / "run"
    config = tiny_config(out, hub_data, epochs=3, freeze_epochs=1, sgd_switch_epoch=2, ema_decay=0.5,
                         grad_accum_steps=2, class_balance=1.0, toxic_weight=2.0, label_smoothing=0.1,
                         mixup=0.2, auto_augment="rand-m9-mstd0.5")
    result = train(config)
    history = json.loads((out / "metrics.json").read_text())
    assert [h["epoch"] for h in history] == [1, 2, 3]
    assert [h["optimizer"] for h in history] == ["adamw", "adamw", "sgd"]
    assert [h["frozen_backbone"] for h in history] == [True, False, False]
    n_val = PER_SPLIT["validation"] * len(SPECIES)
    assert all(h["val_images"] == n_val == h["val_unique_images"] for h in history)
    # 16 training images, batch 4 -> 4 batches, accumulating 2 -> 2 optimizer steps per epoch
    assert [h["step"] for h in history] == [2, 4, 6] and result["steps"] == 6
    assert (out / "metrics.csv").read_text().splitlines()[0].startswith("epoch,step,optimizer")
    assert yaml.safe_load((out / "config.yaml").read_text())["sgd_switch_epoch"] == 2
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["epoch_002", "epoch_003"]  # keep 2
    loaded = load_model(f"local-dir:{out / 'model'}")
    assert loaded.labels == sorted(SPECIES) and tuple(loaded.data_config["input_size"]) == (3, 48, 48)
    assert loaded.temperature == pytest.approx(result["temperature"]) and loaded.temperature > 0
    assert loaded.config["thresholds"]["conformal_coverage"] == 0.9
    test = json.loads((out / "eval" / "metrics.json").read_text())
    assert test["images"] == PER_SPLIT["test"] * len(SPECIES)
    for name in ("per_species.csv", "reliability.png", "confusion.png", "training_curves.png"):
        assert (out / "eval" / name).stat().st_size > 100, name


def _final_weights(out: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(out / "model" / "model.safetensors"))


@pytest.mark.slow
def test_resume_continues_exactly(hub_data, tmp_path):
    straight = tiny_config(tmp_path / "a", hub_data, epochs=2, hflip=0.5, scale=[0.5, 1.0])
    full = train(straight)
    interrupted = tiny_config(tmp_path / "b", hub_data, epochs=2, hflip=0.5, scale=[0.5, 1.0])
    first = train(interrupted, stop_after=1)
    assert first["epochs_done"] == 1 and not first["finished"] and not (tmp_path / "b" / "model").exists()
    resumed = train(tiny_config(tmp_path / "b", hub_data, epochs=2, hflip=0.5, scale=[0.5, 1.0], resume="auto"))
    assert resumed["steps"] == full["steps"] == 8
    assert [h["step"] for h in resumed["history"]] == [4, 8]
    a, b = _final_weights(tmp_path / "a"), _final_weights(tmp_path / "b")
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-5, atol=1e-6, msg=k)
    assert resumed["history"][-1]["val_loss"] == pytest.approx(full["history"][-1]["val_loss"], rel=1e-5)


@pytest.mark.slow
def test_early_stopping_when_validation_stops_improving(hub_data, tmp_path):
    # lr 0: nothing changes, so the validation loss never improves after the first epoch
    config = tiny_config(tmp_path / "run", hub_data, epochs=6, lr=0.0, min_lr=0.0, monitor="val_loss",
                         early_stopping_patience=2, test_split=None)
    result = train(config)
    assert result["epochs_done"] == 3 and result["best_epoch"] == 1 and result["finished"]


@pytest.mark.slow
def test_partial_fine_tune_with_cached_trunk_stores_only_trained_tensors(hub_data, tmp_path):
    from safetensors.torch import load_file

    from mushroom_id.models import LITE0_PIP, load_model

    out = tmp_path / "lite0"
    config = tiny_config(out, hub_data, model="tf_efficientnet_lite0", pretrained="pip", img_size=64, epochs=1,
                         trainable=["blocks.6", "conv_head", "bn2", "classifier"], cache_frozen=True, cache_views=2,
                         save_trainable_only=True, save_half=True, test_split=None)
    train(config)
    stored = load_file(str(out / "model" / "model.safetensors"))
    assert stored and all(k.startswith(("blocks.6.", "conv_head.", "bn2.", "classifier.")) for k in stored)
    assert all(t.dtype == torch.float16 for t in stored.values() if t.is_floating_point())
    loaded = load_model(f"local-dir:{out / 'model'}")
    assert loaded.config["base_weights"] == LITE0_PIP and loaded.config["frozen_backbone"] is False
    best = load_model(f"local-dir:{out / 'best'}")  # full fp32 weights of the same model
    frozen = [k for k in best.model.state_dict() if k.startswith("blocks.2.")]
    for k in frozen:  # frozen tensors, BatchNorm statistics included, are the pip weights
        torch.testing.assert_close(loaded.model.state_dict()[k], best.model.state_dict()[k])
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), best.model(x), rtol=2e-2, atol=2e-2)  # fp16 storage


def _two_process_validation(out_dir: str, n: int):
    """Runs in each of two processes: distributed predict over n samples."""
    import timm
    from accelerate import Accelerator

    from mushroom_id.training.evaluate import predict

    torch.set_num_threads(1)  # forked children must not enter OpenMP regions the parent started
    accelerator = Accelerator(cpu=True)
    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=3).eval()
    x = torch.randn(n, 3, 32, 32)
    dataset = [(x[i], i % 3, i) for i in range(n)]
    loader = accelerator.prepare(torch.utils.data.DataLoader(dataset, batch_size=2, shuffle=False))
    logits, y, idx = predict(model, loader, accelerator)
    with torch.no_grad():
        reference = model(x).numpy()
    np.savez(Path(out_dir) / f"rank{accelerator.process_index}.npz", logits=logits, y=y, idx=idx,
             reference=reference, processes=accelerator.num_processes)


@pytest.mark.slow
def test_two_processes_count_every_validation_sample_exactly_once(tmp_path):
    import os
    import subprocess
    import sys

    n = 7  # odd and not a multiple of processes x batch: the last batch is padded with duplicates
    # debug_launcher forks; a fresh interpreter (no OpenMP threads started yet) keeps the fork safe
    code = ("from accelerate import debug_launcher; import test_train as t; "
            f"debug_launcher(t._two_process_validation, args=({str(tmp_path)!r}, {n}), num_processes=2)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(Path(__file__).parent)])}
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=300)
    results = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    for res in results:
        assert int(res["processes"]) == 2
        assert sorted(res["idx"].tolist()) == list(range(n))  # each sample once, no padding duplicates
        order = np.argsort(res["idx"])
        np.testing.assert_allclose(res["logits"][order], res["reference"], rtol=1e-4, atol=1e-5)
        assert res["y"][order].tolist() == [i % 3 for i in range(n)]


def test_train_state_round_trips():
    s = TrainState(epoch=2, step=10, best=0.5, best_epoch=1, history=[{"epoch": 1}])
    t = TrainState()
    t.load_state_dict(s.state_dict())
    assert t == s
