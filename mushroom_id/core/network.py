"""The network a prediction runs: the species model and the fungus gate, sharing what they can.

``served_network(loaded)`` builds it once for serving (``serving.predictor``), ONNX export and the
engine's inference loop, so calibration and evaluation see exactly what a user's photo goes through:
(species logits, ImageNet logits of the gate) per photo.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mushroom_id.core.io import atomic_path
from mushroom_id.core.models import LITE0_PIP, LITE_PIP, FrozenEnsemble, LoadedModel, imagenet_backbone

# ImageNet-1k classes that show fungi: mushroom, coral fungus, agaric, gyromitra,
# stinkhorn, earthstar, hen-of-the-woods, bolete.
IMAGENET_FUNGUS_CLASSES = (947, 991, 992, 993, 994, 995, 996, 997)


def fungus_scores(imagenet_logits: torch.Tensor) -> np.ndarray:
    """Is there a fungus in the photo? The probability mass of ImageNet's fungus classes (N,)."""
    probs = imagenet_logits.float().softmax(dim=-1)
    return probs[:, list(IMAGENET_FUNGUS_CLASSES)].sum(dim=-1).cpu().numpy()


class ServedNetwork(nn.Module):
    """What ``Predictor.forward`` computes before the softmax: (species logits, ImageNet logits or none).

    ``trunk_blocks`` > 0: the species model and the gate hold identical weights up to that block
    (a partially fine-tuned Lite0 on the pip weights): the stem and those blocks run once, then
    each model runs its own remaining blocks and head. Same operations on the same inputs as two
    separate forwards, so the same numbers, for a fraction of the cost.
    """

    def __init__(
        self,
        model: nn.Module,
        gate_model: nn.Module | None,
        shared_backbone: bool,
        trunk_blocks: int = 0,
        own_gate: bool = False,
    ):
        super().__init__()
        self.model = model
        self.gate_model = gate_model
        self.shared_backbone = shared_backbone
        self.trunk_blocks = trunk_blocks
        self.own_gate = own_gate  # a FrozenEnsemble: its gate backbone's ImageNet head, from the same forward

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        if self.own_gate:
            return self.model.forward_with_gate(x)
        if self.shared_backbone:
            pooled = self.model.forward_head(self.model.forward_features(x), pre_logits=True)
            return self.model.get_classifier()(pooled), self.gate_model.get_classifier()(pooled)
        if self.gate_model is not None and self.trunk_blocks:
            k = self.trunk_blocks
            h = self.model.blocks[:k](self.model.bn1(self.model.conv_stem(x)))
            return _tail(self.model, h, k), _tail(self.gate_model, h, k)
        logits = self.model(x)
        if self.gate_model is None:
            return (logits,)
        return logits, self.gate_model(x)


def _tail(model: nn.Module, h: torch.Tensor, k: int) -> torch.Tensor:
    """The rest of timm's EfficientNet ``forward_features`` + ``forward_head`` after block ``k``."""
    return model.forward_head(model.bn2(model.conv_head(model.blocks[k:](h))))


def shared_trunk_blocks(model: nn.Module, gate_model: nn.Module) -> int:
    """How many leading EfficientNet blocks (with the stem) hold identical tensors in both models; 0 if none."""
    if type(model) is not type(gate_model) or not all(hasattr(model, a) for a in ("conv_stem", "bn1", "blocks")):
        return 0
    if len(model.blocks) != len(gate_model.blocks):
        return 0

    def same(a: nn.Module, b: nn.Module) -> bool:
        sa, sb = a.state_dict(), b.state_dict()
        return sa.keys() == sb.keys() and all(
            sa[k].shape == sb[k].shape and sa[k].dtype == sb[k].dtype and torch.equal(sa[k], sb[k]) for k in sa
        )

    if not (same(model.conv_stem, gate_model.conv_stem) and same(model.bn1, gate_model.bn1)):
        return 0
    k = 0
    while k < len(model.blocks) and same(model.blocks[k], gate_model.blocks[k]):
        k += 1
    return k if k < len(model.blocks) else 0  # all equal would mean shared_backbone's case


class GateView(nn.Module):
    """The fungus gate's own view of the species model's input: back to pixels with the species model's
    mean/std, normalised with the gate's, resized (bilinear, antialiased) to the gate's native size.
    The gate's EfficientNet-Lite scores fungi far worse off its size (a 299 px Keras input: median fungus
    score 0.20 against 0.81 at 224 px on 40 shared photos; through this view, 0.85)."""

    def __init__(self, gate_model: nn.Module, size: int, scale: torch.Tensor, shift: torch.Tensor):
        super().__init__()
        self.gate_model, self.size = gate_model, size
        self.register_buffer("scale", scale.view(1, -1, 1, 1))  # x_gate = x * scale + shift, per channel
        self.register_buffer("shift", shift.view(1, -1, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * self.scale + self.shift
        if x.shape[-2:] != (self.size, self.size):
            x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", antialias=True)
        return self.gate_model(x)


def gate_view(gate_model: nn.Module, data_config: dict) -> nn.Module:
    """``gate_model`` itself when the species model's input is what the gate expects (size, mean, std),
    else a :class:`GateView` that turns the one into the other."""
    from timm.data import resolve_data_config

    gate_config = resolve_data_config(model=gate_model)
    size = int(gate_config["input_size"][-1])
    mean, std = (torch.tensor(data_config[k], dtype=torch.float32) for k in ("mean", "std"))
    gate_mean, gate_std = (torch.tensor(gate_config[k], dtype=torch.float32) for k in ("mean", "std"))
    if (
        tuple(data_config["input_size"][-2:]) == (size, size)
        and torch.equal(mean, gate_mean)
        and torch.equal(std, gate_std)
    ):
        return gate_model
    return GateView(gate_model, size, std / gate_std, (mean - gate_mean) / gate_std)


def served_network(loaded: LoadedModel, use_gate: bool = True) -> ServedNetwork:
    """The species model with the fungus gate: an offline ImageNet-pretrained EfficientNet-Lite (Lite0,
    or the species model's own frozen Lite backbone, so one forward serves both; a partially fine-tuned
    Lite0 shares its first blocks with the gate)."""
    if not use_gate:
        return ServedNetwork(loaded.model, None, shared_backbone=False).eval()
    if isinstance(loaded.model, FrozenEnsemble):  # one of its own frozen backbones is the gate
        return ServedNetwork(loaded.model, None, shared_backbone=False, own_gate=True).eval()
    base = loaded.config.get("base_weights")
    shared = bool(base in LITE_PIP and loaded.config.get("frozen_backbone"))
    gate = imagenet_backbone(package=base if shared else LITE0_PIP)
    view = gate_view(gate, loaded.data_config)
    if view is not gate:  # the species input is not what the gate reads (size, mean/std): nothing is shared,
        # the gate reads its own view of the photo (a Lite0 fine-tuned at 64 px shares its first blocks
        # with the gate, but the gate scores fungi at 64 px far worse than at its own 224)
        return ServedNetwork(loaded.model, view, shared_backbone=False).eval()
    trunk = 0 if shared else shared_trunk_blocks(loaded.model, gate)
    return ServedNetwork(loaded.model, gate, shared, trunk).eval()


OPSET = 18  # ONNX opset of exported networks
log = logging.getLogger(__name__)


def export_network(network: ServedNetwork, input_size: tuple[int, ...], path: Path) -> Path:
    """Export with a dynamic batch axis; written to a temporary name, then moved (atomic)."""
    example = torch.zeros(1, *input_size)
    outputs = ["logits", "gate_logits"][: len(network(example))]
    with atomic_path(path) as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # the TorchScript exporter: ~3 s here, against ~30 s for the dynamo one
            torch.onnx.export(
                network,
                (example,),
                str(tmp),
                dynamo=False,
                opset_version=OPSET,
                input_names=["pixel_values"],
                output_names=outputs,
                dynamic_axes={"pixel_values": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
            )
        except Exception as e:  # pragma: no cover - depends on the torch version
            log.info("TorchScript ONNX export failed (%s); using the dynamo exporter", e)
            batch = torch.export.Dim("batch", min=1, max=1024)
            torch.onnx.export(
                network,
                (example,),
                str(tmp),
                dynamo=True,
                opset_version=OPSET,
                input_names=["pixel_values"],
                output_names=outputs,
                dynamic_shapes=({0: batch},),
                verbose=False,
            )
    return path
