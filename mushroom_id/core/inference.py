"""The one batched inference loop: a network over many photos, with a progress bar and a cache.

Evaluation (``engine.comparison``), training's validation and calibration (``engine.loop``), trust
measurement (``engine.trust``), frozen features (``engine.candidates``, the nearest-centroid floor)
and the trunk cache of partial fine-tuning all run :func:`run`; :func:`cached` keeps its outputs in
``~/.cache/mushroom_id`` under one key scheme: what was computed (``tag``), on which photos (their
content hashes) and with which weights (:func:`core.models.fingerprint`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mushroom_id.core.images import ImageError, load_image
from mushroom_id.core.io import atomic_path
from mushroom_id.core.models import fingerprint
from mushroom_id.core.paths import CACHE_DIR


class ImageFiles(torch.utils.data.Dataset):
    """Image files through ``transform``: (tensor, True), or (zeros, False) for an unreadable file."""

    def __init__(self, paths: Sequence[str], transform):
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i):
        try:
            x = self.transform(load_image(self.paths[i]))
            self._shape = x.shape
            return x, True
        except ImageError:
            return torch.zeros(getattr(self, "_shape", (3, 224, 224))), False


class PooledFeatures(nn.Module):
    """A timm model's pooled features before its classifier."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)


@dataclass
class Outputs:
    """What :func:`run` returns: one array per network output, and per photo its label and index
    (datasets) or whether it could be read (file lists)."""

    arrays: list[np.ndarray]
    y: np.ndarray
    index: np.ndarray
    ok: np.ndarray

    @property
    def first(self) -> np.ndarray:
        return self.arrays[0]


@torch.inference_mode()
def run(
    network: nn.Module | Callable,
    images,
    transform=None,
    batch_size: int = 32,
    workers: int = 2,
    accelerator=None,
    desc: str = "predict",
    dtype: torch.dtype = torch.float32,
) -> Outputs:
    """Run ``network`` (one tensor or a tuple out) over ``images``: a dataset with ``with_transform``
    (``engine.data.LabeledImages``: (x, y, index) items), a list of files (unreadable ones get
    ``ok=False``), or a ready DataLoader (``transform`` unused). With an Accelerator and a prepared
    loader each process sees its shard and every process gets every photo once (gathered)."""
    if isinstance(images, torch.utils.data.DataLoader):  # accelerate's prepared loaders are DataLoaders too
        loader = images
    else:
        dataset = (
            images.with_transform(transform) if hasattr(images, "with_transform") else ImageFiles(images, transform)
        )
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False)
    was_training = getattr(network, "training", False)
    if isinstance(network, nn.Module):
        network.eval()
        params = next(network.parameters(), None)
        device = params.device if params is not None else torch.device("cpu")
    else:
        device = torch.device("cpu")
    outs: list[list[torch.Tensor]] = []
    ys, idxs, oks = [], [], []
    seen = 0  # photos before this batch (the index of a file list)
    show = accelerator is None or accelerator.is_local_main_process
    for x, second, *rest in tqdm(loader, desc=desc, unit="batch", leave=False, disable=not show):
        out = network(x.to(device))
        out = [o.to(dtype) for o in (out if isinstance(out, tuple | list) else (out,))]
        if second.dtype == torch.bool:  # a file list: (x, ok)
            y, idx, ok = torch.full((len(x),), -1), torch.arange(seen, seen + len(x)), second
        else:
            y, idx, ok = second, rest[0], torch.ones(len(x), dtype=torch.bool)
        if accelerator is not None:  # gathered on the accelerator's device (NCCL needs the GPU)
            moved = [t.to(accelerator.device) for t in (*out, y, idx)]
            *out, y, idx = accelerator.gather_for_metrics(tuple(moved))
            ok = torch.ones(len(y), dtype=torch.bool)
        seen += len(x)
        outs.append([o.cpu() for o in out])
        ys.append(y.cpu())
        idxs.append(idx.cpu())
        oks.append(ok.cpu())
    if isinstance(network, nn.Module):
        network.train(was_training)
    if not outs:
        empty = np.zeros(0, np.int64)
        return Outputs([np.zeros((0, 0), np.float32)], empty, empty, np.zeros(0, bool))
    arrays = [torch.cat([o[k] for o in outs]).numpy() for k in range(len(outs[0]))]
    return Outputs(arrays, torch.cat(ys).numpy(), torch.cat(idxs).numpy(), torch.cat(oks).numpy().astype(bool))


def cache_file(
    tag: str, keys: Sequence[str], network: nn.Module, cache_dir: Path | None = None, weights: str | None = None
) -> Path:
    """Where :func:`cached` keeps ``tag``'s outputs of ``network`` on the photos ``keys`` (``weights``: the
    network's :func:`fingerprint`, when the caller already has it)."""
    h = hashlib.sha256("\n".join([tag, *keys]).encode())
    h.update((weights or fingerprint(network)).encode())
    return Path(cache_dir or CACHE_DIR) / f"{tag}-{h.hexdigest()[:16]}.npz"


def cached(
    tag: str,
    keys: Sequence[str],
    network: nn.Module,
    images,
    transform,
    cache_dir: Path | None = None,
    weights: str | None = None,
    **kwargs,
) -> list[np.ndarray]:
    """:func:`run`'s output arrays, from the cache when this network already ran on these photos
    (``keys``: their content hashes or paths). Every photo must be readable."""
    file = cache_file(tag, keys, network, cache_dir, weights)
    if file.is_file():
        with np.load(file) as z:
            return [z[f"out{k}"] for k in range(len(z.files))]
    result = run(network, images, transform, desc=tag, **kwargs)
    if not result.ok.all():
        bad = [p for p, good in zip(images, result.ok, strict=True) if not good]
        raise ImageError(f"{len(bad)} photos could not be read, e.g. {bad[:3]}")
    with atomic_path(file) as tmp, open(tmp, "wb") as f:  # a file object: np.savez adds no suffix
        np.savez(f, **{f"out{k}": a for k, a in enumerate(result.arrays)})
    return result.arrays


def cached_features(model: nn.Module, transform, images, keys: Sequence[str], tag: str) -> np.ndarray:
    """Pooled features (N, D) of ``images`` under a timm ``model`` (see :func:`cached`)."""
    return cached(f"features-{tag}", keys, PooledFeatures(model), images, transform)[0]


def predict(
    model: nn.Module, loader, accelerator=None, desc: str = "eval"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(logits (N, C) float32, labels (N,), sample indices (N,)) of a model over a labelled loader
    (:func:`run`; gathered over processes with an Accelerator)."""
    out = run(model, loader, accelerator=accelerator, desc=desc)
    return out.first, out.y, out.index
