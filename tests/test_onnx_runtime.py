"""The optional ONNX Runtime serving path gives the PyTorch path's answers (bench/latency.py times it)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mushroom_id.core.models import load_model
from mushroom_id.serving.predictor import Predictor

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    loaded = load_model("embedded")
    threads = torch.get_num_threads()
    mp = pytest.MonkeyPatch()
    mp.setenv("MUSHROOM_ONNX_CACHE", str(tmp_path_factory.mktemp("onnx")))
    try:
        pair = Predictor(loaded, runtime="torch"), Predictor(loaded, runtime="onnx")
        assert torch.get_num_threads() == threads  # a Predictor never changes process-wide settings
        yield pair
    finally:
        mp.undo()


def test_onnx_answers_match_torch(pair, photo_of):
    torch_pred, onnx_pred = pair
    photos = [photo_of("Amanita muscaria", "wiki"), photo_of("Amanita phalloides")]
    for photo in photos:
        a, b = torch_pred.predict(photo), onnx_pred.predict(photo)
        assert [c["species"] for c in a["candidates"]] == [c["species"] for c in b["candidates"]]
        assert [w["species"] for w in a["warnings"]] == [w["species"] for w in b["warnings"]]
        assert abs(a["fungus_score"] - b["fungus_score"]) < 1e-3
    x = torch_pred.batch(photos)
    (lp_t, f_t), (lp_o, f_o) = torch_pred.forward(x), onnx_pred.forward(x)
    assert np.abs(np.exp(lp_t) - np.exp(lp_o)).max() < 1e-4  # batch of 2: the dynamic batch axis works
    assert np.abs(f_t - f_o).max() < 1e-4


def test_unknown_runtime_is_refused():
    with pytest.raises(ValueError, match="runtime"):
        Predictor(load_model("embedded"), use_gate=False, runtime="tensorrt")
