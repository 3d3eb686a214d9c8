"""Optional ONNX Runtime serving path for :class:`mushroom_id.serving.predictor.Predictor`.

    MUSHROOM_RUNTIME=onnx python app.py          # or Predictor(loaded, runtime="onnx")

The served network (the species model and the fungus gate's ImageNet head, sharing one backbone
forward when the model allows it) is exported once with ``torch.onnx`` to a cache folder keyed by
the model's weights, and run with ONNX Runtime on CPU. Measured in ``bench/latency.py``: about
half the forward time of PyTorch eager on a 2-core CPU (batch 1). Decoding, preprocessing and the
safety logic stay exactly the same; the probabilities differ from PyTorch's only by float rounding
(max |diff| ~1e-5 before the 4-decimal rounding of the JSON). Needs ``onnx`` and ``onnxruntime``.
"""

from __future__ import annotations

import hashlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

log = logging.getLogger(__name__)

RUNTIME_ENV = "MUSHROOM_RUNTIME"  # "torch" (default) or "onnx"
THREADS_ENV = "MUSHROOM_THREADS"  # intra-op threads per prediction (ONNX Runtime default: 1, see bench/README.md)
CACHE_ENV = "MUSHROOM_ONNX_CACHE"
OPSET = 18
DEFAULT_CACHE = Path.home() / ".cache" / "mushroom_id" / "onnx"


class ServedNetwork(nn.Module):
    """What ``Predictor.forward`` computes before the softmax: (species logits, ImageNet logits or none).

    ``trunk_blocks`` > 0: the species model and the gate hold identical weights up to that block
    (a partially fine-tuned Lite0 on the pip weights): the stem and those blocks run once, then
    each model runs its own remaining blocks and head. Same operations on the same inputs as two
    separate forwards, so the same numbers, for a fraction of the cost.
    """

    def __init__(self, model: nn.Module, gate_model: nn.Module | None, shared_backbone: bool, trunk_blocks: int = 0):
        super().__init__()
        self.model = model
        self.gate_model = gate_model
        self.shared_backbone = shared_backbone
        self.trunk_blocks = trunk_blocks

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
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


def _fingerprint(network: nn.Module, input_size: tuple[int, ...]) -> str:
    """Hash of every tensor and the input size: a changed model never reuses a stale export."""
    h = hashlib.sha256(repr(tuple(input_size)).encode())
    for name, t in network.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().float().numpy().tobytes())
    return h.hexdigest()[:20]


def export_network(network: ServedNetwork, input_size: tuple[int, ...], path: Path) -> Path:
    """Export with a dynamic batch axis; written to a temporary name, then moved (atomic)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    example = torch.zeros(1, *input_size)
    outputs = ["logits", "gate_logits"][: len(network(example))]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:  # the TorchScript exporter: ~3 s here, against ~30 s for the dynamo one
            torch.onnx.export(
                network, (example,), str(tmp), dynamo=False, opset_version=OPSET, input_names=["pixel_values"],
                output_names=outputs, dynamic_axes={"pixel_values": {0: "batch"}, **{o: {0: "batch"} for o in outputs}},
            )
        except Exception as e:  # pragma: no cover - depends on the torch version
            log.info("TorchScript ONNX export failed (%s); using the dynamo exporter", e)
            batch = torch.export.Dim("batch", min=1, max=1024)
            torch.onnx.export(
                network, (example,), str(tmp), dynamo=True, opset_version=OPSET, input_names=["pixel_values"],
                output_names=outputs, dynamic_shapes=({0: batch},), verbose=False,
            )
    os.replace(tmp, path)
    return path


class OnnxNetwork:
    """Callable like :class:`ServedNetwork` (torch tensors in and out), backed by ONNX Runtime."""

    def __init__(self, network: ServedNetwork, input_size: tuple[int, ...], threads: int | None = None,
                 cache_dir: str | Path | None = None):
        import onnxruntime as ort

        cache = Path(cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
        self.path = cache / f"served-{_fingerprint(network, input_size)}.onnx"
        if not self.path.is_file():
            export_network(network, input_size, self.path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(threads or os.environ.get(THREADS_ENV) or 1)
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(self.path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        # run() releases the GIL and is safe to call from several threads at once
        outputs = self.session.run(None, {self.input_name: np.ascontiguousarray(x.numpy(), dtype=np.float32)})
        return tuple(torch.from_numpy(o) for o in outputs)


def resolve_runtime(runtime: str | None) -> str:
    runtime = (runtime or os.environ.get(RUNTIME_ENV) or "torch").lower()
    if runtime not in ("torch", "onnx"):
        raise ValueError(f"unknown runtime {runtime!r}: use 'torch' or 'onnx' (${RUNTIME_ENV})")
    return runtime
