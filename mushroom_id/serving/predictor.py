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
from mushroom_id.core.questions import FieldEvidence, field_settings, parse_answers, skipped_questions
from mushroom_id.core.result import ModelInfo, Result
from mushroom_id.core.safety import Thresholds, answer, combine_observation
from mushroom_id.core.traits import Traits, default_traits
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
        traits: Traits | None = None,
        trait_lookalikes: bool = True,
    ):
        self.loaded = loaded
        self.catalog = catalog or default_catalog()
        # the trait table: field questions, and "similar features" lookalikes of the top candidate
        # (trait_lookalikes=False: only the documented confusions are named)
        self.traits = traits or default_traits()
        self.trait_lookalikes = trait_lookalikes
        self.transform = loaded.transform()
        self.thresholds = Thresholds.from_config(loaded.config)
        self.runtime = resolve_runtime(runtime)
        self.network: ServedNetwork = served_network(loaded, use_gate)
        self._index = {name: i for i, name in enumerate(loaded.labels)}
        _, self.strategy, _ = field_settings(loaded.config)
        self.field = FieldEvidence.from_config(loaded.labels, loaded.config, self.traits, self.catalog.resolve)
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

    def predict(
        self, image: ImageSource, top_k: int = 5, answers: dict[str, str] | None = None, can_wait: bool = False
    ) -> Result:
        return self.predict_observation([image], top_k=top_k, answers=answers, can_wait=can_wait)

    def predict_observation(
        self,
        images: Sequence[ImageSource],
        top_k: int = 5,
        answers: dict[str, str] | None = None,
        can_wait: bool = False,
    ) -> Result:
        """One answer for one or more photos of the same specimen, re-weighted by field ``answers``
        (question key -> value, see :mod:`mushroom_id.core.questions`; checked before the network runs).
        ``can_wait``: the person can wait hours for a spore print (offered first when it is worth most)."""
        parsed = parse_answers(answers)
        probs, fungus_score = self.photo_probs(images)
        skip = skipped_questions(answers)
        return self.answer(probs, fungus_score, len(images), top_k, parsed, skip=skip, can_wait=can_wait)

    def photo_probs(self, images: Sequence[ImageSource]) -> tuple[np.ndarray, float | None]:
        """The photos' combined probabilities and mean fungus score: what :meth:`refine` re-weights."""
        if not images:
            raise ValueError("no photo given")
        logp, fungus = self.log_probs(images)
        return combine_observation(logp), (None if fungus is None else float(np.mean(fungus)))

    def refine(
        self,
        probs: np.ndarray,
        fungus_score: float | None,
        answers: dict[str, str] | None,
        photos: int = 1,
        top_k: int = 5,
        can_wait: bool = False,
    ) -> Result:
        """The answer again with other field answers, from cached photo probabilities: no network."""
        parsed, skip = parse_answers(answers), skipped_questions(answers)
        return self.answer(np.asarray(probs), fungus_score, photos, top_k, parsed, skip=skip, can_wait=can_wait)

    def answer(
        self,
        probs: np.ndarray,
        fungus_score: float | None,
        photos: int = 1,
        top_k: int = 5,
        answers: dict[str, str] | None = None,
        skip: Sequence[str] = (),
        can_wait: bool = False,
    ) -> Result:
        """Turn a probability vector into the structured result (:func:`core.safety.answer`); ``skip``:
        questions answered "not sure", not offered again; ``can_wait``: the spore print may come first."""
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
            field=self.field,
            answers=answers,
            strategy=self.strategy,
            traits=self.traits if self.trait_lookalikes else None,
            skip=skip,
            can_wait=can_wait,
        )
