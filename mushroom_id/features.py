"""Pooled backbone features for many image files, batched, with a progress bar and a cache."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from .images import ImageError, load_image


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


@torch.inference_mode()
def pooled_features(
    model: nn.Module, transform, paths: Sequence[str], batch_size: int = 32, workers: int = 2, desc: str = "features"
) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, D) before the classifier, ok mask (N,)) for every path."""
    loader = torch.utils.data.DataLoader(
        ImageFiles(paths, transform), batch_size=batch_size, num_workers=workers, shuffle=False
    )
    feats, oks = [], []
    model.eval()
    for x, ok in tqdm(loader, desc=desc, unit="batch"):
        feats.append(model.forward_head(model.forward_features(x), pre_logits=True).float().numpy())
        oks.append(ok.numpy())
    return np.concatenate(feats), np.concatenate(oks).astype(bool)


def cached_features(
    model: nn.Module, transform, paths: Sequence[str], keys: Sequence[str], cache: Path, tag: str
) -> np.ndarray:
    """Features for ``paths``, reusing a .npz cache keyed by ``keys`` (e.g. sha256) and ``tag``."""
    cache.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(("\n".join(keys) + tag).encode()).hexdigest()[:16]
    file = cache / f"features-{tag}-{digest}.npz"
    if file.is_file():
        return np.load(file)["features"]
    features, ok = pooled_features(model, transform, paths)
    if not ok.all():
        bad = [p for p, good in zip(paths, ok, strict=True) if not good]
        raise ImageError(f"{len(bad)} photos could not be read, e.g. {bad[:3]}")
    tmp = file.with_suffix(".tmp.npz")
    np.savez(tmp, features=features)
    tmp.replace(file)  # atomic: an interrupted run never leaves a half-written cache
    return features
