"""The weight average (EMA) helps a short run instead of freezing it at its initial weights, and train
metrics count every process's images (issue 24, items 1 and 6)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from test_train_fixtures import SPECIES, one_thread, tiny_config, write_hub_dataset  # noqa: F401 (autouse fixture)

from mushroom_id.engine import loop

REPO = Path(__file__).resolve().parent.parent
CHANCE = 1 / len(SPECIES)


@pytest.fixture(scope="module")
def hub_data(tmp_path_factory, photos_dir):
    return write_hub_dataset(tmp_path_factory.mktemp("hub_dataset"), photos_dir)


def _lite0_run(out: Path, data: Path, **overrides):
    """Lite0 from its offline ImageNet weights, the last block and the head trained over the cached trunk
    (the embedded model's recipe) at 96 px: 16 real training photos of 4 species, 4 steps an epoch."""
    values = dict(
        model="tf_efficientnet_lite0",
        pretrained="pip",
        img_size=96,
        trainable=["blocks.6", "conv_head", "bn2", "classifier"],
        cache_frozen=True,
        cache_views=2,
        lr=1e-3,
        warmup_epochs=1,
        label_smoothing=0.1,
        ema_decay=0.9998,  # what the GPU configs set
        test_split=None,
    )
    return tiny_config(out, data, **{**values, **overrides})


def test_short_run_with_the_configs_ema_learns(hub_data, tmp_path, monkeypatch, capsys):
    """0.9998 without warm-up kept the average ~at its initial weights (random head: chance) for the whole run,
    and that average was what got validated and saved. With warm-up the average itself learns."""
    monkeypatch.setattr(loop, "CACHE_DIR", tmp_path / "cache")
    result = loop.train(_lite0_run(tmp_path / "run", hub_data, epochs=5))
    last = result["history"][-1]
    assert last["val_top1"] >= 0.625 > 2 * CHANCE  # 5 of the 8 validation photos or more: well above chance
    assert last["val_top1_ema"] >= 0.625  # the averaged weights themselves
    assert 0.8 < last["ema_decay"] < 0.9  # 1 - (1 + 20)^-2/3 after 20 steps, not 0.9998
    best = json.loads((tmp_path / "run" / "best" / "config.json").read_text())
    assert best["weights"] == result["history"][result["best_epoch"] - 1]["weights"]
    assert "img/s" in capsys.readouterr().out  # images per second printed every epoch


def test_validation_keeps_the_raw_weights_when_the_average_lags(hub_data, tmp_path, monkeypatch):
    """The old fixed decay (ema_warmup: false): the average stays near its start, so every epoch is judged
    and saved by the raw weights, and metrics.csv says so."""
    monkeypatch.setattr(loop, "CACHE_DIR", tmp_path / "cache")
    result = loop.train(_lite0_run(tmp_path / "run", hub_data, epochs=2, ema_warmup=False))
    for row in result["history"]:
        assert row["weights"] == "raw" and row["ema_decay"] == pytest.approx(0.9998)
        assert row["val_top1"] == row["val_top1_raw"] > row["val_top1_ema"]
    assert json.loads((tmp_path / "run" / "best" / "config.json").read_text())["weights"] == "raw"
    assert "weights" in (tmp_path / "run" / "metrics.csv").read_text().splitlines()[0].split(",")


def _two_process_run(out_dir: str, data: str):
    """Runs in each of two processes: one epoch of the tiny model; each rank writes its history."""
    import torch

    from mushroom_id.engine.loop import train

    torch.set_num_threads(1)  # forked children must not enter OpenMP regions the parent started
    rank = torch.distributed.get_rank()  # debug_launcher made the process group but set no RANK
    os.environ["RANK"] = str(rank)
    result = train(tiny_config(Path(out_dir) / "run", Path(data), epochs=1, test_split=None, mixed_precision="no"))
    (Path(out_dir) / f"rank{rank}.json").write_text(json.dumps(result["history"]))


@pytest.mark.slow
def test_train_metrics_count_every_process(hub_data, tmp_path):
    """16 training photos over 2 processes (2 batches of 4 each): the epoch's loss and top-1 are those of all
    16, the same on both processes (before: each process logged its own 8; rank 0's went to metrics.csv)."""
    code = (
        "from accelerate import debug_launcher; import test_train_ema as t; "
        f"debug_launcher(t._two_process_run, args=({str(tmp_path)!r}, {str(hub_data)!r}), num_processes=2)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(Path(__file__).parent)])}
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=600)
    (a,), (b,) = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    assert a["processes"] == b["processes"] == 2
    assert a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-12)  # before: each process its own half
    assert a["train_images"] == b["train_images"] == 16
    assert a["train_top1"] == b["train_top1"] and (a["train_top1"] * 16) == pytest.approx(round(a["train_top1"] * 16))
    (row,) = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert row["train_loss"] == pytest.approx(a["train_loss"])
