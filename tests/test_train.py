"""train.py and mushroom_id.engine: config, loss, schedule, data sources, the loop, resume,
early stopping, partial fine-tuning with the cached trunk, and two-process validation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import yaml
from test_train_fixtures import (  # noqa: F401 (one_thread: an autouse fixture)
    PER_SPLIT,
    SPECIES,
    one_thread,
    tiny_config,
    write_image_folder,
)

from mushroom_id.engine.config import load_config, parse_overrides
from mushroom_id.engine.data import class_weights, load_splits
from mushroom_id.engine.loop import TrainState, lr_schedule, smooth_one_hot, soft_cross_entropy, train

REPO = Path(__file__).resolve().parent.parent


# ------------------------------------------------------------------ config


def test_overrides_parse_and_apply():
    over = parse_overrides(
        [
            "--lr",
            "3e-4",
            "--epochs=3",
            "--channels-last",
            "--trainable",
            "[blocks.6, classifier]",
            "--ema-decay",
            "null",
            "--name",
            "1e3",
        ]
    )
    config = load_config(REPO / "configs" / "lite0_embedded.yaml", over)
    assert config.lr == pytest.approx(3e-4) and config.epochs == 3 and config.channels_last is True
    assert config.trainable == ["blocks.6", "classifier"] and config.ema_decay is None
    assert config.name == "1e3"  # names stay strings
    assert config.model == "tf_efficientnet_lite0"  # from the YAML
    with pytest.raises(ValueError, match="unknown config keys"):
        load_config(None, {"learning_rate": 1})
    with pytest.raises(ValueError, match="optimizer"):
        load_config(None, {"optimizer": "adam"})
    assert load_config(None, parse_overrides(["--scale", "0.5,1", "--save_half"])).scale == [0.5, 1.0]


def _train_py():
    import importlib.util

    spec = importlib.util.spec_from_file_location("train_script", REPO / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_help_lists_every_config_key_with_its_default_and_help(capsys):
    from mushroom_id.engine.config import FIELDS

    with pytest.raises(SystemExit) as exit_:
        _train_py().main(["--help"])
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    for name, f in FIELDS.items():
        assert f"--{name.replace('_', '-')}" in text, name
        assert " ".join(f.metadata["help"].split()) in text, name
    assert "(default: 0.001)" in text and "(default: null)" in text and "(default: [0.25, 1.0])" in text


def test_missing_data_folder_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # no artifacts/data/dataset here
    code = _train_py().main(["--config", str(REPO / "configs" / "convnext_tiny.yaml")])
    err = capsys.readouterr().err
    assert code == 2 and "artifacts/data/dataset" in err and "python -m data_prep" in err and "--data" in err
    assert "Traceback" not in err and not (tmp_path / "runs").exists()


def test_unknown_option_and_bad_value_are_refused(capsys):
    with pytest.raises(SystemExit):
        _train_py().main(["--learning-rate", "1"])
    assert "unrecognized arguments: --learning-rate" in capsys.readouterr().err
    assert _train_py().main(["--mixed-precision", "fp8"]) == 2
    assert "mixed_precision must be one of no, fp16, bf16" in capsys.readouterr().err


@pytest.mark.parametrize(
    "arch,rejected",
    [
        ("legacy_xception", {"drop_path_rate", "img_size"}),  # the original's backbones
        ("inception_resnet_v2", {"drop_path_rate", "img_size"}),
        ("tf_efficientnet_lite0", {"img_size"}),
        ("convnext_tiny", {"img_size"}),
        ("eva02_small_patch14_336", set()),  # a ViT: takes img_size too
    ],
)
def test_backbone_kwargs_only_where_the_model_accepts_them(arch, rejected):
    from mushroom_id.engine.config import ConfigError
    from mushroom_id.engine.trainable import create_timm_model

    with torch.device("meta"):  # only the constructor's signature matters: no memory, no init time
        model, dropped = create_timm_model(arch, num_classes=3, drop_rate=0.1, drop_path_rate=0.0, img_size=28)
    assert set(dropped) == rejected and model.num_classes == 3
    if "drop_path_rate" in rejected:  # asking for it is a config error that names the key
        with pytest.raises(ConfigError, match="drop_path_rate: 0"), torch.device("meta"):
            create_timm_model(arch, num_classes=3, drop_path_rate=0.2)


def test_launch_whose_processes_disagree_about_their_rank_is_refused():
    from mushroom_id.engine.config import ConfigError
    from mushroom_id.engine.launch import check_launch

    check_launch(1, 0, {})  # plain python
    check_launch(2, 1, {"WORLD_SIZE": "2", "RANK": "1"})  # torchrun + ACCELERATE_USE_CPU, or GPUs
    # accelerate launch --multi_gpu --num_processes 2 without a visible GPU: each process runs alone
    with pytest.raises(ConfigError, match="torchrun --standalone --nproc_per_node N"):
        check_launch(1, 0, {"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"})


def test_multi_gpu_launch_without_a_gpu_is_refused_before_any_process_group():
    from mushroom_id.engine.launch import LauncherGone, LaunchRefused, check_gpu_launch

    launch = ["python", "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2", "train.py"]
    two = {"WORLD_SIZE": "2", "RANK": "1"}
    with pytest.raises(LaunchRefused, match="no GPU is visible.*torchrun --standalone"):
        check_gpu_launch(two, launch, gpu=False)
    check_gpu_launch(two, launch, gpu=True)  # GPUs: the launch the message recommends
    check_gpu_launch({**two, "ACCELERATE_USE_CPU": "true"}, launch, gpu=False)  # CPU processes, asked for
    check_gpu_launch(two, ["torchrun", "--standalone", "--nproc_per_node", "2", "train.py"], gpu=False)
    check_gpu_launch({}, launch, gpu=False)  # one process: nothing to refuse
    # a peer refused first and stopped the launcher: this process was adopted by another one; it ends quietly
    # instead of waiting for ever on a rendezvous with the peer that has gone
    with pytest.raises(LauncherGone):
        check_gpu_launch({**two, "TORCHELASTIC_RUN_ID": "none"}, ["/sbin/init"], gpu=False)
    check_gpu_launch({**two, "TORCHELASTIC_RUN_ID": "none"}, ["torchrun", "--nproc_per_node", "2"], gpu=False)


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
    assert torch.allclose(
        soft_cross_entropy(logits, smoothed), F.cross_entropy(logits, y, label_smoothing=0.1), atol=1e-6
    )


def test_lr_schedule_warms_up_then_decays_to_min():
    """timm's cosine schedule per step, checked by hand: 10 epochs of 10 steps, 1 warmup epoch, base 1.0."""
    import math

    from mushroom_id.engine.config import TrainConfig

    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([param], lr=1.0)
    config = TrainConfig(epochs=10, warmup_epochs=1, min_lr=0.01)
    schedule = lr_schedule(optimizer, 1.0, config, steps_per_epoch=10)

    def lr(step):
        schedule.step_update(num_updates=step)
        return optimizer.param_groups[0]["lr"]

    values = [lr(s) for s in range(101)]
    assert values[0] == pytest.approx(0.1)  # warmup starts at base / warmup steps
    assert values[5] == pytest.approx(0.1 + 5 * (1.0 - 0.1) / 10)  # linear
    cosine = [0.01 + 0.5 * (1.0 - 0.01) * (1 + math.cos(math.pi * s / 100)) for s in range(101)]
    assert values[10:] == pytest.approx(cosine[10:])  # then the cosine over the whole run
    assert values[100] == pytest.approx(0.01)
    assert all(a >= b for a, b in zip(values[10:], values[11:], strict=False))
    assert lr(37) == values[37]  # stateless in the step: a resumed run gets the same rate


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
    from mushroom_id.core.models import load_model

    out = tmp_path / "run"
    config = tiny_config(
        out,
        hub_data,
        epochs=3,
        freeze_epochs=1,
        sgd_switch_epoch=2,
        ema_decay=0.5,
        grad_accum_steps=2,
        class_balance=1.0,
        toxic_weight=2.0,
        label_smoothing=0.1,
        mixup=0.2,
        auto_augment="rand-m9-mstd0.5",
    )
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
    steps = (out / "steps.csv").read_text().splitlines()
    assert steps[0] == "step,epoch,train_loss,lr" and [int(r.split(",")[0]) for r in steps[1:]] == [1, 2, 3, 4, 5, 6]
    assert (out / "training_curves.png").stat().st_size > 100
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


# every random draw on: augmentation, dropout, mixup, EMA; 8 micro-batches of 2, accumulated in pairs
# -> 4 optimizer steps per epoch, a checkpoint after each
MID_EPOCH = dict(
    epochs=2,
    batch_size=2,
    grad_accum_steps=2,
    checkpoint_every_steps=1,
    keep_checkpoints=2,
    hflip=0.5,
    scale=[0.5, 1.0],
    auto_augment="rand-m9-mstd0.5",
    mixup=0.2,
    drop_rate=0.2,
    ema_decay=0.9,
    test_split=None,
)


@pytest.fixture(scope="module")
def uninterrupted(hub_data, tmp_path_factory):
    """The reference run, started with --resume auto and no checkpoint (a fresh start)."""
    out = tmp_path_factory.mktemp("uninterrupted") / "run"
    result = train(tiny_config(out, hub_data, resume="auto", **MID_EPOCH))
    return out, result


def _same_run(out: Path, reference: Path, rtol: float = 1e-5, atol: float = 1e-6):
    def losses(run):
        rows = (run / "steps.csv").read_text().splitlines()[1:]
        return [(int(r.split(",")[0]), float(r.split(",")[2])) for r in rows]

    assert [s for s, _ in losses(out)] == list(range(1, 9))
    np.testing.assert_allclose([v for _, v in losses(out)], [v for _, v in losses(reference)], rtol=rtol, atol=atol)
    a, b = _final_weights(out), _final_weights(reference)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=rtol, atol=atol, msg=k)


@pytest.mark.slow
def test_resume_inside_an_epoch_equals_the_uninterrupted_run(uninterrupted, hub_data, tmp_path, capsys):
    reference, full = uninterrupted
    assert full["steps"] == 8 and full["finished"]
    out = tmp_path / "run"
    first = train(tiny_config(out, hub_data, **MID_EPOCH), stop_after_steps=3)  # killed after step 3's checkpoint
    assert first["steps"] == 3 and not first["finished"] and first["epochs_done"] == 0
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == [
        "epoch_001_step_00000002",
        "epoch_001_step_00000003",
    ]
    # resumed with DataLoader workers this time: each sample's augmentation does not depend on who loads it
    resumed = train(tiny_config(out, hub_data, resume="auto", num_workers=2, **MID_EPOCH))
    assert "resumed from" in capsys.readouterr().out and resumed["steps"] == 8
    assert [h["step"] for h in resumed["history"]] == [4, 8]
    assert resumed["history"][0]["train_loss"] == pytest.approx(full["history"][0]["train_loss"], rel=1e-5)
    _same_run(out, reference)


@pytest.mark.slow
def test_sigkill_inside_an_epoch_then_resume_auto(uninterrupted, hub_data, tmp_path):
    """A real kill: train.py in a subprocess, SIGKILL once the step-2 checkpoint exists, then --resume auto."""
    import os
    import signal
    import subprocess
    import sys
    import time

    reference, _ = uninterrupted
    out = tmp_path / "run"
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config(out, hub_data, **MID_EPOCH).to_dict()))
    cmd = [sys.executable, str(REPO / "train.py"), "--config", str(config_file)]
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}  # as in this process: same floats
    child = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    checkpoint = out / "checkpoints" / "epoch_001_step_00000002"
    while not checkpoint.is_dir() and child.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    assert child.wait() == -signal.SIGKILL, "the run ended before it could be killed"
    assert not (out / "model").exists()
    resumed = subprocess.run(
        cmd + ["--resume", "auto"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    step = int(re.search(r"resumed from .*: epoch \d+, step (\d+)", resumed.stdout).group(1))
    assert 2 <= step < 8  # killed inside the run, after the step-2 checkpoint
    _same_run(out, reference)


@pytest.mark.slow
def test_torchrun_with_accelerate_use_cpu_runs_two_agreeing_processes(hub_data, tmp_path):
    """The documented CPU launch starts 2 processes that split the data; a launch that disagrees is refused."""
    import os
    import subprocess
    import sys

    out = tmp_path / "run"
    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config(out, hub_data, epochs=1).to_dict()))
    env = {**os.environ, "PYTHONPATH": str(REPO), "ACCELERATE_USE_CPU": "true", "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(REPO / "train.py"),
        "--config",
        str(config_file),
    ]
    done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (row,) = json.loads((out / "metrics.json").read_text())
    n_val = PER_SPLIT["validation"] * len(SPECIES)
    assert row["processes"] == 2 and row["val_images"] == row["val_unique_images"] == n_val
    assert row["step"] == 2  # 16 photos / (batch 4 x 2 processes)
    assert json.loads((out / "eval" / "metrics.json").read_text())["images"] == PER_SPLIT["test"] * len(SPECIES)


@pytest.mark.slow
def test_multi_gpu_launch_without_a_gpu_is_refused_with_our_message_and_no_traceback(hub_data, tmp_path):
    """`accelerate launch --multi_gpu --num_processes 2` where no GPU is visible: two processes that each
    believe they are alone. They refuse before writing anything; the user sees our message once, no
    traceback from Accelerate / torch.distributed, and a non-zero exit status."""
    import os
    import subprocess
    import sys

    from conftest import free_port

    config_file = tmp_path / "tiny.yaml"
    config_file.write_text(yaml.safe_dump(tiny_config(tmp_path / "run", hub_data, epochs=1).to_dict()))
    cmd = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(free_port()),
        str(REPO / "train.py"),
        "--config",
        str(config_file),
        "--output-dir",
        str(tmp_path / "refused"),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("ACCELERATE_USE_CPU", "CUDA_VISIBLE_DEVICES")} | {
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",  # no GPU, also on a machine that has one
    }
    refused = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert refused.returncode != 0, refused.stderr[-3000:]
    assert refused.stderr.count("train.py: error: the launcher started this process") == 1, refused.stderr[-3000:]
    assert "torchrun --standalone" in refused.stderr and "accelerate launch --multi_gpu" in refused.stderr
    assert "Traceback" not in refused.stderr and "ChildFailedError" not in refused.stderr, refused.stderr[-3000:]
    assert not (tmp_path / "refused").exists()


def test_end_launcher_ends_only_a_torch_elastic_parent(capsys):
    """Without a launcher: the message only. Under a stand-in launcher (a parent that waits for its child, as
    torch elastic does): the child prints once and the launcher dies by SIGKILL before it can see the child
    fail; a local rank other than 0 first waits for rank 0 to do it, then does it itself."""
    import os
    import signal
    import subprocess
    import sys

    from mushroom_id.engine.launch import end_launcher

    assert end_launcher("train.py: error: x", env={}) is False  # plain python: nothing to end
    assert capsys.readouterr().err == "train.py: error: x\n"

    child = (
        "import sys; from mushroom_id.engine.launch import end_launcher; "
        "sys.exit(3 if end_launcher('train.py: error: refused', wait_s=0.5) else 4)"
    )
    # the stand-in's command line names the launcher it plays (a process that merely adopted the child is
    # never ended: below)
    launcher = (
        "import subprocess, sys  # stand-in for torch.distributed.run\n"
        f"print('LAUNCHER SAW', subprocess.call([sys.executable, '-c', {child!r}]))"
    )
    for local_rank in ("0", "1"):
        env = {**os.environ, "PYTHONPATH": str(REPO), "TORCHELASTIC_RUN_ID": "test", "LOCAL_RANK": local_rank}
        done = subprocess.run([sys.executable, "-c", launcher], env=env, capture_output=True, text=True, timeout=60)
        assert done.returncode == -signal.SIGKILL, (local_rank, done.stdout, done.stderr)
        assert "LAUNCHER SAW" not in done.stdout and done.stderr.count("train.py: error: refused") == 1
    other = launcher.replace("stand-in for torch.distributed.run", "some other parent")
    env = {**os.environ, "PYTHONPATH": str(REPO), "TORCHELASTIC_RUN_ID": "test", "LOCAL_RANK": "0"}
    done = subprocess.run([sys.executable, "-c", other], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "LAUNCHER SAW 4" in done.stdout, (done.stdout, done.stderr)


@pytest.mark.slow
def test_early_stopping_when_validation_stops_improving(hub_data, tmp_path):
    # lr 0: nothing changes, so the validation loss never improves after the first epoch
    config = tiny_config(
        tmp_path / "run",
        hub_data,
        epochs=6,
        lr=0.0,
        min_lr=0.0,
        monitor="val_loss",
        early_stopping_patience=2,
        test_split=None,
    )
    result = train(config)
    assert result["epochs_done"] == 3 and result["best_epoch"] == 1 and result["finished"]


@pytest.mark.slow
def test_partial_fine_tune_with_cached_trunk_stores_only_trained_tensors(hub_data, tmp_path):
    from safetensors.torch import load_file

    from mushroom_id.core.models import LITE0_PIP, load_model

    out = tmp_path / "lite0"
    config = tiny_config(
        out,
        hub_data,
        model="tf_efficientnet_lite0",
        pretrained="pip",
        img_size=64,
        epochs=1,
        trainable=["blocks.6", "conv_head", "bn2", "classifier"],
        cache_frozen=True,
        cache_views=2,
        save_trainable_only=True,
        save_half=True,
        test_split=None,
    )
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

    from mushroom_id.core.inference import predict

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
    np.savez(
        Path(out_dir) / f"rank{accelerator.process_index}.npz",
        logits=logits,
        y=y,
        idx=idx,
        reference=reference,
        processes=accelerator.num_processes,
    )


@pytest.mark.slow
def test_two_processes_count_every_validation_sample_exactly_once(tmp_path):
    import os
    import subprocess
    import sys

    n = 7  # odd and not a multiple of processes x batch: the last batch is padded with duplicates
    # debug_launcher forks; a fresh interpreter (no OpenMP threads started yet) keeps the fork safe
    code = (
        "from accelerate import debug_launcher; import test_train as t; "
        f"debug_launcher(t._two_process_validation, args=({str(tmp_path)!r}, {n}), num_processes=2)"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(Path(__file__).parent)])}
    subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, check=True, timeout=300)
    results = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    for res in results:
        assert int(res["processes"]) == 2
        assert sorted(res["idx"].tolist()) == list(range(n))  # each sample once, no padding duplicates
        order = np.argsort(res["idx"])
        np.testing.assert_allclose(res["logits"][order], res["reference"], rtol=1e-4, atol=1e-5)
        assert res["y"][order].tolist() == [i % 3 for i in range(n)]


def test_default_evaluation_folder_run_history_and_short_run_curves(tmp_path):
    from mushroom_id.core.paths import EMBEDDED_MODEL_DIR
    from mushroom_id.engine.evaluation import default_eval_dir, run_history
    from mushroom_id.engine.plots import training_curves

    run = tmp_path / "runs" / "x"
    (run / "model").mkdir(parents=True)
    (run / "config.yaml").write_text("name: x\n")
    row = {"epoch": 1, "step": 2, "train_loss": 1.4, "val_loss": 1.38, "train_top1": 0.25, "val_top1": 0.5}
    (run / "metrics.json").write_text(json.dumps([row]))
    (run / "steps.csv").write_text("step,epoch,train_loss,lr\n1,1,1.5,0.01\n2,1,1.3,0.005\n")
    assert default_eval_dir(run / "model", "x", "artifacts/data/dataset", "test") == run / (
        "eval-artifacts--data--dataset-test"
    )
    # never into the package's embedded model folder; runs/ is git-ignored
    assert default_eval_dir(EMBEDDED_MODEL_DIR, "embedded", "shared-photos", "test") == Path(
        "runs/eval/embedded-shared-photos-test"
    )
    history, steps = run_history(run / "model")
    assert history == [row] and steps == [[1, 1, 1.5, 0.01], [2, 1, 1.3, 0.005]]
    assert run_history(EMBEDDED_MODEL_DIR) == (None, None)
    for name, kwargs in (("steps.png", {"steps": steps}), ("epochs.png", {})):  # one epoch: still a real plot
        assert training_curves(history, tmp_path / name, **kwargs).stat().st_size > 10_000


def test_train_state_round_trips():
    s = TrainState(epoch=2, step=10, best=0.5, best_epoch=1, history=[{"epoch": 1}])
    t = TrainState()
    t.load_state_dict(s.state_dict())
    assert t == s
