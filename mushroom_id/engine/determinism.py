"""Randomness keyed by position, so that a run killed at any step and resumed is the same run.

Every random draw of training depends only on (seed, epoch, sample or batch index):
augmentation per sample (:class:`SeededDataset`: the same crop and colours whichever process or
DataLoader worker loads it, and whether or not the batches before it were loaded), dropout, drop
path and mixup per batch (:func:`seed_everything` with :func:`seed_from` before each forward).
The data order comes from Accelerate's seedable sampler (seed + epoch), and a resumed epoch skips
the batches it has done. Nothing depends on RNG state carried from one step to the next.
"""

from __future__ import annotations

import hashlib
import random

import numpy as np
import torch


def seed_from(*keys: int | str) -> int:
    """A 63-bit seed from a tuple of keys (stable across processes and Python runs)."""
    digest = hashlib.blake2b(repr(keys).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (timm's RandAugment uses the first two)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class SeededDataset(torch.utils.data.Dataset):
    """Wraps a dataset whose transform is random: item ``i`` of epoch ``e`` is drawn with the
    generators seeded from ``(seed, e, i)``."""

    def __init__(self, dataset, seed: int):
        self.dataset, self.seed = dataset, seed
        # in shared memory: persistent DataLoader workers hold their own copy of this dataset and must
        # still see each new epoch (a plain attribute would stay at the epoch they were started in)
        self._epoch = torch.zeros((), dtype=torch.int64).share_memory_()

    @property
    def epoch(self) -> int:
        return int(self._epoch)

    def set_epoch(self, epoch: int) -> None:
        self._epoch.fill_(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        seed_everything(seed_from(self.seed, self.epoch, int(i)))
        return self.dataset[i]
