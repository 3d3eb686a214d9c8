"""mushroom_id.engine.export: ONNX parity, the standalone Hub folder, transformers' pipeline, model card and push."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import yaml

from mushroom_id.core.models import load_model, save_model
from mushroom_id.engine.export import export_hub_folder, export_onnx, model_card, onnx_probabilities, push_to_hub

LABELS = ["Amanita muscaria", "Amanita virosa", "Boletus edulis"]


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    import timm

    torch.manual_seed(0)
    model = timm.create_model(
        "test_efficientnet", pretrained=False, num_classes=3, pretrained_cfg_overlay={"input_size": (3, 64, 64)}
    )
    with torch.no_grad():  # a head with real spread, so probabilities are far from uniform
        model.classifier.weight.mul_(50)
    out = tmp_path_factory.mktemp("tiny") / "model"
    save_model(model, out, LABELS, temperature=1.7, extra={"model_id": "tiny"})
    (out / "metrics.json").write_text(json.dumps({"test": {"top1": 0.5, "top5": 0.9, "images": 12}}))
    return out


@pytest.mark.slow
def test_onnx_matches_pytorch_on_real_photos(tiny_dir, tmp_path, photo_of):
    loaded = load_model(f"local-dir:{tiny_dir}")
    photos = [photo_of("Amanita muscaria"), photo_of("Boletus edulis"), photo_of("Amanita virosa")]
    result = export_onnx(loaded, tmp_path / "model.onnx", check_images=photos)
    assert result["max_prob_diff"] < 1e-4
    import onnx

    meta = {p.key: p.value for p in onnx.load(str(tmp_path / "model.onnx")).metadata_props}
    assert json.loads(meta["label_names"]) == LABELS and float(meta["temperature"]) == pytest.approx(1.7)
    # the ONNX file alone gives calibrated probabilities that differ from the uncalibrated ones
    x = torch.stack([loaded.transform()(loaded_img) for loaded_img in _images(photos)])
    probs = onnx_probabilities(tmp_path / "model.onnx", x.numpy())
    with torch.no_grad():
        raw = torch.softmax(loaded.model(x).double(), -1).numpy()
    assert np.allclose(probs.sum(1), 1.0) and np.abs(probs - raw).max() > 1e-3
    # dynamic batch: one image works too
    assert onnx_probabilities(tmp_path / "model.onnx", x[:1].numpy()).shape == (1, 3)


def _images(paths):
    from mushroom_id.core.images import load_image

    return [load_image(p) for p in paths]


def test_transformers_pipeline_gives_calibrated_probabilities_from_the_export(tiny_dir, tmp_path, photo_of):
    """transformers ignores config.json's temperature; the export folds it into the classifier."""
    from transformers import pipeline

    img = _images([photo_of("Amanita muscaria")])[0]
    loaded = load_model(f"local-dir:{tiny_dir}")
    with torch.no_grad():
        logits = loaded.model(loaded.transform()(img)[None])[0]
    calibrated = dict(zip(LABELS, torch.softmax(logits / loaded.temperature, -1).tolist(), strict=True))
    uncalibrated = dict(zip(LABELS, torch.softmax(logits, -1).tolist(), strict=True))
    assert max(abs(calibrated[k] - uncalibrated[k]) for k in LABELS) > 0.05  # T = 1.7 matters

    raw = json.loads((tiny_dir / "config.json").read_text())
    assert "num_classes" not in raw.get("model_args", {})
    for o in pipeline("image-classification", model=str(tiny_dir))(img, top_k=3):  # the trap: T ignored
        assert o["score"] == pytest.approx(uncalibrated[o["label"]], abs=2e-2)

    exported = export_hub_folder(loaded, tmp_path / "export")
    config = json.loads((exported / "config.json").read_text())
    assert config["temperature"] == 1.0 and config["temperature_folded"] == pytest.approx(1.7)
    out = pipeline("image-classification", model=str(exported))(img, top_k=3)
    assert {o["label"] for o in out} == set(LABELS)
    for o in out:
        assert o["score"] == pytest.approx(calibrated[o["label"]], abs=2e-2)
    # timm alone (create_model + softmax) and load_model agree with the calibrated numbers
    again = load_model(f"local-dir:{exported}")
    with torch.no_grad():
        probs = torch.softmax(again.model(again.transform()(img)[None])[0] / again.temperature, -1)
    assert probs.tolist() == pytest.approx([calibrated[k] for k in LABELS], abs=1e-5)
    card = model_card(exported, "org/x")
    assert "folded into the classifier" in card and "T = 1.700" in card
    assert "divide them by `temperature` = 1.700" in model_card(tiny_dir, "org/x")
    for f in ("config.json", "model.safetensors"):
        assert (exported / f).stat().st_mode & 0o777 == _readable_mode(), f


def test_hub_folder_from_pip_base_weights_is_standalone(tmp_path):
    from safetensors.torch import load_file

    from mushroom_id.core.models import LITE0_PIP, imagenet_backbone

    model = imagenet_backbone(3)
    partial = save_model(
        model,
        tmp_path / "partial",
        LABELS,
        base_weights=LITE0_PIP,
        keep_keys=["classifier.weight", "classifier.bias"],
        half=True,
        extra={"model_id": "p"},
    )
    loaded = load_model(f"local-dir:{partial}")
    full = export_hub_folder(loaded, tmp_path / "full")
    config = json.loads((full / "config.json").read_text())
    assert "base_weights" not in config and config["label_names"] == LABELS and config["model_id"] == "p"
    tensors = load_file(str(full / "model.safetensors"))
    assert set(tensors) == set(loaded.model.state_dict())
    assert all(t.dtype == torch.float32 for t in tensors.values() if t.is_floating_point())


class FakeHub:
    """Stands in for huggingface_hub.HfApi: records calls, copies the uploaded files."""

    def __init__(self, root):
        self.root, self.calls = root, []

    def create_repo(self, repo_id, repo_type, private, exist_ok):
        self.calls.append(("create_repo", repo_id, repo_type))

    def upload_folder(self, folder_path, repo_id, repo_type, allow_patterns, commit_message):
        import fnmatch
        import shutil
        from pathlib import Path

        dest = self.root / repo_id
        dest.mkdir(parents=True, exist_ok=True)
        for f in Path(folder_path).iterdir():
            if any(fnmatch.fnmatch(f.name, p) for p in allow_patterns):
                shutil.copy(f, dest / f.name)
        self.calls.append(("upload_folder", repo_id, repo_type))
        return type("CommitInfo", (), {"commit_url": f"https://huggingface.co/{repo_id}/commit/0"})()


def test_push_to_hub_uploads_folder_with_model_card(tiny_dir, tmp_path):
    import shutil

    folder = tmp_path / "to_push"
    shutil.copytree(tiny_dir, folder)
    (folder / "training_args.bin").write_bytes(b"pickle")  # never uploaded
    hub = FakeHub(tmp_path / "hub")
    url = push_to_hub(folder, "org/mushroom-tiny", dataset="org/mushrooms", api=hub)
    assert url.endswith("/commit/0") and [c[0] for c in hub.calls] == ["create_repo", "upload_folder"]
    repo = tmp_path / "hub" / "org" / "mushroom-tiny"
    assert sorted(p.name for p in repo.iterdir()) == ["README.md", "config.json", "metrics.json", "model.safetensors"]
    assert load_model(f"local-dir:{repo}").labels == LABELS  # the uploaded folder is a loadable model
    card = (repo / "README.md").read_text()
    front = yaml.safe_load(card.split("---")[1])
    assert front["library_name"] == "timm" and front["datasets"] == ["org/mushrooms"]
    assert "| top-1 | 50.0% |" in card and "Never eat" in card and "safe to eat" not in card.lower()


def test_model_card_without_metrics(tiny_dir, tmp_path):
    import shutil

    shutil.copytree(tiny_dir, tmp_path / "m")
    (tmp_path / "m" / "metrics.json").unlink()
    card = model_card(tmp_path / "m", "org/x")
    assert "no metrics recorded" in card and "3 species" in card


def _readable_mode() -> int:
    """What any other new file gets here (0644 under the usual umask 022)."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask
