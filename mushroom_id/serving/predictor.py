"""From photos to the typed answer (:class:`mushroom_id.core.result.Result`). No UI code here.

``Predictor(load_model()).predict(photo)`` decodes and preprocesses the photos with the model's own
transform, runs the served network (species model + fungus gate, :mod:`mushroom_id.core.network`)
in PyTorch or ONNX Runtime, combines several photos of one specimen, and hands the probabilities to
the safety policy (:func:`mushroom_id.core.safety.answer`).
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from mushroom_id.core.catalog import Catalog, default_catalog
from mushroom_id.core.images import ImageSource, load_image
from mushroom_id.core.models import LoadedModel
from mushroom_id.core.network import ServedNetwork, fungus_scores, served_network
from mushroom_id.core.result import ModelInfo, Result
from mushroom_id.core.safety import Thresholds, answer, combine_observation, default_traits
from mushroom_id.serving.onnx import THREADS_ENV, resolve_runtime


def configure_threads(threads: int | None = None, runtime: str | None = None) -> int | None:
    """Set PyTorch's intra-op threads for this serving process (``None`` reads ``$MUSHROOM_THREADS``;
    unset keeps torch's default of one per core, and 1 with ONNX Runtime, where torch only
    preprocesses). Process-wide, so the app and the CLI call it once at start, never a Predictor.
    A server running N predictions at once on C cores wants C // N (bench/README.md)."""
    threads = threads or int(os.environ.get(THREADS_ENV) or 0) or None
    if threads or resolve_runtime(runtime) == "onnx":
        torch.set_num_threads(threads or 1)
    return threads


class Predictor:
    """Loads nothing itself: give it a :class:`LoadedModel` (from ``load_model``).

    ``runtime``: ``"torch"`` (default) or ``"onnx"`` (ONNX Runtime, see :mod:`mushroom_id.serving.onnx`);
    ``None`` reads ``$MUSHROOM_RUNTIME``. Only the network's forward changes; everything else is shared.
    ``threads``: intra-op threads of the ONNX Runtime session (``None`` reads ``$MUSHROOM_THREADS``, else 1).
    The Predictor never changes process-wide settings: see :func:`configure_threads`.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        catalog: Catalog | None = None,
        use_gate: bool = True,
        runtime: str | None = None,
        threads: int | None = None,
        traits=None,
        use_traits: bool = True,
    ):
        self.loaded = loaded
        self.catalog = catalog or default_catalog()
        # the trait table behind "similar features" lookalikes: the given one, else the shipped one
        # (when installed); use_traits=False: none (only the documented confusions are named)
        self.traits = traits if traits is not None else (default_traits() if use_traits else None)
        self.transform = loaded.transform()
        self.thresholds = Thresholds.from_config(loaded.config)
        self.runtime = resolve_runtime(runtime)
        self.network: ServedNetwork = served_network(loaded, use_gate)
        self._index = {name: i for i, name in enumerate(loaded.labels)}
        self._onnx = None
        if self.runtime == "onnx":
            from mushroom_id.serving.onnx import OnnxNetwork

            self._onnx = OnnxNetwork(self.network, tuple(loaded.data_config["input_size"]), threads=threads)

    @property
    def labels(self) -> list[str]:
        return self.loaded.labels

    def batch(self, images: Sequence[ImageSource]) -> torch.Tensor:
        return torch.stack([self.transform(load_image(img)) for img in images])

    def log_probs(self, images: Sequence[ImageSource]) -> tuple[np.ndarray, np.ndarray | None]:
        """Calibrated log-probabilities (N, C) and fungus scores (N,) (None without a gate)."""
        return self.forward(self.batch(images))

    @torch.inference_mode()
    def forward(self, x: torch.Tensor) -> tuple[np.ndarray, np.ndarray | None]:
        """:meth:`log_probs` for a batch already preprocessed with :attr:`transform`."""
        logits, *gate_logits = (self._onnx or self.network)(x)
        fungus = fungus_scores(gate_logits[0]) if gate_logits else None
        logp = torch.log_softmax(logits.float() / self.loaded.temperature, dim=-1)
        return logp.cpu().numpy().astype(np.float64), fungus

    def predict(self, image: ImageSource, top_k: int = 5) -> Result:
        return self.predict_observation([image], top_k=top_k)

    def predict_observation(self, images: Sequence[ImageSource], top_k: int = 5) -> Result:
        """One answer for one or more photos of the same specimen."""
        if not images:
            raise ValueError("no photo given")
        logp, fungus = self.log_probs(images)
        probs = combine_observation(logp)
        fungus_score = None if fungus is None else float(np.mean(fungus))
        return self.answer(probs, fungus_score, photos=len(images), top_k=top_k)

    def answer(self, probs: np.ndarray, fungus_score: float | None, photos: int = 1, top_k: int = 5) -> Result:
        """Turn a probability vector into the structured result (:func:`core.safety.answer`)."""
        model: ModelInfo = {"id": self.loaded.model_id, "num_species": self.loaded.num_classes}
        return answer(
            probs,
            fungus_score,
            self.labels,
            self.catalog,
            self.thresholds,
            model,
            photos,
            top_k,
            self._index,
            traits=self.traits,
        )
