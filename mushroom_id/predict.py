"""From photos to a structured, JSON-serialisable answer. No UI code here.

``Predictor(load_model()).predict(photo)`` returns::

    {is_fungus, fungus_score, candidates: [{species, genus, common_name, probability,
     edibility, lookalikes}], prediction_set: {species, coverage}, genus_answer,
     confident, warnings: [{kind, species, edibility, message}], message, disclaimer,
     model: {id, num_species}, photos}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from .catalog import Catalog, default_catalog
from .images import ImageSource, load_image
from .models import LITE0_PIP, LoadedModel, imagenet_backbone
from .safety import (
    DISCLAIMER,
    EDIBILITY_TEXT,
    Thresholds,
    combine_observation,
    genus_answer,
    genus_of,
    prediction_set,
    species_warnings,
)

# ImageNet-1k classes that show fungi: mushroom, coral fungus, agaric, gyromitra,
# stinkhorn, earthstar, hen-of-the-woods, bolete.
IMAGENET_FUNGUS_CLASSES = (947, 991, 992, 993, 994, 995, 996, 997)


class FungusGate:
    """Is there a fungus in the photo? Probability mass of ImageNet's fungus classes
    under the offline ImageNet-pretrained EfficientNet-Lite0."""

    def __init__(self):
        self.model = imagenet_backbone()
        self.classifier = self.model.get_classifier()

    def score_from_logits(self, imagenet_logits: torch.Tensor) -> np.ndarray:
        probs = imagenet_logits.float().softmax(dim=-1)
        return probs[:, list(IMAGENET_FUNGUS_CLASSES)].sum(dim=-1).cpu().numpy()

    def score_from_features(self, pooled: torch.Tensor) -> np.ndarray:
        return self.score_from_logits(self.classifier(pooled))

    def score(self, batch: torch.Tensor) -> np.ndarray:
        return self.score_from_logits(self.model(batch))


class Predictor:
    """Loads nothing itself: give it a :class:`LoadedModel` (from ``load_model``)."""

    def __init__(self, loaded: LoadedModel, catalog: Catalog | None = None, use_gate: bool = True):
        self.loaded = loaded
        self.catalog = catalog or default_catalog()
        self.transform = loaded.transform()
        self.thresholds = Thresholds.from_config(loaded.config)
        self.gate = FungusGate() if use_gate else None
        # A frozen Lite0 backbone computes the same features the gate needs: one forward, two heads.
        self._shared_backbone = bool(
            self.gate and loaded.config.get("base_weights") == LITE0_PIP and loaded.config.get("frozen_backbone")
        )
        self.genera = [genus_of(name) for name in loaded.labels]
        self._index = {name: i for i, name in enumerate(loaded.labels)}
        torch.set_grad_enabled(False)

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
        model = self.loaded.model
        fungus = None
        if self._shared_backbone:
            pooled = model.forward_head(model.forward_features(x), pre_logits=True)
            logits = model.get_classifier()(pooled)
            fungus = self.gate.score_from_features(pooled)
        else:
            logits = model(x)
            if self.gate is not None:
                fungus = self.gate.score(x)
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
            result["warnings"].append({"kind": "not_fungus", "species": None, "edibility": None,
                                       "message": result["message"]})
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
        shares = {n: round(float(probs[self._index[n]]), 4) for n in plausible}
        result["warnings"] = species_warnings(plausible, self.catalog, top["species"], shares)
        if result["confident"]:
            result["message"] = f"Most likely {top['species']} ({top['probability']:.0%})."
        elif result["genus_answer"]:
            g = result["genus_answer"]
            result["message"] = (
                f"No single species is clear; most likely a species of {g['genus']} "
                f"({g['probability']:.0%} together): answering at genus level, {g['name']}."
            )
        else:
            result["message"] = (
                f"Not confident: the best guess, {top['species']}, has only {top['probability']:.0%}. "
                "The mushroom may not be one of the species this model knows."
            )
            result["warnings"].append({"kind": "not_confident", "species": None, "edibility": None,
                                       "message": result["message"]})
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
            "lookalikes": [
                {"species": s.name, "edibility": s.edibility} for s in self.catalog.lookalikes(name)
            ] if in_catalog else [],
        }
