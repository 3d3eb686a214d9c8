"""Every file in configs/ runs: build, train 2 steps, checkpoint, resume, evaluate, export, load back.

Parametrised over the folder, so a new config is tested the day it is added. Each config keeps its
own settings (architecture, channels-last, EMA, mixup, accumulation, frozen trunk, ...) except what
makes it tiny and offline: a 4-species Hub-layout dataset of real photos, a 28-75 px input, batch 2,
2 optimizer steps, one intra-op thread, random weights instead of Hub weights (unreachable offline;
the pip ImageNet weights of the Lite configs are used as configured). Mixed precision stays as configured
(bf16 autocast runs on CPU too).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_train_fixtures import SPECIES, one_thread, write_hub_dataset  # noqa: F401 (autouse fixture)

from mushroom_id.engine.config import load_config

REPO = Path(__file__).resolve().parent.parent
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))
# smallest inputs the architectures take: Inception-ResNet-v2's valid convolutions need 75 px,
# EVA-02 needs a multiple of its 14 px patch
TINY_SIZE = {"inception_resnet_v2": 75, "eva02": 28}
# the largest models: ~15 s each on one busy core (the others take 3-9 s)
HEAVY = {"inception_resnet_v2", "convnext_small"}


def tiny_size(model: str) -> int:
    return next((size for prefix, size in TINY_SIZE.items() if model.startswith(prefix)), 32)


def tiny_overrides(path: Path, data: Path, out: Path) -> dict:
    config = load_config(path)
    overrides = {
        "data": str(data),
        "output_dir": str(out),
        "img_size": tiny_size(config.model),
        "epochs": 1,
        "max_steps_per_epoch": 2,
        "batch_size": 2,
        "eval_batch_size": 8,
        "grad_accum_steps": min(config.grad_accum_steps, 2),
        "num_workers": 0,
        "pretrained": "none" if config.pretrained == "hub" else config.pretrained,
        "checkpoint_every_steps": 1,
        "keep_checkpoints": 1,
        "export_onnx": True,
        "push_to_hub": None,
        "log_with": None,
    }
    return overrides


@pytest.fixture(scope="module")
def tiny_hub(tmp_path_factory, photos_dir):
    return write_hub_dataset(tmp_path_factory.mktemp("tiny_hub"), photos_dir)


def test_configs_folder_holds_the_original_backbones():
    names = {p.stem for p in CONFIGS}
    assert {"legacy_xception", "inception_resnet_v2", "tf_efficientnetv2_s", "convnext_tiny", "lite0"} <= names


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_config_names_a_timm_model_with_weights_and_runnable_data(path):
    import timm

    from mushroom_id.engine.config import PUBLISHED_DATASET

    config = load_config(path)
    arch, _, tag = config.model.partition(".")
    assert arch in timm.list_models(), path
    if config.pretrained == "hub":
        assert (config.model in timm.list_pretrained()) if tag else timm.list_pretrained(arch), f"{path}: no weights"
    # the default data is what `python -m data_prep publish` writes, or the shared photos
    assert config.data in (PUBLISHED_DATASET, "shared-photos"), path
    if config.img_size:
        assert config.img_size >= 224


@pytest.mark.parametrize(
    "path",
    [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.stem in HEAVY else []) for p in CONFIGS],
)
def test_config_trains_resumes_evaluates_and_exports(path, tiny_hub, tmp_path, monkeypatch):
    from mushroom_id.core.models import load_model
    from mushroom_id.engine import loop
    from mushroom_id.engine.metrics import softmax

    monkeypatch.setattr(loop, "CACHE_DIR", tmp_path / "cache")  # the frozen-trunk cache of lite0_embedded
    run = tmp_path / "run"
    overrides = tiny_overrides(path, tiny_hub, run)
    size = overrides["img_size"]

    # killed after the first optimizer step (its checkpoint written), then resumed at that step
    first = loop.train(load_config(path, overrides), stop_after_steps=1)
    assert first["steps"] == 1 and not first["finished"] and not (run / "model").exists()
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["epoch_001_step_00000001"]
    result = loop.train(load_config(path, {**overrides, "resume": "auto"}))
    assert result["finished"] and result["steps"] == 2
    assert [row[0] for row in result["steps_log"]] == [1, 2]
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["epoch_001"]
    (row,) = result["history"]
    assert row["val_images"] == row["val_unique_images"] == 2 * len(SPECIES)

    # saved (channels-last, bf16 and EMA runs included) and loaded back through load_model
    loaded = load_model(f"local-dir:{run / 'model'}")
    assert loaded.labels == sorted(SPECIES)
    assert tuple(loaded.data_config["input_size"]) == (3, size, size)
    assert loaded.temperature == pytest.approx(result["temperature"]) and loaded.temperature > 0
    for name in ("metrics.json", "per_species.csv", "reliability.png", "confusion.png", "training_curves.png"):
        assert (run / "eval" / name).stat().st_size > 100, name
    assert json.loads((run / "eval" / "metrics.json").read_text())["images"] == 2 * len(SPECIES)
    assert (run / "steps.csv").read_text().splitlines()[0] == "step,epoch,train_loss,lr"

    # the export: standalone Hub folder (fp32, calibration folded in), ONNX with parity, readable files
    export = run / "export"
    assert result["onnx"]["max_prob_diff"] < 1e-4 and (export / "model.onnx").stat().st_size > 1000
    exported = load_model(f"local-dir:{export}")
    assert exported.labels == loaded.labels and exported.temperature == 1.0
    assert exported.config["temperature_folded"] == pytest.approx(loaded.temperature)
    x = torch.randn(1, 3, size, size)
    with torch.no_grad():
        calibrated = softmax(loaded.model.float()(x).numpy(), loaded.temperature)
        plain = softmax(exported.model(x).numpy(), 1.0)
    assert abs(calibrated - plain).max() < 1e-4
    for f in ("config.json", "model.safetensors", "model.onnx"):
        assert (export / f).stat().st_mode & 0o044 == 0o044, f  # group/other can read
