"""Measure and fit the trust thresholds of a model on held-out real photos.

    python -m mushroom_id measure-trust [--model SPEC] [--write] [--out reports/]

Everything is fit on the validation photos of the cross-source species of the shared photos (the
data pipeline's split: validation and test photos come from sources the species did not train on,
at most 5 per species) and reported on their test photos, which nothing here looks at while choosing.
The temperature is refit there too (one calibration for the whole model):

* fungus gate: threshold = the score below which ``GATE_TARGET_FRR`` of validation
  mushroom photos fall; false rejects on test mushrooms and false accepts on the real
  non-mushroom photographs that scikit-learn, scikit-image, matplotlib and gradio ship.
* confidence: max-probability vs. negative entropy compared by AUROC (correct vs. wrong
  top-1 on validation); the better score's lowest threshold whose answered photos reach
  ``CONFIDENT_TARGET`` top-1 accuracy.
* genus fallback: lowest genus-mass threshold whose genus answers (for photos that are not
  confident) reach ``GENUS_TARGET`` genus accuracy.
* conformal prediction set: split-conformal LAC quantile for 90% coverage; coverage and
  mean set size measured on test.
* observations: several held-out photos of one species combined by the mean of
  log-probabilities vs. the mean of probabilities.
* safety: the toxic-as-non-toxic rate (a toxic specimen confidently answered with a
  non-toxic species), the missed-warning rate (no toxic species among the top-5 and the
  prediction set of a toxic specimen) and the FungiCLEF cost, plotted against coverage.

``--write`` stores the temperature and the thresholds in the model's config.json (they travel with the model).
"""

from __future__ import annotations

import glob
import os
import site
from pathlib import Path

import numpy as np
import torch

from mushroom_id.core.catalog import DANGEROUS, EDIBLE, Catalog, default_catalog
from mushroom_id.core.inference import cached
from mushroom_id.core.io import atomic_write_json
from mushroom_id.core.models import fingerprint, load_model, resolve_spec
from mushroom_id.core.network import fungus_scores, served_network
from mushroom_id.core.safety import combine_observation, prediction_set
from mushroom_id.engine.calibration import (
    CONFIDENT_TARGET,
    COVERAGE,
    FLOOR_TARGET,
    GATE_TARGET_FRR,
    GENUS_TARGET,
    calibrate,
    conformal_qhat,
    danger_outcomes,
    danger_rates,
    genus_stats,
)
from mushroom_id.engine.metrics import auroc, expected_calibration_error, fungiclef_cost, nll, top_k_accuracy

REPORT_DIR = Path("reports")

# Real photographs that are not of fungi, shipped inside installed packages (no download).
NON_FUNGUS_FILES = (
    "sklearn/datasets/images/china.jpg",
    "sklearn/datasets/images/flower.jpg",
    "matplotlib/mpl-data/sample_data/grace_hopper.jpg",
    "gradio/media_assets/images/cheetah.jpg",
    "gradio/media_assets/images/cheetah1.jpg",
    "gradio/media_assets/images/lion.jpg",
    "gradio/media_assets/images/tower.jpg",
    "gradio/media_assets/images/groot.jpeg",
    *(
        f"skimage/data/{n}"
        for n in (
            "astronaut.png",
            "brick.png",
            "camera.png",
            "chelsea.png",
            "coffee.png",
            "coins.png",
            "grass.png",
            "gravel.png",
            "hubble_deep_field.jpg",
            "moon.png",
            "motorcycle_left.png",
            "rocket.jpg",
            "retina.jpg",
            "page.png",
            "text.png",
            "clock_motion.png",
            "horse.png",
            "color.png",
        )
    ),
)


def non_fungus_photos() -> list[str]:
    """Paths of the bundled non-fungus photographs that exist in this environment."""
    found = []
    for rel in NON_FUNGUS_FILES:
        for base in site.getsitepackages():
            hits = glob.glob(os.path.join(base, rel))
            if hits:
                found.append(hits[0])
                break
    return found


def confidence_scores(probs: np.ndarray) -> dict[str, np.ndarray]:
    p = np.clip(probs, 1e-12, 1.0)
    return {"max_prob": probs.max(1), "neg_entropy": (p * np.log(p)).sum(1)}


def safety_curve(probs: np.ndarray, y: np.ndarray, labels: list[str], catalog: Catalog, qhat: float | None):
    """Per confidence threshold: coverage, selective accuracy, toxic-as-non-toxic rate."""
    dangerous = catalog.mask(labels, DANGEROUS)
    top = probs.argmax(1)
    conf = probs.max(1)
    toxic = dangerous[y]
    rows = []
    for t in np.linspace(0, 1, 41):
        answered = conf >= t
        wrong_safe = toxic & answered & ~dangerous[top]
        rows.append(
            {
                "threshold": float(t),
                "coverage": float(answered.mean()),
                "accuracy": float((top[answered] == y[answered]).mean()) if answered.any() else float("nan"),
                "toxic_as_non_toxic": float(wrong_safe.sum() / max(1, toxic.sum())),
            }
        )
    missed = 0
    for p in probs[toxic]:
        shown = set(np.argsort(-p)[:5]) | set(prediction_set(p, qhat))
        missed += not any(dangerous[i] for i in shown)
    return rows, float(missed / max(1, toxic.sum())), int(toxic.sum())


def observation_comparison(logp: np.ndarray, y: np.ndarray, size: int = 3, seed: int = 0) -> dict:
    """Top-1 and NLL of mean-log-prob vs mean-prob over random same-species photo groups."""
    rng = np.random.default_rng(seed)
    groups = []
    for c in np.unique(y):
        idx = np.flatnonzero(y == c)
        if len(idx) < size:
            continue
        rng.shuffle(idx)
        groups += [idx[i : i + size] for i in range(0, len(idx) - size + 1, size)]
    out = {"groups": len(groups), "photos_per_group": size, "species": int(len({int(y[g[0]]) for g in groups}))}
    if not groups:
        return out
    labels = np.array([y[g[0]] for g in groups])
    single = np.exp(logp)
    for name, fn in {
        "mean_log_prob": lambda g: combine_observation(logp[g]),
        "mean_prob": lambda g: single[g].mean(0),
    }.items():
        p = np.stack([fn(g) for g in groups])
        out[name] = {"top1": top_k_accuracy(p, labels, 1), "top5": top_k_accuracy(p, labels, 5), "nll": nll(p, labels)}
    first = np.stack([single[g[0]] for g in groups])
    out["single_photo"] = {
        "top1": top_k_accuracy(first, labels, 1),
        "top5": top_k_accuracy(first, labels, 5),
        "nll": nll(first, labels),
    }
    return out


def held_out_outputs(
    loaded, network, name: str, images, keys: list[str], weights: str | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(raw species logits, fungus scores) of the served network on held-out photos (cached; ``weights``:
    the network's fingerprint, hashed once per measurement)."""
    if not len(keys):
        return np.zeros((0, loaded.num_classes)), np.zeros(0)
    logits, gate_logits = cached(f"trust-{name}", keys, network, images, loaded.transform(), weights=weights)
    return logits.astype(np.float64), fungus_scores(torch.from_numpy(gate_logits))


def unknown_species_photos(labels: list[str], limit: int = 300) -> list[str]:
    """Real photos of fungi the model does not know: taxa of ../shared outside its labels (most are
    not catalog species), a fixed sample of ``limit`` chosen by a hash of the path."""
    import hashlib

    from mushroom_id.core.paths import shared_manifest, shared_photos_dir

    folder = shared_photos_dir()
    known = set(labels)
    catalog = default_catalog()
    rows = [r for r in shared_manifest(folder) if (catalog.resolve(r["species"]) or r["species"]) not in known]
    rows.sort(key=lambda r: hashlib.sha256(r["sha256"].encode()).hexdigest())
    files = [folder.parent / r["path"] for r in rows[:limit]]
    return [str(p) for p in files if p.is_file()]


def measure(
    spec: str | None = None,
    write: bool = False,
    out_dir: Path = REPORT_DIR,
    seed: int = 0,
    data_spec: str = "shared-photos",
) -> dict:
    """Fit temperature and thresholds on cross-source validation photos, report them on cross-source test."""
    from mushroom_id.engine.data import load_splits

    catalog = default_catalog()
    loaded = load_model(spec)
    network = served_network(loaded)
    weights = fingerprint(network)
    labels = loaded.labels
    data = load_splits(data_spec, labels=labels, catalog=catalog, seed=seed)
    crossed = data.cross_source or frozenset(labels)
    runs = {}
    for split in ("validation", "test"):
        ds = data[split]
        logits, fungus = held_out_outputs(loaded, network, split, ds, list(ds.keys), weights)
        cross = np.array([labels[t] in crossed for t in ds.targets], dtype=bool)
        runs[split] = {"logits": logits, "fungus": fungus, "y": ds.targets, "cross": cross}
    neg_files = non_fungus_photos()
    _, neg_fungus = held_out_outputs(loaded, network, "non-fungus", neg_files, neg_files, weights)
    unknown_files = unknown_species_photos(labels)
    unknown_logits, unknown_fungus = held_out_outputs(
        loaded, network, "unknown-species", unknown_files, unknown_files, weights
    )

    # the one calibration (engine.calibration): fit on cross-source validation, the gate on all validation photos
    v, t = runs["validation"], runs["test"]
    stored = loaded.config.get("calibration") or {}
    if stored.get("source", "").startswith("leave-one-source-out"):
        # a model fitted on every photo (validation and test included): its calibration was fitted on the
        # out-of-fold predictions of leave-one-source-out (engine.candidates.build_ensemble), never refitted
        # here on photos it has seen; what follows reports it on the (seen) test photos
        from dataclasses import fields

        from mushroom_id.core.safety import Thresholds
        from mushroom_id.engine.calibration import Calibration

        known = {f.name for f in fields(Thresholds)}
        th_stored = Thresholds(**{k: v_ for k, v_ in loaded.config["thresholds"].items() if k in known})
        cal = Calibration(loaded.temperature, th_stored, stored.get("fit") or {})
    else:
        cal = calibrate(
            v["logits"][v["cross"]], v["y"][v["cross"]], labels, fungus=v["fungus"], coverage=COVERAGE, catalog=catalog
        )
    temperature, th = cal.temperature, cal.thresholds
    pv_all, pt_all = cal.probabilities(v["logits"]), cal.probabilities(t["logits"])
    pv, yv = pv_all[v["cross"]], v["y"][v["cross"]]
    tp, yt = pt_all[t["cross"]], t["y"][t["cross"]]
    p_unknown = cal.probabilities(unknown_logits)

    # fungus gate: all validation photos (the score does not depend on the species model)
    gate_t = th.fungus
    all_fungus = np.concatenate([v["fungus"], t["fungus"]])
    gate = {
        "threshold": gate_t,
        "target_false_reject": GATE_TARGET_FRR,
        "false_reject_test": float((t["fungus"] < gate_t).mean()),
        "false_reject_held_out_photos": float((all_fungus < gate_t).mean()),
        "mushroom_photos": int(len(all_fungus)),
        "false_accept_non_fungus": float((neg_fungus >= gate_t).mean()),
        "non_fungus_photos": len(neg_files),
        "accepted_non_fungus": [Path(f).name for f, sc in zip(neg_files, neg_fungus, strict=True) if sc >= gate_t],
    }

    # confidence
    correct_val = pv.argmax(1) == yv
    aurocs = {k: auroc(s_, correct_val) for k, s_ in confidence_scores(pv).items()}
    conf_t = th.confident
    correct_test = tp.argmax(1) == yt
    answered = tp.max(1) >= conf_t
    unknown_confident = (p_unknown.max(1) >= conf_t) & (unknown_fungus >= gate_t) if len(p_unknown) else np.zeros(0)
    confidence = {
        "score": "max_prob",
        "auroc_validation": aurocs,
        "threshold": conf_t,
        "target_accuracy": CONFIDENT_TARGET,
        "validation": {
            "answered": cal.fit["confident"]["answered"],
            "accuracy": cal.fit["confident"]["accuracy"],
            "photos": int(len(yv)),
        },
        "test": {
            "answered": float(answered.mean()),
            "answered_photos": int(answered.sum()),
            "accuracy": float(correct_test[answered].mean()) if answered.any() else None,
        },
        "unknown_species": {
            "photos": len(unknown_files),
            "confident": float(unknown_confident.mean()) if len(unknown_files) else None,
            "rejected_by_gate": float((unknown_fungus < gate_t).mean()) if len(unknown_files) else None,
        },
    }

    # genus fallback on photos that are not confident
    genus_t = th.genus
    gm_test, gc_test = genus_stats(tp, yt, labels, conf_t)
    g_ans = gm_test >= genus_t
    fitted_genus = cal.fit["genus"]
    genus = {
        "threshold": genus_t,
        "target_accuracy": GENUS_TARGET,
        "on": genus_t < 1.0,
        "validation": {k: fitted_genus[k] for k in fitted_genus if k != "target"},
        "test": {
            "answered_of_not_confident": float(g_ans.mean()) if len(g_ans) else None,
            "genus_accuracy": float(gc_test[g_ans].mean()) if g_ans.any() else None,
        },
    }

    # conformal set (split-conformal LAC on cross-source validation)
    qhat = th.conformal_qhat
    sets = [prediction_set(p, qhat) for p in tp]
    single_sets = [prediction_set(p, qhat) for p in pt_all[~t["cross"]]]
    conformal = {
        "method": "split-conformal LAC",
        "target_coverage": COVERAGE,
        "qhat": qhat,
        "validation_photos": int(len(yv)),
        "test_photos": int(len(yt)),
        "test_coverage": float(np.mean([yi in s_ for yi, s_ in zip(yt, sets, strict=True)])),
        "test_coverage_species_balanced": _species_mean([yi in s_ for yi, s_ in zip(yt, sets, strict=True)], yt),
        "test_mean_set_size": float(np.mean([len(s_) for s_ in sets])),
        "test_median_set_size": float(np.median([len(s_) for s_ in sets])),
        "single_source_test_coverage": float(
            np.mean([yi in s_ for yi, s_ in zip(t["y"][~t["cross"]], single_sets, strict=True)])
        )
        if single_sets
        else None,
        "levels": [_conformal_level(pv, yv, tp, yt, level) for level in (0.5, 0.7, 0.8, 0.9)],
    }

    # safety at the chosen thresholds + curve against coverage
    curve, missed, n_toxic = safety_curve(tp, yt, labels, catalog, qhat)
    dangerous, edible = catalog.mask(labels, DANGEROUS), catalog.mask(labels, EDIBLE)
    pred = tp.argmax(1)
    at_t = dangerous[yt] & answered & ~dangerous[pred]
    safety = {
        "test_toxic_specimens": n_toxic,
        "toxic_as_non_toxic_confident": float(at_t.sum() / max(1, n_toxic)),
        "toxic_as_non_toxic_top1": float((dangerous[yt] & ~dangerous[pred]).sum() / max(1, n_toxic)),
        "missed_warning_rate": missed,
        "fungiclef_cost_top1": fungiclef_cost(yt, pred, dangerous, edible),
    }

    # the first screen: the floor, and the red panel before (every toxic_candidate warning in a red box)
    # and after (core.danger at the fitted share), species-balanced on test
    above = tp.max(1) >= th.floor
    outcomes = danger_outcomes(tp, yt, labels, catalog, th, shares=[th.danger_share])
    first_screen = {
        "floor": {
            "threshold": th.floor,
            "target_accuracy_above": FLOOR_TARGET,
            "validation": cal.fit.get("floor"),
            "test": {
                "below_floor": float((~above).mean()),
                "top1_above": float(correct_test[above].mean()) if above.any() else None,
                "top1_below": float(correct_test[~above].mean()) if (~above).any() else None,
            },
        },
        "danger_share": th.danger_share,
        "danger_share_validation": cal.fit.get("danger_share"),
        "red_box_before": danger_rates(outcomes["box"], yt, labels, catalog),
        "red_panel_after": danger_rates(outcomes[th.danger_share], yt, labels, catalog),
        "toxic_warned_anywhere_after": danger_rates(
            {"named": outcomes["warned"], "panel": outcomes["box"]["panel"]}, yt, labels, catalog
        )["toxic_named"],
    }

    # observations: held-out photos (validation + test) of species with several of them
    held_logp = np.log(np.clip(np.concatenate([pv_all, pt_all]), 1e-12, 1.0))
    observations = observation_comparison(held_logp, np.concatenate([v["y"], t["y"]]), seed=seed)

    report = {
        "model": loaded.model_id,
        "spec": resolve_spec(spec),
        "data": data.source,
        "fit_on": stored.get("source")
        or "validation photos of cross-source species (sources the species did not train on)",
        "reported_on": "test photos of cross-source species"
        + (" (in the model's fit: see calibration.held_out_check in its config.json)" if stored else ""),
        "temperature": temperature,
        "temperature_before": loaded.temperature,
        "test_ece": expected_calibration_error(tp, yt),
        "test_top1_species_mean": _species_mean(correct_test, yt),
        "test_top5_species_mean": _species_mean([yi in np.argsort(-p)[:5] for p, yi in zip(tp, yt, strict=True)], yt),
        "test_photos": int(len(yt)),
        "test_species": int(len(np.unique(yt))),
        "fungus_gate": gate,
        "confidence": confidence,
        "genus": genus,
        "conformal": conformal,
        "safety": safety,
        "observations": observations,
        "first_screen": first_screen,
    }
    out_dir = Path(out_dir)
    atomic_write_json(out_dir / "trust.json", report)
    _plot(curve, conf_t, all_fungus, neg_fungus, gate_t, out_dir)

    if write:
        folder = loaded.folder if loaded.folder is not None and not resolve_spec(spec).startswith("hf-hub:") else None
        if folder is None:
            raise ValueError("--write needs a local model (embedded, local-dir: or keras:)")
        report["written_to"] = str(cal.apply(folder))
    return report


def _conformal_level(pv, yv, tp, yt, level: float) -> dict:
    """Coverage and set size on test of a set calibrated on validation for ``level`` (the choice of target)."""
    q = conformal_qhat(pv, yv, level)
    sets = [prediction_set(p, q) for p in tp]
    return {
        "target": level,
        "test_coverage": float(np.mean([y in s for y, s in zip(yt, sets, strict=True)])),
        "test_median_set_size": float(np.median([len(s) for s in sets])),
    }


def _species_mean(hits, y) -> float | None:
    hits, y = np.asarray(hits, dtype=float), np.asarray(y)
    return float(np.mean([hits[y == c].mean() for c in np.unique(y)])) if len(y) else None


def _plot(curve, conf_t, fungus, neg_fungus, gate_t, out_dir: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4))
    cov = [r["coverage"] for r in curve]
    a.plot(cov, [r["toxic_as_non_toxic"] for r in curve], label="toxic specimen answered as non-toxic")
    a.plot(cov, [r["accuracy"] for r in curve], label="top-1 accuracy of answered photos")
    a.axvline(
        next(r["coverage"] for r in curve if r["threshold"] >= conf_t),
        ls="--",
        c="grey",
        label=f"chosen threshold {conf_t:.2f}",
    )
    a.set_xlabel("coverage (fraction of test photos answered confidently)")
    a.set_title("Safety vs coverage (test split)")
    a.legend(fontsize=8)
    bins = np.linspace(0, 1, 41)
    b.hist(fungus, bins=bins, alpha=0.6, density=True, label=f"mushroom photos ({len(fungus)})")
    b.hist(neg_fungus, bins=bins, alpha=0.6, density=True, label=f"non-fungus photos ({len(neg_fungus)})")
    b.axvline(gate_t, ls="--", c="grey", label=f"gate threshold {gate_t:.3f}")
    b.set_yscale("log")
    b.set_xlabel("fungus score (ImageNet fungus-class mass)")
    b.set_title("Is it a fungus?")
    b.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_dir / "trust.png", dpi=100)
    plt.close(fig)
