"""Pooled backbone features for many image files, batched, with a progress bar and a cache."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from mushroom_id.core.images import ImageError, load_image


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
    model: nn.Module, transform, images, batch_size: int = 32, workers: int = 2, desc: str = "features"
) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, D) before the classifier, ok mask (N,)) for every image.

    ``images``: a list of file paths (unreadable files give ok=False) or a dataset with
    ``with_transform`` (``training.data.LabeledImages``, whose photos must all be readable).
    """
    dataset = images.with_transform(transform) if hasattr(images, "with_transform") else ImageFiles(images, transform)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=False)
    feats, oks = [], []
    model.eval()
    for x, second, *_ in tqdm(loader, desc=desc, unit="batch"):
        feats.append(model.forward_head(model.forward_features(x), pre_logits=True).float().numpy())
        oks.append(second.numpy() if second.dtype == torch.bool else np.ones(len(x), dtype=bool))
    if not feats:
        return np.zeros((0, model.num_features), np.float32), np.zeros(0, dtype=bool)
    return np.concatenate(feats), np.concatenate(oks).astype(bool)


def cached_features(model: nn.Module, transform, images, keys: Sequence[str], cache: Path, tag: str) -> np.ndarray:
    """Features of ``images`` (paths or a dataset, see :func:`pooled_features`), reusing a .npz cache
    keyed by ``keys`` (content hashes), the model's weights and ``tag`` (name the transform there)."""
    cache.mkdir(parents=True, exist_ok=True)
    h = hashlib.sha256(("\n".join(keys) + tag).encode())
    for name, t in sorted(model.state_dict().items())[:8]:  # a few tensors identify the weights
        h.update(name.encode() + t.detach().cpu().float().numpy().tobytes()[:4096])
    file = cache / f"features-{tag}-{h.hexdigest()[:16]}.npz"
    if file.is_file():
        return np.load(file)["features"]
    features, ok = pooled_features(model, transform, images)
    if not ok.all():
        bad = [p for p, good in zip(images, ok, strict=True) if not good]
        raise ImageError(f"{len(bad)} photos could not be read, e.g. {bad[:3]}")
    tmp = file.with_suffix(".tmp.npz")
    np.savez(tmp, features=features)
    tmp.replace(file)  # atomic: an interrupted run never leaves a half-written cache
    return features
