"""Export a saved model: a standalone Hub folder, ONNX with a parity check, a model card, a Hub push
(the library behind ``python -m mushroom_id.export``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from mushroom_id.core.io import atomic_write_json
from mushroom_id.core.models import LoadedModel, fold_temperature, save_model
from mushroom_id.core.network import OPSET, ServedNetwork, export_network
from mushroom_id.core.safety import DISCLAIMER


def export_hub_folder(
    loaded: LoadedModel, out_dir: str | Path, metrics: dict | None = None, fold_calibration: bool = True
) -> Path:
    """Standalone copy of a model in the Hub layout (full fp32 weights), with metrics.json if given.

    ``fold_calibration``: the temperature is folded into the classifier (:func:`fold_temperature`), so
    plain-softmax users (transformers' pipeline, timm, ONNX) get calibrated probabilities; ``config.json``
    then says ``temperature: 1.0`` and records the folded value as ``temperature_folded``.
    """
    keep = {
        k: v
        for k, v in loaded.config.items()
        if k in ("model_id", "thresholds", "trained_on", "frozen_backbone", "train_config", "temperature_folded")
    }
    model, temperature = loaded.model.float(), loaded.temperature
    if fold_calibration and temperature != 1.0:
        model = fold_temperature(model, temperature)
        keep["temperature_folded"] = temperature * float(loaded.config.get("temperature_folded", 1.0))
        temperature = 1.0
    out = save_model(model, out_dir, loaded.labels, temperature=temperature, extra=keep)
    if metrics:
        atomic_write_json(out / "metrics.json", metrics)
    return out


def export_onnx(loaded: LoadedModel, path: str | Path, check_images: Sequence | None = None) -> dict:
    """Write ``path`` (.onnx); returns {path, max_prob_diff} where the difference is measured against
    PyTorch on ``check_images`` (PIL images or files) or on random inputs."""
    import onnx

    path = Path(path)
    network = ServedNetwork(loaded.model.float().eval(), None, shared_backbone=False)  # outputs: logits
    export_network(network, tuple(loaded.data_config["input_size"]), path)
    proto = onnx.load(str(path))
    meta = {
        "label_names": json.dumps(loaded.labels),
        "temperature": str(loaded.temperature),
        "model_id": str(loaded.model_id),
        "data_config": json.dumps({k: list(v) if isinstance(v, tuple) else v for k, v in loaded.data_config.items()}),
    }
    del proto.metadata_props[:]
    for k, v in meta.items():
        proto.metadata_props.add(key=k, value=v)
    onnx.save(proto, str(path))
    return {"path": str(path), "opset": OPSET, "max_prob_diff": onnx_parity(loaded, path, check_images)}


def _inputs(loaded: LoadedModel, images: Sequence | None) -> torch.Tensor:
    if not images:
        torch.manual_seed(0)
        return torch.randn(3, *loaded.data_config["input_size"])
    from mushroom_id.core.images import load_image

    transform = loaded.transform()
    return torch.stack([transform(load_image(img)) for img in images])


def onnx_probabilities(path: str | Path, pixel_values: np.ndarray) -> np.ndarray:
    """Calibrated probabilities from the ONNX file alone (temperature from its metadata)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    logits = session.run(["logits"], {"pixel_values": pixel_values.astype(np.float32)})[0]
    from mushroom_id.engine.metrics import softmax

    return softmax(logits, float(meta.get("temperature", 1.0)))


def onnx_parity(loaded: LoadedModel, path: str | Path, images: Sequence | None = None) -> float:
    """Max absolute difference between PyTorch and ONNX Runtime calibrated probabilities."""
    x = _inputs(loaded, images)
    with torch.inference_mode():
        ref = torch.softmax(loaded.model.float().eval()(x).double() / loaded.temperature, -1).numpy()
    return float(np.abs(onnx_probabilities(path, x.numpy()) - ref).max())


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{100 * v:.1f}%" if 0 <= v <= 1 else f"{v:.3f}"
    return str(v)


def calibration_note(config: dict) -> str:
    """How a user of this folder gets calibrated probabilities (model card text)."""
    folded, temperature = config.get("temperature_folded"), float(config.get("temperature", 1.0))
    if folded:
        return (
            f"**Calibrated probabilities out of the box**: the temperature fitted on the validation split "
            f"(T = {folded:.3f}) is folded into the classifier (its weight and bias divided by T), so a plain "
            "softmax of the logits — what `transformers.pipeline`, timm and ONNX Runtime users compute — gives "
            "calibrated probabilities; `config.json` says `temperature: 1.0` and keeps T as `temperature_folded`."
        )
    if temperature == 1.0:
        return "Probabilities are the softmax of the logits (no temperature was fitted)."
    return (
        f"**Calibration is not in the logits**: divide them by `temperature` = {temperature:.3f} (in `config.json`, "
        "fitted on the validation split) before the softmax: `probs = (model(x) / temperature).softmax(-1)`. "
        "`transformers.pipeline` ignores this value and returns uncalibrated scores."
    )


def model_card(model_dir: str | Path, repo_id: str, dataset: str | None = None, metrics: dict | None = None) -> str:
    """README.md for a Hub model repo: front matter, data, metrics table, limitations, safety note."""
    import yaml

    config = json.loads((Path(model_dir) / "config.json").read_text())
    if metrics is None and (Path(model_dir) / "metrics.json").is_file():
        metrics = json.loads((Path(model_dir) / "metrics.json").read_text())
    test = (metrics or {}).get("test", metrics or {})
    labels = config.get("label_names", [])
    front = {
        "library_name": "timm",
        "license": "mit",
        "pipeline_tag": "image-classification",
        "tags": ["image-classification", "timm", "fungi", "mushrooms"],
    }
    if dataset and "/" in dataset and not Path(dataset).exists():
        front["datasets"] = [dataset]
    rows = [
        ("top-1", "top1"),
        ("top-5", "top5"),
        ("species-mean top-1", "top1_species_mean"),
        ("macro-F1", "macro_f1"),
        ("toxic predicted as non-toxic", "toxic_as_non_toxic"),
        ("FungiCLEF cost (lower is better)", "fungiclef_cost"),
        ("ECE (after temperature)", "ece"),
        ("test images", "images"),
    ]
    table = "\n".join(f"| {name} | {_fmt(test[key])} |" for name, key in rows if key in test)
    calibration = calibration_note(config)
    return f"""---
{yaml.safe_dump(front, sort_keys=False).strip()}
---

# {repo_id.split("/")[-1]}

A mushroom species classifier: `{config.get("architecture")}` fine-tuned with timm on
{len(labels)} species. Model id: `{config.get("model_id", "")}`.

## Use

```python
import timm, torch
model = timm.create_model("hf-hub:{repo_id}", pretrained=True).eval()
# or, with labels, temperature and edibility warnings: mushroom_id.core.models.load_model("hf-hub:{repo_id}")
```

Also loadable with `transformers.pipeline("image-classification", model="{repo_id}")`.

{calibration}

## Training data

{dataset or "see config.json"} ({config.get("trained_on", "")}).

## Evaluation (held-out test split)

| metric | value |
|---|---|
{table or "| (no metrics recorded) | |"}

## Limitations

- It knows only its {len(labels)} species; any other mushroom is forced into one of them.
- Web-scraped training photos contain label noise; rare species have very few photos.
- Accuracy on real foraging photos (different angles, light, cameras) is lower than on the test split.

## Safety

{DISCLAIMER}
The words of this model are a guess to start a conversation with an expert, never a decision to eat.
"""


def push_to_hub(
    model_dir: str | Path,
    repo_id: str,
    dataset: str | None = None,
    token: str | None = None,
    private: bool = False,
    api=None,
) -> str:
    """Write README.md (model card) into ``model_dir`` and upload the folder to ``repo_id``.

    ``api``: an object with ``create_repo`` and ``upload_folder`` (default ``huggingface_hub.HfApi``);
    tests pass a local stand-in, so no test ever touches the network.
    """
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi(token=token)
    model_dir = Path(model_dir)
    (model_dir / "README.md").write_text(model_card(model_dir, repo_id, dataset))
    api.create_repo(repo_id=repo_id, repo_type="model", private=private, exist_ok=True)
    info = api.upload_folder(
        folder_path=str(model_dir),
        repo_id=repo_id,
        repo_type="model",
        allow_patterns=["README.md", "config.json", "model.safetensors", "model.onnx", "metrics.json"],
        commit_message="Upload mushroom classifier",
    )
    return str(getattr(info, "commit_url", info))
