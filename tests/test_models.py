"""Model loading: the offline ImageNet backbone, the embedded default, local-dir/hf-hub specs, safety."""

from __future__ import annotations

import json
import shutil

import pytest
import timm
import torch
from timm.data import create_transform, resolve_data_config

from mushroom_id.core.catalog import default_catalog
from mushroom_id.core.images import load_image
from mushroom_id.core.models import ModelLoadError, imagenet_backbone, load_model, save_model
from mushroom_id.core.network import IMAGENET_FUNGUS_CLASSES
from mushroom_id.core.paths import EMBEDDED_MODEL_DIR

CAT_CLASSES = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


@pytest.fixture(scope="module")
def imagenet():
    model = imagenet_backbone()
    return model, create_transform(**resolve_data_config(model=model), is_training=False)


def _top5(model_and_transform, source):
    model, transform = model_and_transform
    with torch.no_grad():
        logits = model(transform(load_image(source)).unsqueeze(0))[0]
    return logits.topk(5).indices.tolist()


@pytest.mark.parametrize(
    "species,source",
    [
        ("Amanita muscaria", "wiki"),
        ("Boletus edulis", "wiki"),
        ("Cantharellus cibarius", "inat"),
        ("Morchella esculenta", "inat"),
    ],
)
def test_lite0_from_pip_package_sees_mushrooms(imagenet, photo_of, species, source):
    """Wrong key mapping or wrong mean/std would scatter these over random classes."""
    top5 = _top5(imagenet, photo_of(species, source))
    assert top5[0] in IMAGENET_FUNGUS_CLASSES, (species, top5)


def test_lite0_from_pip_package_sees_a_cat(imagenet):
    from PIL import Image
    from skimage import data

    top5 = _top5(imagenet, Image.fromarray(data.chelsea()))
    assert top5[0] in CAT_CLASSES, top5


def test_embedded_model_loads_offline_with_catalog_labels():
    loaded = load_model("embedded")
    catalog = default_catalog()
    assert loaded.num_classes > 300
    assert all(name in catalog for name in loaded.labels), "every label must be an accepted catalog name"
    assert len(set(loaded.labels)) == loaded.num_classes
    assert tuple(loaded.data_config["mean"]) == (0.5,) * 3 and tuple(loaded.data_config["std"]) == (0.5,) * 3
    assert 0.3 < loaded.temperature < 5
    size = sum(f.stat().st_size for f in EMBEDDED_MODEL_DIR.iterdir())
    assert size <= 10 * 1024 * 1024


def test_embedded_model_predicts_a_training_species(photo_of):
    """Amanita muscaria (hundreds of photos) must come out on top for its Wikipedia photo."""
    loaded = load_model("embedded")
    x = loaded.transform()(load_image(photo_of("Amanita muscaria", "wiki"))).unsqueeze(0)
    with torch.no_grad():
        probs = loaded.model(x).softmax(-1)[0]
    assert loaded.labels[int(probs.argmax())] == "Amanita muscaria"


@pytest.fixture()
def tiny_model_dir(tmp_path):
    torch.manual_seed(0)
    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=3)
    labels = ["Amanita muscaria", "Boletus edulis", "Cantharellus cibarius"]
    out = save_model(model, tmp_path / "tiny", labels, temperature=1.7, extra={"model_id": "tiny-test"})
    return model.eval(), out, labels


def test_save_and_load_round_trip_local_dir(tiny_model_dir):
    model, out, labels = tiny_model_dir
    config = json.loads((out / "config.json").read_text())
    assert config["label_names"] == labels
    assert "num_classes" not in config.get("model_args", {}), "num_classes in model_args breaks transformers"
    loaded = load_model(f"local-dir:{out}")
    assert loaded.labels == labels and loaded.temperature == pytest.approx(1.7)
    assert loaded.model_id == "tiny-test"
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), model(x))


def test_saved_folder_loads_with_timm_itself(tiny_model_dir):
    model, out, labels = tiny_model_dir
    other = timm.create_model(f"local-dir:{out}", pretrained=True, num_classes=len(labels)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(other(x), model(x))


def test_hf_hub_spec_reads_a_hub_cache_offline(tiny_model_dir, tmp_path, monkeypatch):
    """A folder in the Hub cache layout stands in for the Hub; HF_HUB_OFFLINE=1 keeps the network out."""
    import huggingface_hub.constants as hub_constants

    model, out, labels = tiny_model_dir
    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    snap = cache / "models--acme--tiny-mushrooms" / "snapshots" / commit
    snap.mkdir(parents=True)
    for name in ("config.json", "model.safetensors"):
        shutil.copy(out / name, snap / name)
    (cache / "models--acme--tiny-mushrooms" / "refs").mkdir()
    (cache / "models--acme--tiny-mushrooms" / "refs" / "main").write_text(commit)
    monkeypatch.setattr(hub_constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(hub_constants, "HF_HUB_OFFLINE", True)
    loaded = load_model("hf-hub:acme/tiny-mushrooms")
    assert loaded.labels == labels
    with pytest.raises(ModelLoadError, match="Hugging Face Hub"):
        load_model("hf-hub:acme/not-there")


def test_pickle_checkpoints_are_refused(tiny_model_dir, tmp_path):
    model, out, _ = tiny_model_dir
    bad = tmp_path / "pickle_only"
    bad.mkdir()
    shutil.copy(out / "config.json", bad / "config.json")
    torch.save(model.state_dict(), bad / "pytorch_model.bin")
    with pytest.raises(ModelLoadError, match="pickle"):
        load_model(f"local-dir:{bad}")


@pytest.mark.parametrize(
    "damage,message",
    [
        (lambda d: (d / "model.safetensors").write_bytes(b"\x00garbage" * 10), "not a readable safetensors"),
        (lambda d: (d / "config.json").write_text("{not json"), "not valid JSON"),
        (lambda d: (d / "config.json").unlink(), "no config.json"),
        (lambda d: (d / "config.json").write_text(json.dumps({"architecture": "test_efficientnet"})), "label_names"),
    ],
)
def test_damaged_model_folders_give_clear_errors(tiny_model_dir, damage, message):
    _, out, _ = tiny_model_dir
    damage(out)
    with pytest.raises(ModelLoadError, match=message):
        load_model(f"local-dir:{out}")


def test_labels_that_do_not_fit_the_weights_are_refused(tiny_model_dir):
    _, out, labels = tiny_model_dir
    config = json.loads((out / "config.json").read_text())
    config["label_names"] = labels + ["Morchella esculenta"]
    (out / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelLoadError, match="does not fit|4 labels|shape"):
        load_model(f"local-dir:{out}")


@pytest.mark.parametrize("spec", ["nonsense", "local-dir:/does/not/exist", "s3://bucket/model"])
def test_bad_specs(spec):
    with pytest.raises(ModelLoadError):
        load_model(spec)


def test_model_env_variable_selects_the_model(tiny_model_dir, monkeypatch):
    _, out, labels = tiny_model_dir
    monkeypatch.setenv("MUSHROOM_MODEL", f"local-dir:{out}")
    assert load_model().labels == labels


def test_save_model_is_independent_of_memory_format_and_device(tmp_path):
    """channels_last weights are not contiguous: safetensors alone refuses them."""
    torch.manual_seed(0)
    model = timm.create_model("test_convnext", pretrained=False, num_classes=3).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = model(x)
    model = model.to(memory_format=torch.channels_last)
    assert not all(t.is_contiguous() for t in model.state_dict().values())
    out = save_model(model, tmp_path / "cl", ["a", "b", "c"], temperature=1.3, extra={"model_id": "cl"})
    assert not all(t.is_contiguous() for t in model.state_dict().values())  # the model itself is unchanged
    loaded = load_model(f"local-dir:{out}")
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x), reference)
    for f in ("config.json", "model.safetensors"):
        assert (out / f).stat().st_mode & 0o777 == _readable_mode(), f  # safetensors alone writes 0600
    assert not list(out.glob(".*"))  # no temporary files left


def test_fold_temperature_divides_the_logits():
    from mushroom_id.core.models import fold_temperature

    torch.manual_seed(0)
    for arch in ("test_efficientnet", "test_convnext", "test_vit"):
        model = timm.create_model(arch, pretrained=False, num_classes=4).eval()
        x = torch.randn(2, 3, *model.pretrained_cfg["input_size"][1:])
        with torch.no_grad():
            torch.testing.assert_close(fold_temperature(model, 2.5)(x), model(x) / 2.5, rtol=1e-5, atol=1e-6)
        with pytest.raises(ValueError):
            fold_temperature(model, 0.0)


def _readable_mode() -> int:
    """What any other new file gets here (0644 under the usual umask 022)."""
    import os

    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def test_the_fungus_gate_reads_its_own_view_of_any_species_input():
    """Same size and normalisation as the gate: the gate itself. Otherwise (a 299 px model with ImageNet
    mean/std) the view turns the species model's input back into what the gate expects."""
    from mushroom_id.core.network import GateView, gate_view

    gate = imagenet_backbone()
    assert gate_view(gate, {"input_size": (3, 224, 224), "mean": (0.5,) * 3, "std": (0.5,) * 3}) is gate
    imagenet = {"input_size": (3, 299, 299), "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225)}
    view = gate_view(gate, imagenet)
    assert isinstance(view, GateView) and view.size == 224
    pixels = torch.rand(1, 3, 299, 299)
    species_input = (pixels - torch.tensor(imagenet["mean"]).view(1, 3, 1, 1)) / torch.tensor(imagenet["std"]).view(
        1, 3, 1, 1
    )
    gate_input = torch.nn.functional.interpolate((pixels - 0.5) / 0.5, size=(224, 224), mode="bilinear", antialias=True)
    with torch.inference_mode():
        assert torch.allclose(view(species_input), gate(gate_input), atol=1e-3)
