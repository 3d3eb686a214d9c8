"""From photos to a structured, JSON-serialisable answer. No UI code here.

``Predictor(load_model()).predict(photo)`` returns::

    {is_fungus, fungus_score, candidates: [{species, genus, common_name, probability,
     edibility, lookalikes}], prediction_set: {species, coverage}, genus_answer,
     confident, warnings: [{kind, species, edibility, message, ...}], summary, message, disclaimer,
     model: {id, num_species}, photos}
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from .catalog import DANGEROUS, Catalog, default_catalog
from .images import ImageSource, load_image
from .models import LITE0_PIP, LITE_PIP, LoadedModel, imagenet_backbone
from .onnx_runtime import THREADS_ENV, ServedNetwork, resolve_runtime, shared_trunk_blocks
from .safety import (
    DISCLAIMER,
    EDIBILITY_TEXT,
    Thresholds,
    combine_observation,
    danger_summary,
    edibility_tag,
    genus_answer,
    genus_of,
    prediction_set,
    species_warnings,
)

# ImageNet-1k classes that show fungi: mushroom, coral fungus, agaric, gyromitra,
# stinkhorn, earthstar, hen-of-the-woods, bolete.
IMAGENET_FUNGUS_CLASSES = (947, 991, 992, 993, 994, 995, 996, 997)


# What helps an unsure answer (the photos a mycologist asks for); the several-photos tab combines them.
MORE_PHOTOS_HINT = (
    "More photos of the same mushroom would help: the gills or pores under the cap, the stem down to its base "
    "(dig it out), and the whole mushroom where it grows."
)


class FungusGate:
    """Is there a fungus in the photo? Probability mass of ImageNet's fungus classes under an
    offline ImageNet-pretrained EfficientNet-Lite (Lite0 unless the species model is a frozen
    Lite of another size: then its own backbone, so one forward serves both)."""

    def __init__(self, package: str = LITE0_PIP):
        self.model = imagenet_backbone(package=package)

    def score_from_logits(self, imagenet_logits: torch.Tensor) -> np.ndarray:
        probs = imagenet_logits.float().softmax(dim=-1)
        return probs[:, list(IMAGENET_FUNGUS_CLASSES)].sum(dim=-1).cpu().numpy()


class Predictor:
    """Loads nothing itself: give it a :class:`LoadedModel` (from ``load_model``).

    ``runtime``: ``"torch"`` (default) or ``"onnx"`` (ONNX Runtime, see :mod:`mushroom_id.onnx_runtime`);
    ``None`` reads ``$MUSHROOM_RUNTIME``. Only the network's forward changes; everything else is shared.
    ``threads``: intra-op threads per prediction (``None`` reads ``$MUSHROOM_THREADS``; unset keeps
    torch's default of one per core, and 1 for ONNX Runtime). Process-wide for PyTorch
    (``torch.set_num_threads``), which the ONNX runtime also sets (only preprocessing runs in torch).
    A server running N predictions at once on C cores wants C // N: measured in bench/README.md,
    oversubscribed threads make even the small preprocessing ops slow.
    """

    def __init__(
        self,
        loaded: LoadedModel,
        catalog: Catalog | None = None,
        use_gate: bool = True,
        runtime: str | None = None,
        threads: int | None = None,
    ):
        self.loaded = loaded
        self.catalog = catalog or default_catalog()
        self.transform = loaded.transform()
        self.thresholds = Thresholds.from_config(loaded.config)
        base = loaded.config.get("base_weights")
        # A frozen pip Lite backbone computes the same features the gate needs: one forward, two heads.
        self._shared_backbone = bool(use_gate and base in LITE_PIP and loaded.config.get("frozen_backbone"))
        self.gate = FungusGate(base if self._shared_backbone else LITE0_PIP) if use_gate else None
        # A partially fine-tuned Lite0 shares its first blocks with the gate: run them once per photo.
        self._trunk_blocks = 0
        if self.gate and not self._shared_backbone:
            self._trunk_blocks = shared_trunk_blocks(loaded.model, self.gate.model)
        if self.gate and loaded.config.get("format") == "keras":  # 299 px in: the gate reads its own 224 px view
            from .keras_models import gate_view

            self.gate.model = gate_view(self.gate.model)
        self.genera = [genus_of(name) for name in loaded.labels]
        self._index = {name: i for i, name in enumerate(loaded.labels)}
        self.runtime = resolve_runtime(runtime)
        threads = threads or int(os.environ.get(THREADS_ENV) or 0) or None
        if threads or self.runtime == "onnx":  # with ONNX, torch only preprocesses: small ops, one thread
            torch.set_num_threads(threads or 1)
        self._network = self.served_network()
        self._onnx = None
        if self.runtime == "onnx":
            from .onnx_runtime import OnnxNetwork

            self._onnx = OnnxNetwork(self._network, tuple(loaded.data_config["input_size"]), threads=threads)

    def served_network(self) -> ServedNetwork:
        """The species model and the gate's ImageNet head as one module (what ONNX exports)."""
        return ServedNetwork(
            self.loaded.model, self.gate.model if self.gate else None, self._shared_backbone, self._trunk_blocks
        ).eval()

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
        logits, *gate_logits = (self._onnx or self._network)(x)
        fungus = self.gate.score_from_logits(gate_logits[0]) if gate_logits and self.gate else None
        logp = torch.log_softmax(logits.float() / self.loaded.temperature, dim=-1)
        return logp.cpu().numpy().astype(np.float64), fungus

    def predict(self, image: ImageSource, top_k: int = 5) -> dict:
        return self.predict_observation([image], top_k=top_k)

    def predict_observation(self, images: Sequence[ImageSource], top_k: int = 5) -> dict:
        """One answer for one or more photos of the same specimen."""
        if not images:
            raise ValueError("no photo given")
        logp, fungus = self.log_probs(images)
        probs = combine_observation(logp)
        fungus_score = None if fungus is None else float(np.mean(fungus))
        return self.answer(probs, fungus_score, photos=len(images), top_k=top_k)

    def answer(self, probs: np.ndarray, fungus_score: float | None, photos: int = 1, top_k: int = 5) -> dict:
        """Turn a probability vector into the structured result (pure apart from the catalog)."""
        t = self.thresholds
        result: dict = {
            "is_fungus": True if fungus_score is None else fungus_score >= t.fungus,
            "fungus_score": None if fungus_score is None else round(fungus_score, 4),
            "candidates": [],
            "prediction_set": {"species": [], "coverage": t.conformal_coverage},
            "genus_answer": None,
            "confident": False,
            "warnings": [],
            "summary": "",
            "message": "",
            "disclaimer": DISCLAIMER,
            "model": {"id": self.loaded.model_id, "num_species": self.loaded.num_classes},
            "photos": photos,
        }
        if not result["is_fungus"]:
            result["message"] = (
                "This does not look like a mushroom or other fungus. Take a photo of the mushroom itself "
                "(cap, gills or pores, and stem), filling most of the frame."
            )
            result["warnings"].append(
                {"kind": "not_fungus", "species": None, "edibility": None, "message": result["message"]}
            )
            return result

        order = np.argsort(-probs)[:top_k]
        result["candidates"] = [self.candidate(int(i), float(probs[i])) for i in order]
        in_set = prediction_set(probs, t.conformal_qhat)
        result["prediction_set"]["species"] = [self.labels[i] for i in in_set]
        top = result["candidates"][0]
        result["confident"] = top["probability"] >= t.confident
        result["genus_answer"] = genus_answer(probs, self.labels, t)

        plausible = [c["species"] for c in result["candidates"]] + result["prediction_set"]["species"]
        plausible = sorted(set(plausible), key=lambda n: -probs[self._index[n]])
        # the top's lookalikes too, when the model knows them: that orders them within their danger level
        in_play = plausible + [look["species"] for look in top["lookalikes"]]
        shares = {n: round(float(probs[self._index[n]]), 4) for n in in_play if n in self._index}
        result["warnings"] = species_warnings(plausible, self.catalog, top["species"], shares)
        result["summary"] = danger_summary(result["warnings"], top["species"])
        # The headline names the danger of the most likely species ("— POISONOUS —"); a confident
        # answer also says inedible / edibility unknown, and never "edible" on its own.
        danger = f" — {EDIBILITY_TEXT[top['edibility']]} —" if top["edibility"] in DANGEROUS else ""
        if result["confident"]:
            tag = edibility_tag(top["edibility"])
            if tag:
                result["message"] = f"Most likely {top['species']} — {tag} — {top['probability']:.0%}."
            else:
                result["message"] = f"Most likely {top['species']} ({top['probability']:.0%})."
        elif result["genus_answer"]:
            g = result["genus_answer"]
            result["message"] = (
                f"No single species is clear; most likely a species of {g['genus']} "
                f"({g['probability']:.0%} together): answering at genus level, {g['name'].rstrip('.')}."
            )
            if danger:
                result["message"] += f" The best guess, {top['species']}{danger} has {top['probability']:.0%}."
        else:
            result["message"] = (
                f"Not confident: the best guess, {top['species']}{danger or ','} has only "
                f"{top['probability']:.0%}. The mushroom may not be one of the species this model knows. "
                f"{MORE_PHOTOS_HINT}"
            )
            result["warnings"].append(
                {"kind": "not_confident", "species": None, "edibility": None, "message": result["message"]}
            )
        return result

    def candidate(self, index: int, probability: float) -> dict:
        name = self.labels[index]
        in_catalog = name in self.catalog
        status = self.catalog.edibility(name)
        species = self.catalog.get(name) if in_catalog else None
        return {
            "species": name,
            "genus": self.genera[index],
            "common_name": species.common_name if species else "",
            "probability": round(probability, 4),
            "edibility": status,
            "edibility_text": EDIBILITY_TEXT[status],
            "lookalikes": [{"species": s.name, "edibility": s.edibility} for s in self.catalog.lookalikes(name)]
            if in_catalog
            else [],
        }
