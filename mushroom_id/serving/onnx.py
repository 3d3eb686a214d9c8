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

import logging
import os
from pathlib import Path

import numpy as np
import torch

from mushroom_id.core.models import fingerprint
from mushroom_id.core.network import ServedNetwork, export_network

log = logging.getLogger(__name__)

RUNTIME_ENV = "MUSHROOM_RUNTIME"  # "torch" (default) or "onnx"
THREADS_ENV = "MUSHROOM_THREADS"  # intra-op threads per prediction (ONNX Runtime default: 1, see bench/README.md)
CACHE_ENV = "MUSHROOM_ONNX_CACHE"
DEFAULT_CACHE = Path.home() / ".cache" / "mushroom_id" / "onnx"


class OnnxNetwork:
    """Callable like :class:`ServedNetwork` (torch tensors in and out), backed by ONNX Runtime."""

    def __init__(
        self,
        network: ServedNetwork,
        input_size: tuple[int, ...],
        threads: int | None = None,
        cache_dir: str | Path | None = None,
    ):
        import onnxruntime as ort

        cache = Path(cache_dir or os.environ.get(CACHE_ENV) or DEFAULT_CACHE)
        self.path = cache / f"served-{fingerprint(network, tuple(input_size))}.onnx"
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
