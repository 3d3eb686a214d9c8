"""The training loop: Accelerate + timm, one function, ``train(config)``.

Per epoch: train (mixed precision, gradient accumulation, optional EMA and frozen-backbone
warmup), validate with every sample counted once across processes, log a row to
``metrics.csv`` / ``metrics.json``, keep the best model (Hub layout, ``best/``), ``save_state``
to ``checkpoints/epoch_NNN`` and stop early when validation stops improving. At the end the
best model gets a temperature and a conformal threshold fitted on validation, is saved to
``model/``, and is evaluated on the test split (``eval/``: metrics, per-species CSV, plots).
"""

from __future__ import annotations

import json
import logging
import math
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from .config import TrainConfig, save_config
from .data import DataSplits, cache_key, class_weights, load_splits
from .evaluate import predict, quick_metrics
from .model import (
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
    """Everything beyond model/optimizer that ``--resume`` must restore (saved by save_state)."""

    epoch: int = 0  # epochs completed
    step: int = 0  # optimizer steps taken
    best: float | None = None
    best_epoch: int = -1
    bad_epochs: int = 0
    history: list = field(default_factory=list)

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict) -> None:
        for k, v in state.items():
            setattr(self, k, v)


def lr_at(step: int, total: int, warmup: int, base: float, minimum: float) -> float:
    """Linear warmup to ``base``, then cosine decay to ``minimum`` at ``total`` steps."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return minimum + 0.5 * (base - minimum) * (1 + math.cos(math.pi * progress))


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


def latest_checkpoint(out_dir: Path) -> Path | None:
    """The newest complete ``epoch_NNN`` checkpoint; half-written ones (a kill during saving) are skipped."""
    found = sorted(p for p in (out_dir / "checkpoints").glob("epoch_*") if p.is_dir() and not p.name.endswith(".tmp"))
    complete = [p for p in found if (p / CHECKPOINT_DONE).is_file()]
    for p in found:
        if p not in complete and (not complete or p > complete[-1]):
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


def _save_checkpoint(accelerator, out: Path, epoch: int, keep: int) -> None:
    """save_state into ``epoch_NNN.tmp``, mark it complete, then rename: a kill never leaves a
    folder that looks like a finished checkpoint."""
    final = out / "checkpoints" / f"epoch_{epoch:03d}"
    tmp = final.with_name(final.name + ".tmp")
    if accelerator.is_main_process and tmp.exists():
        shutil.rmtree(tmp)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    accelerator.wait_for_everyone()
    if accelerator.is_main_process:
        (tmp / CHECKPOINT_DONE).write_text("ok\n")
        if final.exists():
            shutil.rmtree(final)
        tmp.rename(final)
        done = sorted(p for p in (out / "checkpoints").glob("epoch_*") if not p.name.endswith(".tmp"))
        for old in done[:-keep]:
            shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


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


def _cached_train_set(model, config: TrainConfig, train_ds, data_config, accelerator, data_source: str):
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
        config.model,
        config.pretrained,
        config.init_from,
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
            maps = compute_trunk_cache(trunk, train_ds, views, workers=config.num_workers)
            if accelerator.is_main_process:
                path.parent.mkdir(parents=True, exist_ok=True)
                torch.save(maps, path.with_suffix(".tmp"))
                path.with_suffix(".tmp").replace(path)
    log.info("trunk cache %s: %s", path.name, tuple(maps.shape))
    return CachedTrunkDataset(maps, train_ds.targets, crop, config.hflip, seed=config.seed), Top(model, k)


def _write_history(out: Path, history: list[dict]) -> None:
    (out / "metrics.json").write_text(json.dumps(history, indent=2) + "\n")
    keys = list(dict.fromkeys(k for row in history for k in row))
    with open(out / "metrics.csv", "w") as f:
        f.write(",".join(keys) + "\n")
        for row in history:
            f.write(",".join("" if row.get(k) is None else str(row.get(k)) for k in keys) + "\n")


def _improved(value: float, best: float | None, monitor: str) -> bool:
    if best is None or not np.isfinite(best):
        return True
    return value < best if monitor in LOWER_IS_BETTER else value > best


def train(config: TrainConfig, data: DataSplits | None = None, stop_after: int | None = None) -> dict:
    """Train per ``config``; returns the final report. ``stop_after``: stop after that many epochs
    of this call, as if interrupted (tests of ``--resume``)."""
    from accelerate import Accelerator, DataLoaderConfiguration, DistributedDataParallelKwargs
    from accelerate.utils import set_seed

    from ..models import save_model

    out = config.out_dir()
    accelerator = Accelerator(
        mixed_precision=config.mixed_precision,
        gradient_accumulation_steps=config.grad_accum_steps,
        project_dir=str(out),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True, data_seed=config.seed),
        # the frozen-backbone warmup leaves backbone parameters without gradients for a while
        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=config.freeze_epochs > 0)],
        log_with=config.log_with,
    )
    set_seed(config.seed)
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        save_config(config, out / "config.yaml")
    if config.log_with:
        accelerator.init_trackers(config.name, config=config.to_dict())

    with accelerator.main_process_first():  # the first process fills caches (duplicate groups) for the others
        data = data or load_splits(config.data, seed=config.seed)
    labels = data.labels
    train_ds, val_ds = data[config.train_split], data[config.val_split]
    model, base = build_model(config, labels)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    trained_keys = set_trainable(model, config.trainable)
    data_config, train_tf, eval_tf = _transforms(model, config)

    workers = config.num_workers
    if config.cache_frozen:
        train_set, net = _cached_train_set(model, config, train_ds, data_config, accelerator, data.source)
        workers = 0  # tensors in memory: workers would only copy them
    else:
        train_set, net = train_ds.with_transform(train_tf), model
    train_loader = torch.utils.data.DataLoader(
        train_set,
        batch_size=config.batch_size,
        shuffle=True,
        num_workers=workers,
        drop_last=len(train_set) > config.batch_size,  # no batch of one through BatchNorm
    )
    val_loader = torch.utils.data.DataLoader(
        val_ds.with_transform(eval_tf),
        batch_size=config.eval_batch_size or config.batch_size * 2,
        shuffle=False,
        num_workers=config.num_workers,
    )
    weights = torch.tensor(
        class_weights(train_ds.targets, labels, config.class_balance, config.toxic_weight),
        dtype=torch.float32,
    ).to(accelerator.device)

    params = [p for p in model.parameters() if p.requires_grad]
    adamw = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sgd = torch.optim.SGD(
        params,
        lr=config.sgd_lr,
        momentum=config.sgd_momentum,
        nesterov=True,
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

        ema = ModelEmaV3(model, decay=config.ema_decay)
        accelerator.register_for_checkpointing(ema)
    state = TrainState()
    accelerator.register_for_checkpointing(state)

    if config.resume:
        ckpt = latest_checkpoint(out) if config.resume == "auto" else Path(config.resume)
        if ckpt is None:
            raise FileNotFoundError(f"--resume auto: no checkpoint in {out / 'checkpoints'}")
        _load_checkpoint(accelerator, ckpt)
        accelerator.print(f"resumed from {ckpt}: epoch {state.epoch}, step {state.step}")

    steps_per_epoch = math.ceil(len(train_loader) / config.grad_accum_steps)
    if config.max_steps_per_epoch:
        steps_per_epoch = min(steps_per_epoch, config.max_steps_per_epoch)
    total_steps = steps_per_epoch * config.epochs
    warmup_steps = int(config.warmup_epochs * steps_per_epoch)

    def use_sgd(epoch: int) -> bool:
        return config.optimizer == "sgd" or (config.sgd_switch_epoch is not None and epoch >= config.sgd_switch_epoch)

    head = classifier_prefixes(model)
    eval_model = ema.module if ema is not None else model
    epochs_this_call = 0
    started = time.time()

    for epoch in range(state.epoch, config.epochs):
        if stop_after is not None and epochs_this_call >= stop_after:
            break
        frozen = epoch < config.freeze_epochs
        prefixes = head if frozen else config.trainable
        set_trainable(model, prefixes)
        train_mode(model, prefixes)
        if hasattr(train_set, "set_epoch"):
            train_set.set_epoch(epoch)
        train_loader.set_epoch(epoch)
        optimizer = sgd if use_sgd(epoch) else adamw
        base_lr = config.sgd_lr if optimizer is sgd else config.lr
        seen, loss_sum, correct, tic = 0, 0.0, 0, time.time()
        bar = tqdm(
            train_loader, desc=f"epoch {epoch + 1}/{config.epochs}", disable=not accelerator.is_local_main_process
        )
        steps_this_epoch = 0
        for x, y, _ in bar:
            if config.channels_last and x.dim() == 4:
                x = x.contiguous(memory_format=torch.channels_last)
            if mixup is not None and len(y) % 2 == 0:
                x, targets = mixup(x, y)
            else:
                targets = smooth_one_hot(y, len(labels), config.label_smoothing)
            with accelerator.accumulate(net):
                with accelerator.autocast():
                    logits = net(x)
                loss = soft_cross_entropy(logits, targets, weights)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    if config.grad_clip:
                        accelerator.clip_grad_norm_(params, config.grad_clip)
                    lr = lr_at(state.step, total_steps, warmup_steps, base_lr, min(config.min_lr, base_lr))
                    for group in optimizer.param_groups:
                        group["lr"] = lr
                optimizer.step()
                optimizer.zero_grad()
            if accelerator.sync_gradients:
                state.step += 1
                steps_this_epoch += 1
                if ema is not None:
                    ema.update(model, step=state.step)
            seen += len(y)
            loss_sum += float(loss.detach()) * len(y)
            correct += int((logits.argmax(-1) == y).sum())
            bar.set_postfix(loss=f"{loss_sum / seen:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.2e}")
            if config.max_steps_per_epoch and steps_this_epoch >= config.max_steps_per_epoch:
                break
        train_seconds = time.time() - tic

        val_logits, val_y, val_idx = predict(eval_model, val_loader, accelerator, desc="validation")
        val = quick_metrics(val_logits, val_y, len(labels))
        row = {
            "epoch": epoch + 1,
            "step": state.step,
            "optimizer": "sgd" if optimizer is sgd else "adamw",
            "frozen_backbone": frozen,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum / max(seen, 1),
            "train_top1": correct / max(seen, 1),
            "train_images_per_s": seen * accelerator.num_processes / max(train_seconds, 1e-9),
            **{f"val_{k}": v for k, v in val.items()},
            "val_unique_images": int(len(np.unique(val_idx))),
        }
        state.history.append(row)
        if config.log_with:
            accelerator.log({k: v for k, v in row.items() if isinstance(v, int | float)}, step=state.step)
        value = row[config.monitor]
        improved = _improved(value, state.best, config.monitor)
        if improved:
            state.best, state.best_epoch, state.bad_epochs = value, epoch + 1, 0
        else:
            state.bad_epochs += 1
        state.epoch = epoch + 1
        accelerator.wait_for_everyone()
        if accelerator.is_main_process:
            _write_history(out, state.history)
            if improved:
                save_model(
                    accelerator.unwrap_model(eval_model),
                    out / "best",
                    labels,
                    extra={"model_id": config.model_id or config.name, "best_epoch": epoch + 1},
                )
        _save_checkpoint(accelerator, out, epoch + 1, config.keep_checkpoints)
        accelerator.print(
            f"epoch {epoch + 1}: train loss {row['train_loss']:.3f} top1 {row['train_top1']:.3f} | "
            f"val loss {val['loss']:.3f} top1 {val['top1']:.3f} top5 {val['top5']:.3f} | "
            f"{row['train_images_per_s']:.1f} img/s"
        )
        epochs_this_call += 1
        if config.early_stopping_patience is not None and state.bad_epochs >= config.early_stopping_patience:
            accelerator.print(f"early stopping: no {config.monitor} improvement for {state.bad_epochs} epochs")
            break

    accelerator.wait_for_everyone()
    finished = state.epoch >= config.epochs or (
        config.early_stopping_patience is not None and state.bad_epochs >= config.early_stopping_patience
    )
    result = {
        "epochs_done": state.epoch,
        "steps": state.step,
        "best_epoch": state.best_epoch,
        config.monitor: state.best,
        "history": state.history,
        "finished": finished,
        "train_minutes": (time.time() - started) / 60,
    }
    if not finished:
        accelerator.end_training()
        return result

    final = finish(
        config,
        data,
        accelerator,
        base=base if config.save_trainable_only else None,
        keep_keys=trained_keys if config.save_trainable_only else None,
        history=state.history,
    )
    result.update(final)
    if accelerator.is_main_process:
        (out / "result.json").write_text(
            json.dumps({k: v for k, v in result.items() if k != "history"}, indent=2, default=str) + "\n"
        )
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
) -> dict:
    """Best model -> temperature + conformal threshold on validation -> ``model/`` -> test evaluation."""
    from timm.data import create_transform

    from ..evaluate import evaluate_loaded
    from ..metrics import fit_temperature, softmax
    from ..models import load_model, save_model
    from ..safety import conformal_qhat

    out = config.out_dir()
    best = load_model(f"local-dir:{out / 'best'}")
    eval_tf = create_transform(**best.data_config, is_training=False)
    loader = torch.utils.data.DataLoader(
        data[config.val_split].with_transform(eval_tf),
        batch_size=config.eval_batch_size or config.batch_size * 2,
        num_workers=config.num_workers,
    )
    logits, y, _ = predict(best.model, accelerator.prepare(loader), accelerator, desc="calibration")
    temperature = fit_temperature(logits, y)
    qhat = conformal_qhat(softmax(logits, temperature), y, config.conformal_coverage) if len(y) else None
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
                "thresholds": {"conformal_qhat": qhat, "conformal_coverage": config.conformal_coverage},
                "trained_on": f"{data.source} ({config.train_split} split)",
                "train_config": {k: v for k, v in config.to_dict().items() if v is not None},
            },
            training_images=[k for k in data[config.train_split].keys if _is_content_hash(k)] or None,
        )
    accelerator.wait_for_everyone()
    result: dict = {"temperature": temperature, "conformal_qhat": qhat, "model_dir": str(model_dir)}
    if config.test_split:
        loaded = load_model(f"local-dir:{model_dir}")
        test = evaluate_loaded(
            loaded,
            data,
            config.test_split,
            out_dir=out / "eval",
            history=history,
            accelerator=accelerator,
            batch_size=config.eval_batch_size or config.batch_size * 2,
            workers=config.num_workers,
        )
        result["test"] = test
        if accelerator.is_main_process:
            (model_dir / "metrics.json").write_text(
                json.dumps({"test": test, "validation_history": history, "temperature": temperature}, indent=2) + "\n"
            )
    if accelerator.is_main_process and (config.export_onnx or config.push_to_hub):
        from ..export import export_onnx, push_to_hub

        result["onnx"] = export_onnx(load_model(f"local-dir:{model_dir}"), model_dir / "model.onnx")
        if config.push_to_hub:
            result["pushed"] = push_to_hub(model_dir, config.push_to_hub, dataset=data.source)
    return result
