"""The frozen-backbone ensemble: the candidate heads of leave-one-source-out and the served model agree."""

import numpy as np
import pytest
import torch

from mushroom_id.core.models import FrozenEnsemble, load_model_dir, save_model
from mushroom_id.core.network import served_network
from mushroom_id.engine.candidates import PhotoHead, ensemble_model, fit_photo_head


@pytest.fixture(scope="module")
def fitted():
    rng = np.random.default_rng(0)
    feats = {b: rng.random((40, 1280)).astype(np.float32) for b in ("lite0", "lite1")}
    y = np.arange(40) % 5
    head = PhotoHead(linear=("lite1",), means=("lite0", "lite1"), flip=True)
    return fit_photo_head(head, feats, y, 5, weight=7.0), feats, y


def test_photo_head_parts(fitted):
    fit, feats, y = fitted
    logits = fit.logits(feats)
    assert logits.shape == (40, 5)
    np.testing.assert_allclose(logits, fit.linear_logits(feats) + 7.0 * fit.mean_scores(feats), rtol=1e-6)
    # cosines of unit vectors, summed over two backbones
    assert np.abs(fit.mean_scores(feats)).max() <= 2.0 + 1e-6


def test_scaled_head_folds_a_temperature_into_every_weight(fitted):
    from mushroom_id.engine.calibration import fit_temperature
    from mushroom_id.engine.metrics import softmax

    fit, feats, y = fitted
    z = fit.logits(feats)
    half = fit.scaled(0.5)
    np.testing.assert_allclose(half.logits(feats), 0.5 * z, rtol=1e-5, atol=1e-6)
    assert half.weight == 3.5 and fit.weight == 7.0  # the blend weight scales with the linear part; no mutation
    np.testing.assert_allclose(half.mean_scores(feats), fit.mean_scores(feats))
    # logits that need T = 12 become logits that need T = 1 (the same probabilities)
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, 400)
    logits = 12.0 * (np.eye(5)[labels] * 1.5 + rng.normal(size=(400, 5)))
    t = fit_temperature(logits, labels)
    assert t > 5
    assert fit_temperature(logits / t, labels) == pytest.approx(1.0, rel=1e-3)
    np.testing.assert_allclose(softmax(logits / t, 1.0), softmax(logits, t), rtol=1e-9)


def test_class_mean_head_ranks_by_summed_cosine():
    rng = np.random.default_rng(1)
    centres = rng.normal(size=(3, 8))
    y = np.repeat(np.arange(3), 10)
    feats = {"lite0": centres[y] + 0.01 * rng.normal(size=(30, 8))}
    fit = fit_photo_head(PhotoHead(means=("lite0",)), feats, y, 3)
    assert (fit.logits(feats).argmax(1) == y).all()


def test_ensemble_module_computes_the_fitted_head(fitted, tmp_path):
    fit, feats, _ = fitted
    model = ensemble_model(fit, 5)
    pooled = [torch.tensor(feats["lite0"]), torch.tensor(feats["lite1"])]
    with torch.no_grad():
        got = model.species_logits(pooled).numpy()
    np.testing.assert_allclose(got, fit.logits(feats), rtol=1e-4, atol=1e-4)

    out = save_model(model, tmp_path / "ens", [f"s{i}" for i in range(5)], temperature=2.0, extra={"model_id": "e"})
    names = {p.name for p in out.iterdir()}
    assert "model.safetensors" in names
    assert (out / "model.safetensors").stat().st_size < 200_000  # heads only: the backbones come from pip
    loaded = load_model_dir(out)
    assert isinstance(loaded.model, FrozenEnsemble) and loaded.model.flip
    assert loaded.temperature == 2.0 and loaded.labels == [f"s{i}" for i in range(5)]
    assert tuple(loaded.data_config["input_size"]) == (3, 240, 240)  # Lite1's, the larger input
    x = torch.randn(2, 3, 240, 240)
    with torch.no_grad():
        np.testing.assert_allclose(loaded.model(x).numpy(), model(x).numpy(), rtol=1e-4, atol=1e-4)
        logits, gate = served_network(loaded)(x)
    assert logits.shape == (2, 5) and gate.shape == (2, 1000)
    # flip averaging: a mirrored photo gets the same scores
    with torch.no_grad():
        np.testing.assert_allclose(model(x.flip(-1)).numpy(), model(x).numpy(), rtol=1e-3, atol=1e-3)


def test_ensemble_exports_to_onnx_with_its_gate(fitted, tmp_path):
    pytest.importorskip("onnxruntime")
    from mushroom_id.serving.onnx import OnnxNetwork

    fit, _, _ = fitted
    model = ensemble_model(fit, 5)
    loaded = load_model_dir(save_model(model, tmp_path / "ens", [f"s{i}" for i in range(5)], temperature=2.0))
    network = served_network(loaded)
    onnx = OnnxNetwork(network, tuple(loaded.data_config["input_size"]), cache_dir=tmp_path / "onnx")
    x = torch.randn(2, 3, 240, 240)
    with torch.no_grad():
        ref = network(x)
    got = onnx(x)
    assert len(got) == 2  # species logits and the gate's ImageNet logits
    for a, b in zip(ref, got, strict=True):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-3, atol=1e-3)
