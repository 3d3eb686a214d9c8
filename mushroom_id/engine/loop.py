"""The training loop: Accelerate + timm, ``train(config)`` in named steps.

:func:`build` (accelerator, data, model, loaders, optimizers, EMA), :func:`resume` (refuses a
checkpoint of another run, saying what differs, before anything trains), then per epoch
:func:`train_one_epoch` (mixed precision, gradient accumulation, EMA with warm-up, frozen-backbone
warmup; loss and top-1 summed over all processes), :func:`validate` (the raw and the averaged weights,
every sample counted once across processes; the better one is kept) and :func:`end_epoch` (a row in
``metrics.csv`` / ``metrics.json``, every optimizer step in ``steps.csv``, the best model in ``best/``
(Hub layout), ``save_state`` to ``checkpoints/epoch_NNN``, and every ``checkpoint_every_steps`` to
``checkpoints/epoch_NNN_step_SSSSSSSS`` inside an epoch); early stopping when validation stops improving.
``--resume auto`` continues at the exact step: the randomness of every batch is a function of its
position (:mod:`.determinism`), so a killed-and-resumed run computes what the uninterrupted one does.
At the end the best model gets a temperature and a conformal threshold fitted on validation, is saved
to ``model/``, and is evaluated on the test split (``eval/``: metrics, per-species CSV, plots).
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from mushroom_id.core.inference import predict
from mushroom_id.core.io import atomic_path, atomic_write_json, write_csv
from mushroom_id.core.models import fingerprint
from mushroom_id.engine.config import ConfigError, TrainConfig, save_config
from mushroom_id.engine.data import DataSplits, cache_key, check_data_spec, class_weights, load_splits
from mushroom_id.engine.determinism import SeededDataset, seed_everything, seed_from
from mushroom_id.engine.evaluation import quick_metrics
from mushroom_id.engine.launch import check_gpu_launch, check_launch, warn_lost_processes
from mushroom_id.engine.trainable import (
    CachedTrunkDataset,
    Top,
    Trunk,
    build_model,
    classifier_prefixes,
    compute_trunk_cache,
    first_trainable_block,
    set_trainable,
    train_mode,
)

log = logging.getLogger(__name__)
CACHE_DIR = Path.home() / ".cache" / "mushroom_id"
LOWER_IS_BETTER = {"val_loss"}


@dataclass
class TrainState:
    """Everything beyond model/optimizer/EMA that ``--resume`` must restore (saved by save_state).

    Checkpoints are taken at optimizer-step boundaries, so there is never a half-accumulated gradient;
    ``batch`` and the ``epoch_*`` sums describe the epoch in progress (all zero at an epoch boundary).
    """

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    batch: int = 0  # micro-batches done in the epoch in progress
    epoch_steps: int = 0  # optimizer steps done in the epoch in progress
    epoch_seen: int = 0
    epoch_loss_sum: float = 0.0
    epoch_correct: int = 0
    epoch_seconds: float = 0.0
    best: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list = field(default_factory=list)
    steps_log: list = field(default_factory=list)  # [step, epoch, train loss, lr] per optimizer step

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)

    def start_epoch(self) -> None:
        self.batch = self.epoch_steps = self.epoch_seen = self.epoch_correct = 0
        self.epoch_loss_sum = self.epoch_seconds = 0.0


def lr_schedule(optimizer, base: float, config: TrainConfig, steps_per_epoch: int):
    """timm's cosine schedule per optimizer step: linear warmup from ``base / warmup steps`` over
    ``warmup_epochs``, cosine from ``base`` to ``min_lr`` at the last step (the warmup overlaps its start).
    Stateless in the step (``step_update(num_updates=step)``), so a resumed run gets the same rates."""
    from timm.scheduler import create_scheduler_v2

    warmup_steps = max(1, int(config.warmup_epochs * steps_per_epoch))
    scheduler, _ = create_scheduler_v2(
        optimizer,
        sched="cosine",
        num_epochs=config.epochs,
        warmup_epochs=config.warmup_epochs,
        warmup_lr=base / warmup_steps,
        min_lr=min(config.min_lr, base),
        step_on_epochs=False,
        updates_per_epoch=steps_per_epoch,
    )
    return scheduler


def soft_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy with soft targets (label smoothing, mixup) and per-class weights.

    A sample weighs ``targets @ weights``; with one-hot targets this is exactly
    ``F.cross_entropy(logits, y, weight=weights)`` (weighted mean).
    """
    per_sample = -(targets * F.log_softmax(logits.float(), dim=-1)).sum(-1)
    if weights is None:
        return per_sample.mean()
    w = targets @ weights
    return (w * per_sample).sum() / w.sum().clamp_min(1e-12)


def smooth_one_hot(y: torch.Tensor, num_classes: int, smoothing: float) -> torch.Tensor:
    off = smoothing / num_classes
    return torch.full((len(y), num_classes), off, device=y.device).scatter_(1, y[:, None], 1.0 - smoothing + off)


CHECKPOINT_DONE = "COMPLETE"  # written last, before the folder gets its final name


def checkpoint_name(epoch: int, step: int | None = None) -> str:
    """``epoch_003``: the end of epoch 3; ``epoch_004_step_00001234``: inside epoch 4, after step 1234."""
    return f"epoch_{epoch:03d}" if step is None else f"epoch_{epoch:03d}_step_{step:08d}"


def _checkpoint_order(path: Path) -> tuple[int, int, int]:
    """Inside an epoch (by step) comes before that epoch's end."""
    parts = path.name.split("_")
    try:
        epoch = int(parts[1])
        return (epoch, 0, int(parts[3])) if len(parts) == 4 and parts[2] == "step" else (epoch, 1, 0)
    except (IndexError, ValueError):
        return (-1, 0, 0)


def _checkpoints(out_dir: Path) -> list[Path]:
    found = [p for p in (out_dir / "checkpoints").glob("epoch_*") if p.is_dir() and not p.name.endswith(".tmp")]
    return sorted(found, key=_checkpoint_order)


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete checkpoint; half-written ones (a kill during saving) are skipped."""
    found = _checkpoints(out_dir)
    complete = [p for p in found if (p / CHECKPOINT_DONE).is_file()]
    for p in found:
        if p not in complete and (not complete or _checkpoint_order(p) > _checkpoint_order(complete[-1])):
            print(f"skipping incomplete checkpoint {p} (no {CHECKPOINT_DONE} marker: the run was killed while saving)")
    return complete[-1] if complete else None


def _load_checkpoint(accelerator, ckpt: Path) -> None:
    try:
        accelerator.load_state(str(ckpt))
    except Exception as e:  # a library error about bytes is no help: name the folder and what to do
        detail = (str(e).splitlines() or [""])[0][:200]
        raise RuntimeError(
            f"checkpoint {ckpt} is corrupt or incomplete and cannot be loaded ({type(e).__name__}: {detail}); "
            "delete that folder to resume from the previous checkpoint, or start without --resume"
        ) from None


def _save_checkpoint(accelerator, out: Path, name: str, keep: int, signature: dict | None = None) -> Path:
    """save_state into ``<name>.tmp`` (with ``checkpoint.json``: what the run is, for :func:`check_resume`),
    mark it complete, then rename: a kill never leaves a folder that looks like a finished checkpoint."""
    final = out / "checkpoints" / name
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        if signature is not None:
            (tmp / "checkpoint.json").write_text(json.dumps(signature, indent=1) + "\n")
        (tmp / CHECKPOINT_DONE).write_text("ok\n")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        for old in _checkpoints(out)[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
    return final


def _transforms(model, config: TrainConfig):
    from timm.data import create_transform, resolve_data_config

    data_config = resolve_data_config(model=model)
    aa = None if config.auto_augment in (None, "", "none") else config.auto_augment
    train_tf = create_transform(
        **data_config,
        is_training=True,
        scale=tuple(config.scale),
        hflip=config.hflip,
        vflip=config.vflip,
        color_jitter=config.color_jitter,
        auto_augment=aa,
    )
    return data_config, train_tf, create_transform(**data_config, is_training=False)


def _cached_train_set(model, config: TrainConfig, train_ds, data_config, accelerator, data_source: str, loader: dict):
    """Frozen trunk outputs of every training image under ``cache_views`` views, computed once."""
    from timm.data import create_transform
    from torchvision import transforms as T

    k = first_trainable_block(model, config.trainable)
    trunk = Trunk(model, k)
    size = data_config["input_size"][-1]
    big = int(round(size / data_config.get("crop_pct", 0.875)))
    norm = T.Normalize(data_config["mean"], data_config["std"])
    plain = T.Compose([T.Resize(big, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(big), T.ToTensor(), norm])
    aa = None if config.auto_augment in (None, "", "none") else config.auto_augment
    augmented = create_transform(
        input_size=(3, big, big),
        is_training=True,
        scale=tuple(config.scale),
        hflip=config.hflip,
        color_jitter=config.color_jitter,
        auto_augment=aa,
        mean=data_config["mean"],
        std=data_config["std"],
        interpolation=data_config.get("interpolation", "bicubic"),
    )
    views = [plain] + [augmented] * (config.cache_views - 1)
    with torch.no_grad():
        probe = trunk.eval()(torch.zeros(1, 3, size, size))
    crop = probe.shape[-1]
    key = cache_key(
        fingerprint(trunk),  # the weights themselves, not their names (an --init-from model changes them)
        k,
        big,
        config.cache_views,
        config.seed,
        config.scale,
        config.auto_augment,
        config.color_jitter,
        data_source,
        *train_ds.keys,
    )
    path = CACHE_DIR / f"trunk-{config.model}-{key}.pt"
    with accelerator.main_process_first():
        if path.is_file():
            maps = torch.load(path, weights_only=True)
        else:
            torch.manual_seed(config.seed)
            maps = compute_trunk_cache(trunk, train_ds, views, workers=loader["num_workers"])
            if accelerator.is_main_process:
                with atomic_path(path) as tmp:
                    torch.save(maps, tmp)
    log.info("trunk cache %s: %s (cached by content; delete it to recompute)", path, tuple(maps.shape))
    return CachedTrunkDataset(maps, train_ds.targets, crop, config.hflip, seed=config.seed), Top(model, k)


def _write_history(out: Path, history: list[dict], steps_log: list | None = None) -> None:
    atomic_write_json(out / "metrics.json", history)
    write_csv(out / "metrics.csv", history, dict.fromkeys(k for row in history for k in row))
    if steps_log is not None:
        rows = ({"step": s, "epoch": e, "train_loss": f"{loss:.6g}", "lr": f"{lr:.6g}"} for s, e, loss, lr in steps_log)
        write_csv(out / "steps.csv", rows, ("step", "epoch", "train_loss", "lr"))


def _improved(value: float, best: float | None, monitor: str) -> bool:
    if best is None or not np.isfinite(best):
        return True
    return value < best if monitor in LOWER_IS_BETTER else value > best


def _release_accelerator_state() -> None:
    """Let a second ``train()`` in the same process use other settings (mixed precision): Accelerate keeps
    its state in a process-wide singleton. The process group (PartialState) is kept."""
    from accelerate.state import AcceleratorState, GradientState

    if AcceleratorState._shared_state:
        AcceleratorState._reset_state(reset_partial_state=False)
        GradientState._reset_state()


def default_workers(processes_per_machine: int = 1, cpus: int | None = None) -> int:
    """DataLoader workers per training process: the machine's cores shared among its processes, one
    core left to each process itself, at most 12 (decoding and augmenting a 600 px JPEG costs a
    core ~11-17 ms: bench/README.md measures 60-90 crops/s per core)."""
    if cpus is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(12, cpus // max(1, processes_per_machine) - 1))


def loader_settings(config: TrainConfig, device_type: str, processes_per_machine: int = 1) -> dict:
    """``num_workers`` (the config's, or :func:`default_workers`), ``pin_memory`` and persistent workers on
    CUDA (page-locked batches copy to the GPU asynchronously; workers are not restarted every epoch)."""
    workers = config.num_workers if config.num_workers is not None else default_workers(processes_per_machine)
    cuda = device_type == "cuda"
    settings: dict = {"num_workers": workers, "pin_memory": cuda, "persistent_workers": cuda and workers > 0}
    if workers:
        settings["prefetch_factor"] = 4
    return settings


@dataclass
class Run:
    """What :func:`build` sets up and every step of a run works on."""

    config: TrainConfig
    accelerator: Any
    out: Path
    data: DataSplits
    model: torch.nn.Module  # the timm model
    net: torch.nn.Module  # what the training forward runs (prepared): the model, or its top over cached trunk maps
    base: str | None  # the pip base weights (partial saving)
    trained_keys: list[str]
    train_set: Any
    train_loader: Any
    val_loader: Any
    loader: dict  # the loader settings in use
    weights: torch.Tensor  # per-class loss weights
    optimizers: dict  # "adamw" / "sgd" -> (optimizer, its lr schedule)
    mixup: Any
    ema: Any  # timm ModelEmaV3 or None
    state: TrainState
    steps_per_epoch: int
    head: list[str]  # the classifier's parameter prefixes (frozen-backbone warmup)

    @property
    def labels(self) -> list[str]:
        return self.data.labels

    def optimizer_for(self, epoch: int) -> tuple[str, Any, Any]:
        c = self.config
        switched = c.sgd_switch_epoch is not None and epoch >= c.sgd_switch_epoch
        name = "sgd" if c.optimizer == "sgd" or switched else "adamw"
        return (name, *self.optimizers[name])

    def signature(self) -> dict:
        """What a checkpoint must agree on to be resumed by this run (``checkpoint.json``)."""
        c = self.config
        return {
            "model": c.model,
            "input_size": int(resolve_data_config_size(self.model)),
            "classes": list(self.labels),
            "training_images": len(self.data[c.train_split]),
            "batch_size": c.batch_size,
            "grad_accum_steps": c.grad_accum_steps,
            "processes": self.accelerator.num_processes,
            "trainable": c.trainable,
            "cache_frozen": c.cache_frozen,
            "ema": bool(c.ema_decay),
        }


def resolve_data_config_size(model) -> int:
    from timm.data import resolve_data_config

    return resolve_data_config(model=model)["input_size"][-1]


# ---------------------------------------------------------------- build


def build(config: TrainConfig, data: DataSplits | None = None) -> Run:
    """Accelerator, data, model, loaders, optimizers, schedules, EMA: everything before the first step."""
    from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs

    if data is None:
        check_data_spec(config.data)
    out = config.out_dir()
    check_gpu_launch()  # before the Accelerator: no process group is started for a launch that cannot run
    _release_accelerator_state()
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.grad_accum_steps,
        project_dir=str(out),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
        # the frozen-backbone warmup leaves backbone parameters without gradients for a while
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=config.freeze_epochs > 0)],
        log_with=config.log_with,
    )
    check_launch(accelerator.num_processes, accelerator.process_index)
    seed_everything(seed_from(config.seed, "init"))  # model initialisation (random weights, new heads)
    with accelerator.main_process_first():  # the first process fills caches (duplicate groups) for the others
        data = data or load_splits(config.data, seed=config.seed)
    check_classes(data, config.train_split)
    if config.log_with:
        accelerator.init_trackers(config.name, config=config.to_dict())

    labels = data.labels
    train_ds, val_ds = data[config.train_split], data[config.val_split]
    model, base = build_model(config, labels)
    if config.channels_last:  # a run-time choice: save_model writes contiguous copies
        model = model.to(memory_format=torch.channels_last)
    trained_keys = set_trainable(model, config.trainable)
    data_config, train_tf, eval_tf = _transforms(model, config)

    per_machine = int(os.environ.get("LOCAL_WORLD_SIZE") or accelerator.num_processes)
    loader = loader_settings(config, accelerator.device.type, per_machine)
    train_loader_settings = loader
    if config.cache_frozen:
        train_set, net = _cached_train_set(model, config, train_ds, data_config, accelerator, data.source, loader)
        train_loader_settings = {"num_workers": 0}  # tensors in memory: workers would only copy them
    else:
        train_set, net = SeededDataset(train_ds.with_transform(train_tf), config.seed), model
    train_loader = torch.utils.data.DataLoader(
        train_set,
        batch_size=config.batch_size,
        shuffle=True,
        drop_last=len(train_set) > config.batch_size,  # no batch of one through BatchNorm
        **train_loader_settings,
    )
    val_loader = torch.utils.data.DataLoader(
        val_ds.with_transform(eval_tf),
        batch_size=config.eval_batch_size or config.batch_size * 2,
        shuffle=False,
        **loader,
    )
    weights = torch.tensor(
        class_weights(train_ds.targets, labels, config.class_balance, config.toxic_weight), dtype=torch.float32
    ).to(accelerator.device)

    # timm's optimizer factory: the trainable parameters, no weight decay on norm layers and biases
    from timm.optim import create_optimizer_v2

    adamw = create_optimizer_v2(model, opt="adamw", lr=config.lr, weight_decay=config.weight_decay)
    sgd = create_optimizer_v2(  # "sgd" is Nesterov momentum in timm
        model,
        opt="sgd",
        lr=config.sgd_lr,
        momentum=config.sgd_momentum,
        weight_decay=config.weight_decay if config.optimizer == "sgd" else 0.0,
    )
    mixup = None
    if config.mixup > 0 or config.cutmix > 0:
        from timm.data import Mixup

        mixup = Mixup(
            mixup_alpha=config.mixup,
            cutmix_alpha=config.cutmix,
            label_smoothing=config.label_smoothing,
            num_classes=len(labels),
        )
    net, adamw, sgd, train_loader, val_loader = accelerator.prepare(net, adamw, sgd, train_loader, val_loader)
    ema = None
    if config.ema_decay:
        from timm.utils import ModelEmaV3

        # with warm-up the decay grows with the step (1 - (1 + step)^-2/3, capped at ema_decay): a fixed
        # 0.9998 over ~1,000 steps would leave the average ~80% its initial weights, random head included
        ema = ModelEmaV3(model, decay=config.ema_decay, use_warmup=config.ema_warmup)
        accelerator.register_for_checkpointing(ema)
    state = TrainState()
    accelerator.register_for_checkpointing(state)

    steps_per_epoch = math.ceil(len(train_loader) / config.grad_accum_steps)
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    return Run(
        config=config,
        accelerator=accelerator,
        out=out,
        data=data,
        model=model,
        net=net,
        base=base,
        trained_keys=trained_keys,
        train_set=train_set,
        train_loader=train_loader,
        val_loader=val_loader,
        loader=loader,
        weights=weights,
        optimizers={
            "adamw": (adamw, lr_schedule(adamw, config.lr, config, steps_per_epoch)),
            "sgd": (sgd, lr_schedule(sgd, config.sgd_lr, config, steps_per_epoch)),
        },
        mixup=mixup,
        ema=ema,
        state=state,
        steps_per_epoch=steps_per_epoch,
        head=classifier_prefixes(model),
    )


def check_classes(data: DataSplits, train_split: str) -> None:
    """A classifier needs two species with training photos: one would train into a 1-way "100%" model."""
    present = sorted({data.labels[t] for t in data[train_split].targets})
    if len(present) < 2:
        found = f"only {present[0]!r}" if present else "none"
        raise ConfigError(
            f"{data.source}: the {train_split} split has photos of {found}: a species classifier needs at least "
            "two species; add folders (or rows) for other species"
        )


# ---------------------------------------------------------------- resume

SIGNATURE_FILE = "checkpoint.json"  # what the run that saved a checkpoint was (see Run.signature)
SIGNATURE_NAMES = {
    "model": "backbone",
    "input_size": "input size (px)",
    "classes": "classes",
    "training_images": "training images",
    "batch_size": "batch size",
    "grad_accum_steps": "gradient accumulation steps",
    "processes": "processes",
    "trainable": "trainable layers",
    "cache_frozen": "cache_frozen",
    "ema": "EMA on",
}


def _show(key: str, value) -> str:
    if key == "classes" and isinstance(value, list):
        return f"{len(value)} species" + (f" ({', '.join(value[:3])}{', ...' if len(value) > 3 else ''})")
    return repr(value)


def class_differences(saved: list[str], current: list[str]) -> str:
    """Every species only the checkpoint knows and every species only this run has (not 3 names per side)."""
    only_saved = sorted(set(saved) - set(current))
    only_here = sorted(set(current) - set(saved))
    parts = [f"{len(saved)} species (checkpoint) vs {len(current)} (this run)"]
    if only_saved:
        parts.append(f"only in the checkpoint: {', '.join(only_saved)}")
    if only_here:
        parts.append(f"only in this run: {', '.join(only_here)}")
    if not only_saved and not only_here:
        parts.append("the same names in another order")
    return "; ".join(parts)


def signature_differences(saved: dict, current: dict) -> list[str]:
    """Human-readable differences between a checkpoint's run and this one ("backbone: 'a' (checkpoint) vs
    'b' (this run)")."""
    diffs = []
    for key, name in SIGNATURE_NAMES.items():
        if key in saved and saved[key] != current.get(key):
            detail = f"{_show(key, saved[key])} (checkpoint) vs {_show(key, current.get(key))} (this run)"
            if key == "classes" and isinstance(saved[key], list) and isinstance(current.get(key), list):
                detail = class_differences(saved[key], current[key])
            diffs.append(f"{name}: {detail}")
    return diffs


def _weights_differences(ckpt: Path, net: torch.nn.Module) -> list[str]:
    """Tensor names/shapes of the checkpoint's model against this run's (checkpoints without a signature)."""
    file = ckpt / "model.safetensors"
    if not file.is_file():
        return []
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(file), "pt") as f:
            saved = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}  # noqa: SIM118 - not a dict
    except (SafetensorError, OSError):
        return []  # unreadable: loading it says the checkpoint is corrupt, naming the folder
    mine = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    if saved.keys() != mine.keys():
        example = sorted(set(saved) - set(mine))[:2] or sorted(set(mine) - set(saved))[:2]
        return [f"model tensors: {len(set(saved) ^ set(mine))} names differ (e.g. {example})"]
    shapes = [f"{k} {saved[k]} vs {mine[k]}" for k in saved if saved[k] != mine[k]]
    return [f"model tensor shapes: {', '.join(shapes[:3])}"] if shapes else []


def check_resume(run: Run, ckpt: Path) -> None:
    """Refuse, before anything is loaded or trained, a checkpoint this run cannot continue, saying what differs."""
    accelerator = run.accelerator
    file = ckpt / SIGNATURE_FILE
    diffs = signature_differences(json.loads(file.read_text()), run.signature()) if file.is_file() else []
    if not diffs:
        diffs = _weights_differences(ckpt, accelerator.unwrap_model(run.net))
    if diffs:
        raise ConfigError(resume_refusal(ckpt, diffs))


def resume_refusal(ckpt: Path, diffs: list[str]) -> str:
    """The refusal of a checkpoint saved by another run, with the command that resumes it. ``--output-dir``
    names the checkpoint's own folder: the ``config.yaml`` there still names the folder it was first written
    in, so without it a copied run folder would resume (and write into) the original."""
    run_folder = ckpt.parent.parent
    return (
        f"--resume {ckpt}: that checkpoint was saved by a different run; "
        + "; ".join(diffs)
        + f". Resume with that run's settings (python train.py --config {run_folder / 'config.yaml'} "
        f"--output-dir {run_folder} --resume auto), or start a new run without --resume (--init-from "
        "local-dir:<that run>/best starts from its weights)"
    )


def check_resumed_best(run: Run, ckpt: Path) -> None:
    """The best model so far must be in this run's folder: it is what the end of the run calibrates and saves."""
    state = run.state
    if state.best_epoch > 0 and not (run.out / "best" / "model.safetensors").is_file():
        origin = ckpt.parent.parent
        raise ConfigError(
            f"--resume {ckpt}: the best model so far (epoch {state.best_epoch}) is in {origin / 'best'}, not in "
            f"{run.out / 'best'} (--output-dir {run.out}). Resume into the checkpoint's own run folder "
            f"(--output-dir {origin}), or copy {origin / 'best'} to {run.out / 'best'} first"
        )


def resume(run: Run) -> None:
    """``--resume auto`` (the newest checkpoint in the run folder) or ``--resume <folder>``."""
    config, accelerator, state = run.config, run.accelerator, run.state
    ckpt = latest_checkpoint(run.out) if config.resume == "auto" else Path(config.resume)
    if ckpt is None:
        accelerator.print(f"--resume auto: no checkpoint in {run.out / 'checkpoints'}: starting from step 0")
        return
    if not ckpt.is_dir():
        raise ConfigError(f"--resume {config.resume}: no such checkpoint folder")
    check_resume(run, ckpt)
    _load_checkpoint(accelerator, ckpt)
    check_resumed_best(run, ckpt)
    accelerator.print(resumed_message(ckpt, state))


def resumed_message(ckpt: Path, state: TrainState) -> str:
    """Where training goes on, with one epoch number (``state.epoch`` counts completed epochs, 1-based names)."""
    if state.batch:
        return (
            f"resumed from {ckpt}: epoch {state.epoch + 1}, step {state.step} "
            f"({state.batch} batches into epoch {state.epoch + 1})"
        )
    done = f"epoch {state.epoch} done; next: epoch {state.epoch + 1}"
    return f"resumed from {ckpt}: epoch {state.epoch}, step {state.step} ({done})"


# ---------------------------------------------------------------- one epoch


@dataclass
class EpochSums:
    """This process's training sums since they were last added to the state (all processes together)."""

    seen: int = 0
    loss_sum: float = 0.0
    correct: int = 0


def sync_epoch_sums(run: Run, local: EpochSums) -> None:
    """Add every process's sums to the state (identical on every process afterwards), then clear them: the
    metrics of the whole batch, not rank 0's share, and a checkpoint that holds them all."""
    accelerator = run.accelerator
    totals = torch.tensor([local.seen, local.loss_sum, local.correct], dtype=torch.float64, device=accelerator.device)
    totals = accelerator.reduce(totals, reduction="sum").cpu().tolist()
    run.state.epoch_seen += int(round(totals[0]))
    run.state.epoch_loss_sum += totals[1]
    run.state.epoch_correct += int(round(totals[2]))
    local.seen, local.loss_sum, local.correct = 0, 0.0, 0


def save_checkpoint(run: Run, name: str, local: EpochSums | None = None) -> Path:
    if local is not None:
        sync_epoch_sums(run, local)
    return _save_checkpoint(run.accelerator, run.out, name, run.config.keep_checkpoints, run.signature())


def train_one_epoch(run: Run, epoch: int, step_budget: int | None) -> tuple[bool, int]:
    """Train epoch ``epoch`` (0-based) from where the state says; returns (whole epoch done, steps taken).
    ``step_budget``: stop after that many optimizer steps (as if killed after its checkpoint)."""
    config, accelerator, state, model = run.config, run.accelerator, run.state, run.model
    frozen = epoch < config.freeze_epochs
    prefixes = run.head if frozen else config.trainable
    set_trainable(model, prefixes)
    train_mode(model, prefixes)
    run.train_set.set_epoch(epoch)
    run.train_loader.set_epoch(epoch)
    # a resumed epoch skips the batches it has done (the sampler gives the same order: seed + epoch)
    loader = accelerator.skip_first_batches(run.train_loader, state.batch) if state.batch else run.train_loader
    _, optimizer, schedule = run.optimizer_for(epoch)
    clipped = [p for p in model.parameters() if p.requires_grad]  # this epoch's trainable tensors
    if accelerator.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(accelerator.device)
    tic = time.time()
    bar = tqdm(
        loader,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        initial=state.batch,
        total=len(run.train_loader),
        disable=not accelerator.is_local_main_process,
    )
    local = EpochSums()
    steps = 0
    step_losses: list[float] = []
    done = False
    for x, y, _ in bar:
        # dropout, drop path and mixup of this batch: a function of its position only
        seed_everything(seed_from(config.seed, epoch, state.batch, accelerator.process_index))
        if config.channels_last and x.dim() == 4:
            x = x.contiguous(memory_format=torch.channels_last)
        if run.mixup is not None and len(y) % 2 == 0:
            x, targets = run.mixup(x, y)
        else:
            targets = smooth_one_hot(y, len(run.labels), config.label_smoothing)
        with accelerator.accumulate(run.net):
            with accelerator.autocast():
                logits = run.net(x)
            loss = soft_cross_entropy(logits, targets, run.weights)
            accelerator.backward(loss)
            if accelerator.sync_gradients:
                if config.grad_clip:
                    accelerator.clip_grad_norm_(clipped, config.grad_clip)
                schedule.step_update(num_updates=state.step)
            optimizer.step()
            optimizer.zero_grad()
        state.batch += 1
        local.seen += len(y)
        local.loss_sum += float(loss.detach()) * len(y)
        local.correct += int((logits.argmax(-1) == y).sum())
        step_losses.append(float(loss.detach()))
        if not accelerator.sync_gradients:
            continue
        state.step += 1
        state.epoch_steps += 1
        steps += 1
        if run.ema is not None:
            run.ema.update(model, step=state.step)
        lr = optimizer.param_groups[0]["lr"]
        state.steps_log.append([state.step, epoch + 1, float(np.mean(step_losses)), lr])
        step_losses = []
        elapsed = state.epoch_seconds + time.time() - tic
        bar.set_postfix(
            loss=f"{(state.epoch_loss_sum + local.loss_sum) / max(state.epoch_seen + local.seen, 1):.3f}",
            lr=f"{lr:.2e}",
            img_s=f"{(state.epoch_seen + local.seen) / max(elapsed, 1e-9):.0f}",  # this process's, so far
        )
        done = state.epoch_steps >= run.steps_per_epoch
        every = config.checkpoint_every_steps
        if every and state.step % every == 0 and not done:  # the epoch's end saves anyway
            state.epoch_seconds += time.time() - tic
            tic = time.time()
            save_checkpoint(run, checkpoint_name(epoch + 1, state.step), local)
            save_logs(run)
        if step_budget is not None and steps >= step_budget and not done:
            break
        if done:
            break
    else:
        done = True  # the loader ran out (the last batches did not complete an accumulation)
    if hasattr(loader, "end"):  # left early: unregister it from Accelerate's gradient state
        loader.end()
    if not done:
        return False, steps
    state.epoch_seconds += time.time() - tic
    sync_epoch_sums(run, local)
    return True, steps


# ---------------------------------------------------------------- validate


def validate(run: Run) -> dict:
    """Validation metrics of the raw weights and, with EMA, of the averaged ones; the better (by the
    monitored metric) is the one this epoch is judged and saved by (``weights``: raw | ema)."""
    config, accelerator = run.config, run.accelerator
    candidates = {"raw": run.model} | ({"ema": run.ema.module} if run.ema is not None else {})
    results = {}
    for name, module in candidates.items():
        logits, y, idx = predict(module, run.val_loader, accelerator, desc=f"validation ({name})")
        results[name] = {**quick_metrics(logits, y, len(run.labels)), "unique_images": int(len(np.unique(idx)))}
    key = config.monitor.removeprefix("val_")
    chosen = "raw"
    if "ema" in results and not _improved(results["raw"][key], results["ema"][key], config.monitor):
        chosen = "ema"  # ties go to the average
    row = {f"val_{k}": v for k, v in results[chosen].items()}
    row["weights"] = chosen
    for name, metrics in results.items():
        row[f"val_top1_{name}"] = metrics["top1"]
        row[f"val_loss_{name}"] = metrics["loss"]
        if key not in ("top1", "loss"):
            row[f"val_{key}_{name}"] = metrics[key]
    if run.ema is not None:
        row["ema_decay"] = run.ema.get_decay(run.state.step)
    return row


# ---------------------------------------------------------------- end of epoch: log, best model, checkpoint


def save_logs(run: Run) -> None:
    from mushroom_id.engine.plots import training_curves

    state = run.state
    if run.accelerator.is_main_process:
        _write_history(run.out, state.history, state.steps_log)
        if state.steps_log or state.history:
            training_curves(state.history, run.out / "training_curves.png", steps=state.steps_log)


def end_epoch(run: Run, epoch: int, val: dict) -> dict:
    """Log the epoch's row, keep the best weights (``best/``), checkpoint; returns the row."""
    from mushroom_id.core.models import save_model

    config, accelerator, state = run.config, run.accelerator, run.state
    optimizer_name, optimizer, _ = run.optimizer_for(epoch)
    seen = max(state.epoch_seen, 1)
    row = {
        "epoch": epoch + 1,
        "step": state.step,
        "optimizer": optimizer_name,
        "frozen_backbone": epoch < config.freeze_epochs,
        "lr": optimizer.param_groups[0]["lr"],
        "train_loss": state.epoch_loss_sum / seen,
        "train_top1": state.epoch_correct / seen,
        "train_images": state.epoch_seen,  # all processes
        "train_images_per_s": state.epoch_seen / max(state.epoch_seconds, 1e-9),
        "processes": accelerator.num_processes,
        "workers": run.loader["num_workers"],
        **val,
    }
    if accelerator.device.type == "cuda":
        row["gpu_peak_memory_gb"] = torch.cuda.max_memory_allocated(accelerator.device) / 2**30
    state.history.append(row)
    if config.log_with:
        accelerator.log({k: v for k, v in row.items() if isinstance(v, int | float)}, step=state.step)
    improved = _improved(row[config.monitor], state.best, config.monitor)
    if improved:
        state.best, state.best_epoch, state.bad_epochs = row[config.monitor], epoch + 1, 0
    else:
        state.bad_epochs += 1
    state.epoch = epoch + 1
    state.start_epoch()
    accelerator.wait_for_everyone()
    if accelerator.is_main_process and improved:
        chosen = run.ema.module if val["weights"] == "ema" else run.model
        save_model(
            accelerator.unwrap_model(chosen),
            run.out / "best",
            run.labels,
            extra={"model_id": config.model_id or config.name, "best_epoch": epoch + 1, "weights": val["weights"]},
        )
    save_logs(run)
    save_checkpoint(run, checkpoint_name(epoch + 1))
    accelerator.print(
        f"epoch {epoch + 1}: train loss {row['train_loss']:.3f} top1 {row['train_top1']:.3f} | "
        f"val loss {row['val_loss']:.3f} top1 {row['val_top1']:.3f} top5 {row['val_top5']:.3f} "
        f"({val['weights']} weights) | {row['train_images_per_s']:.1f} img/s"
    )
    return row


# ---------------------------------------------------------------- the run


def train(
    config: TrainConfig,
    data: DataSplits | None = None,
    stop_after: int | None = None,
    stop_after_steps: int | None = None,
) -> dict:
    """Train per ``config``; returns the final report. ``stop_after`` / ``stop_after_steps``: return after that
    many epochs / optimizer steps of this call, as if killed right after the last checkpoint (tests of
    ``--resume``)."""
    warn_lost_processes()
    run = build(config, data)
    if config.resume:
        resume(run)
    accelerator, state = run.accelerator, run.state
    if accelerator.is_main_process:  # after the checks: a refused resume leaves the run folder as it was
        run.out.mkdir(parents=True, exist_ok=True)
        save_config(config, run.out / "config.yaml")
    epochs_this_call = steps_this_call = 0
    interrupted = False
    started = time.time()
    for epoch in range(state.epoch, config.epochs):
        if stop_after is not None and epochs_this_call >= stop_after:
            interrupted = True
            break
        budget = None if stop_after_steps is None else stop_after_steps - steps_this_call
        completed, steps = train_one_epoch(run, epoch, budget)
        steps_this_call += steps
        if not completed:
            interrupted = True
            break
        end_epoch(run, epoch, validate(run))
        epochs_this_call += 1
        if config.early_stopping_patience is not None and state.bad_epochs >= config.early_stopping_patience:
            accelerator.print(f"early stopping: no {config.monitor} improvement for {state.bad_epochs} epochs")
            break

    accelerator.wait_for_everyone()
    finished = not interrupted and (
        state.epoch >= config.epochs
        or (config.early_stopping_patience is not None and state.bad_epochs >= config.early_stopping_patience)
    )
    result = {
        "epochs_done": state.epoch,
        "steps": state.step,
        "best_epoch": state.best_epoch,
        config.monitor: state.best,
        "history": state.history,
        "steps_log": state.steps_log,
        "finished": finished,
        "train_minutes": (time.time() - started) / 60,
    }
    if not finished:
        accelerator.end_training()
        return result

    final = finish(
        config,
        run.data,
        accelerator,
        base=run.base if config.save_trainable_only else None,
        keep_keys=run.trained_keys if config.save_trainable_only else None,
        history=state.history,
        steps_log=state.steps_log,
    )
    result.update(final)
    if accelerator.is_main_process:
        summary = {k: v for k, v in result.items() if k not in ("history", "steps_log")}
        atomic_write_json(run.out / "result.json", summary)
    accelerator.end_training()
    return result


def _is_content_hash(key: str) -> bool:
    return len(key) == 64 and all(c in "0123456789abcdef" for c in key)


def finish(
    config: TrainConfig,
    data: DataSplits,
    accelerator,
    base: str | None,
    keep_keys: list[str] | None,
    history: list[dict],
    steps_log: list | None = None,
) -> dict:
    """Best model -> its calibration on validation (``engine.calibration.calibrate``: temperature,
    confidence/genus thresholds, conformal quantile) -> ``model/`` -> test evaluation (``eval/``) ->
    with ``export_onnx``/``push_to_hub``: the standalone export (``export/``) and its push."""
    from mushroom_id.core.models import load_model_dir, save_model
    from mushroom_id.engine.calibration import calibrate
    from mushroom_id.engine.comparison import evaluate_loaded
    from mushroom_id.engine.plots import training_curves

    out = config.out_dir()
    best = load_model_dir(out / "best", device=str(accelerator.device))
    workers = loader_settings(config, accelerator.device.type)["num_workers"]
    loader = torch.utils.data.DataLoader(
        data[config.val_split].with_transform(best.transform()),
        batch_size=config.eval_batch_size or config.batch_size * 2,
        num_workers=workers,
    )
    logits, y, _ = predict(best.model, accelerator.prepare(loader), accelerator, desc="calibration")
    calibration = calibrate(logits, y, best.labels, coverage=config.conformal_coverage)
    temperature, qhat = calibration.temperature, calibration.thresholds.conformal_qhat
    model_dir = out / "model"
    if accelerator.is_main_process:
        save_model(
            best.model,
            model_dir,
            best.labels,
            temperature=temperature,
            base_weights=base,
            keep_keys=keep_keys,
            half=config.save_half,
            extra={
                "model_id": config.model_id or config.name,
                "frozen_backbone": False,
                "thresholds": calibration.config()["thresholds"],
                "calibration_fit": calibration.fit,
                "trained_on": f"{data.source} ({config.train_split} split)",
                "train_config": {k: v for k, v in config.to_dict().items() if v is not None},
            },
            training_images=[k for k in data[config.train_split].content_hashes() if _is_content_hash(k)] or None,
        )
    accelerator.wait_for_everyone()
    result: dict = {"temperature": temperature, "conformal_qhat": qhat, "model_dir": str(model_dir)}
    if config.test_split:
        loaded = load_model_dir(model_dir, device=str(accelerator.device))
        test = evaluate_loaded(
            loaded,
            data,
            config.test_split,
            out_dir=out / "eval",
            accelerator=accelerator,
            batch_size=config.eval_batch_size or config.batch_size * 2,
            workers=workers,
        )
        result["test"] = test
        if accelerator.is_main_process:
            training_curves(history, out / "eval" / "training_curves.png", steps=steps_log)
            (model_dir / "metrics.json").write_text(
                json.dumps({"test": test, "validation_history": history, "temperature": temperature}, indent=2) + "\n"
            )
    if accelerator.is_main_process and (config.export_onnx or config.push_to_hub):
        from mushroom_id.engine.export import export_hub_folder, export_onnx, push_to_hub

        metrics_file = model_dir / "metrics.json"
        metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else None
        source = loaded if config.test_split else load_model_dir(model_dir)
        export_dir = export_hub_folder(source, out / "export", metrics)
        result["export_dir"] = str(export_dir)
        result["onnx"] = export_onnx(load_model_dir(export_dir), export_dir / "model.onnx")
        if config.push_to_hub:
            result["pushed"] = push_to_hub(export_dir, config.push_to_hub, dataset=data.source)
    accelerator.wait_for_everyone()
    return result
