"""Keras models behind the ``keras:`` spec: real .keras and .h5 files made here, real photos from ../shared.

Every file is built in the test with Keras 3 on the PyTorch backend (the optional extra,
requirements-keras.txt, which requirements-test.txt installs): a tiny functional model in the original's
layer vocabulary, saved as ``.keras`` and ``.h5``; the same weights written as tf.keras 2.4 (the
original's Keras) laid out its HDF5 files; a Lambda layer and a custom layer (refused); and once, marked
slow, ``keras.applications.Xception(weights=None)`` through the ``keras-sidecar`` command.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import numpy as np
import pytest

os.environ.setdefault("KERAS_BACKEND", "torch")
if os.environ.get("CI"):  # CI installs the extra: a missing keras is a failure there, not a skip
    import keras
else:
    keras = pytest.importorskip("keras")
h5py = pytest.importorskip("h5py")
# Keras' torch backend converts tensors with np.array(x) (numpy 2 warns about its copy keyword): not ours
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")

from mushroom_id.core.catalog import DANGEROUS, default_catalog  # noqa: E402
from mushroom_id.core.keras_models import (  # noqa: E402
    import_keras,
    keras_class_order,
    legacy_h5_compat,
    load_keras_model,
    read_class_names,
    write_sidecar,
)
from mushroom_id.core.models import ModelLoadError, load_model  # noqa: E402
from mushroom_id.core.network import GateView  # noqa: E402
from mushroom_id.core.safety import DISCLAIMER  # noqa: E402

SIZE = 299  # the original's input, with its preprocessing (nearest resize to 299 x 299, x / 127.5 - 1)
# As the original's class folders named them: synonyms and misspellings of one species (Kuehneromyces
# mutabilis twice), a misspelling of a renamed species (Higrocybe -> Cuphophyllus pratensis), a family that
# is no species (Clavariaceae), deadly and poisonous species, and the four species of the evaluation data.
CLASS_NAMES = [
    "Amanita_muscaria",
    "Amanita_phalloides",
    "Amanita_virosa",
    "Boletus_edulis",
    "Cantharellus_cibarius",
    "Clavariaceae",
    "Higrocybe_pratensis",
    "Kuehneromyce_mutabilis",
    "Kuehneromyces_mutabilis",
]
PHOTOS = [("Amanita muscaria", "inatse"), ("Boletus edulis", "inatse"), ("Amanita phalloides", "seed")]


def tiny_model(num_classes: int = len(CLASS_NAMES), size: int = SIZE, seed: int = 0):
    """A small functional model in Xception's and Inception-ResNet-v2's vocabulary (Conv2D, BatchNormalization,
    SeparableConv2D, MaxPooling2D, a residual Add, a scaled residual, global pooling, dropout, softmax), with
    random weights large enough that its probabilities differ from photo to photo."""
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer

    layers = keras.layers
    inp = keras.Input((size, size, 3), name="input_1")
    x = layers.Conv2D(8, 3, strides=4, use_bias=False, name="block1_conv1")(inp)
    x = layers.BatchNormalization(name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    r = layers.Conv2D(8, 1, strides=2, padding="same", use_bias=False, name="conv2d")(x)
    x = layers.SeparableConv2D(8, 3, padding="same", use_bias=False, name="block2_sepconv1")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="same", name="block2_pool")(x)
    x = layers.Add(name="add")([x, r])
    up = layers.Conv2D(8, 1, name="block35_1_conv")(x)
    x = CustomScaleLayer(0.17, name="block35_1")([x, up])  # what tf.keras 2 wrote as a Lambda
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    out = layers.Dense(num_classes, activation="softmax", name="predictions")(x)
    model = keras.Model(inp, out, name="model")
    rng = np.random.default_rng(seed)
    weights = []
    for w in model.weights:
        value = rng.normal(0, 0.5, size=w.shape) if "moving_variance" not in w.path else rng.uniform(0.5, 2, w.shape)
        weights.append(value.astype("float32"))
    model.set_weights(weights)
    return model


# --- a tf.keras 2.4 HDF5 file, as the original's Keras (2.4.0 on TensorFlow 2.3.1) wrote model.save("x.h5") ---


def _init(name: str) -> dict:
    return {"class_name": name, "config": {"seed": None} if name.startswith("Glorot") else {}}


def _tf2_layer(layer) -> dict:
    """One layer's entry in a tf.keras 2 model_config: its own keys, "dtype": "float32", old inbound nodes."""
    kind = type(layer).__name__
    base = {"name": layer.name, "trainable": True, "dtype": "float32"}
    conv = {
        "kernel_size": list(layer.kernel_size) if hasattr(layer, "kernel_size") else None,
        "strides": list(getattr(layer, "strides", (1, 1))),
        "padding": getattr(layer, "padding", "valid"),
        "data_format": "channels_last",
        "dilation_rate": [1, 1],
        "groups": 1,  # written by tf.keras 2.3+ for every convolution, separable ones included
        "activation": "linear",
        "use_bias": getattr(layer, "use_bias", True),
        "kernel_initializer": _init("GlorotUniform"),
        "bias_initializer": _init("Zeros"),
        "kernel_regularizer": None,
        "bias_regularizer": None,
        "activity_regularizer": None,
        "kernel_constraint": None,
        "bias_constraint": None,
    }
    if kind == "InputLayer":
        cfg = {"batch_input_shape": [None, *layer.batch_shape[1:]], "dtype": "float32", "sparse": False}
        cfg.update(ragged=False, name=layer.name)
    elif kind == "Conv2D":
        cfg = {**base, "filters": layer.filters, **conv}
    elif kind == "SeparableConv2D":
        cfg = {**base, "filters": layer.filters, **conv, "depth_multiplier": 1}
        cfg.update(depthwise_initializer=_init("GlorotUniform"), pointwise_initializer=_init("GlorotUniform"))
        cfg.update(depthwise_regularizer=None, pointwise_regularizer=None)
        cfg.update(depthwise_constraint=None, pointwise_constraint=None)
    elif kind == "BatchNormalization":
        cfg = {**base, "axis": [3], "momentum": 0.99, "epsilon": 0.001, "center": True, "scale": True}
        for w in ("beta", "gamma", "moving_mean", "moving_variance"):
            cfg[f"{w}_initializer"] = _init("Ones" if w in ("gamma", "moving_variance") else "Zeros")
        cfg.update(beta_regularizer=None, gamma_regularizer=None, beta_constraint=None, gamma_constraint=None)
    elif kind == "Activation":
        cfg = {**base, "activation": "relu"}
    elif kind == "MaxPooling2D":
        cfg = {**base, "pool_size": list(layer.pool_size), "padding": layer.padding, "strides": list(layer.strides)}
        cfg["data_format"] = "channels_last"
    elif kind == "Add":
        cfg = dict(base)
    elif kind == "CustomScaleLayer":  # tf.keras 2's InceptionResNetV2: a Python lambda, marshalled bytecode
        code = base64.b64encode(b"\xe3 (python 3.7 bytecode, never loaded)").decode()
        cfg = {**base, "function": [code, None, None], "function_type": "lambda"}
        cfg.update(module="tensorflow.python.keras.applications.inception_resnet_v2", output_shape=[None, None, 8])
        cfg.update(output_shape_type="raw", output_shape_module=None, arguments={"scale": layer.scale})
        kind = "Lambda"
    elif kind == "GlobalAveragePooling2D":
        cfg = {**base, "data_format": "channels_last"}
    elif kind == "Dropout":
        cfg = {**base, "rate": layer.rate, "noise_shape": None, "seed": None}
    elif kind == "Dense":
        cfg = {**base, "units": layer.units, "activation": "softmax", "use_bias": True}
        cfg.update({k: v for k, v in conv.items() if k.endswith(("initializer", "regularizer", "constraint"))})
    else:  # pragma: no cover - the tiny model uses only the kinds above
        raise NotImplementedError(kind)
    inbound = []
    if kind != "InputLayer":
        parents = layer._inbound_nodes[0].parent_nodes
        inbound = [[[p.operation.name, 0, 0, {}] for p in parents]]
    return {"class_name": kind, "config": cfg, "name": layer.name, "inbound_nodes": inbound}


def write_tf2_h5(model, path) -> None:
    """``model`` (built by :func:`tiny_model`) saved as tf.keras 2.4 laid out an HDF5 file: its model_config
    (class and argument names of tf.keras 2, an InceptionResNetV2-style Lambda) and "layer/kernel:0" weights."""
    config = {
        "class_name": "Functional",
        "config": {
            "name": model.name,
            "layers": [_tf2_layer(layer) for layer in model.layers],
            "input_layers": [[model.layers[0].name, 0, 0]],
            "output_layers": [[model.layers[-1].name, 0, 0]],
        },
    }
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.4.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        group.attrs["backend"] = b"tensorflow"
        group.attrs["keras_version"] = b"2.4.0"
        for layer in model.layers:
            g = group.create_group(layer.name)
            names = [f"{layer.name}/{w.name}:0".encode() for w in layer.weights]
            g.attrs["weight_names"] = names
            for name, value in zip(names, layer.get_weights(), strict=True):
                g.create_dataset(name.decode(), data=value)


# --- fixtures ---


@pytest.fixture(scope="module")
def tiny():
    return tiny_model()


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, tiny):
    """{format: model file with its sidecar}: .keras and .h5 saved by Keras 3, and a tf.keras 2.4 .h5."""
    root = tmp_path_factory.mktemp("keras_models")
    files = {}
    for kind, name in (("keras", "model.keras"), ("h5", "model.h5"), ("tf2-h5", "original.h5")):
        (root / kind).mkdir()
        path = root / kind / name
        write_tf2_h5(tiny, path) if kind == "tf2-h5" else tiny.save(path)
        write_sidecar(path, CLASS_NAMES, "custom", input_size=SIZE, scale=[-1, 1], model_id=f"tiny-{kind}")
        files[kind] = path
    return files


def original_preprocessing(path, size: int = SIZE) -> np.ndarray:
    """What the original did to a photo: keras' load_img (PIL, nearest, squashed to size x size), x / 127.5 - 1."""
    image = keras.utils.load_img(str(path), target_size=(size, size), interpolation="nearest")
    return keras.utils.img_to_array(image)[None] / 127.5 - 1.0


def merged(probs: np.ndarray, loaded) -> np.ndarray:
    """The original's per-class probabilities added up per catalog species, in the loaded model's label order."""
    catalog = default_catalog()
    out = np.zeros((len(probs), len(loaded.labels)))
    for j, raw in enumerate(CLASS_NAMES):
        name = catalog.resolve(raw) or raw.replace("_", " ")
        out[:, loaded.labels.index(name)] += probs[:, j]
    return out


# --- tests ---


def test_labels_resolve_through_the_catalog(model_files):
    loaded = load_model(f"keras:{model_files['keras']}")
    assert loaded.labels == [
        "Amanita muscaria",
        "Amanita phalloides",
        "Amanita virosa",
        "Boletus edulis",
        "Cantharellus cibarius",
        "Clavariaceae",
        "Cuphophyllus pratensis",
        "Kuehneromyces mutabilis",
    ]
    info = loaded.config["label_resolution"]
    assert info["merged"] == {"Kuehneromyces mutabilis": ["Kuehneromyce_mutabilis", "Kuehneromyces_mutabilis"]}
    assert info["renamed"]["Higrocybe pratensis"] == "Cuphophyllus pratensis"
    assert info["unresolved"] == ["Clavariaceae"]
    assert loaded.data_config["input_size"] == (3, SIZE, SIZE)
    assert loaded.folder == model_files["keras"].parent and loaded.model_id == "tiny-keras"


@pytest.mark.parametrize("kind", ["keras", "h5", "tf2-h5"])
def test_predictions_equal_keras_own_predict(model_files, tiny, photo_of, kind):
    """Through the spec, on real photos: the same input tensor as the original's preprocessing, and the same
    probabilities as Keras' model.predict on it (merged per species)."""
    import torch

    loaded = load_model(f"keras:{model_files[kind]}")
    transform = loaded.transform()
    from mushroom_id.core.images import load_image

    paths = [photo_of(*p) for p in PHOTOS]
    ours = torch.stack([transform(load_image(p)) for p in paths])
    reference = np.concatenate([original_preprocessing(p) for p in paths])
    np.testing.assert_allclose(ours.permute(0, 2, 3, 1).numpy(), reference, atol=1e-5)
    with torch.inference_mode():
        probs = loaded.model(ours).softmax(-1).numpy()
    expected = merged(tiny.predict(reference, verbose=0), loaded)
    np.testing.assert_allclose(probs, expected, atol=2e-5)
    assert len({tuple(np.round(p, 3)) for p in probs}) == len(paths)  # the photos get different answers


def test_tf2_h5_is_rewritten_in_memory_only(model_files):
    path = model_files["tf2-h5"]
    before = path.read_bytes()
    with h5py.File(path) as f:
        config = json.loads(f.attrs["model_config"])
    fixed, notes = legacy_h5_compat(config)
    assert any("CustomScaleLayer" in n for n in notes) and any("groups" in n for n in notes)
    assert [layer["class_name"] for layer in fixed["config"]["layers"]].count("Lambda") == 0
    load_keras_model(f"keras:{path}")
    assert path.read_bytes() == before


def test_predictor_result_has_gate_warnings_and_disclaimer(model_files, photo_of):
    from mushroom_id.core.safety import candidate
    from mushroom_id.serving.predictor import Predictor

    loaded = load_model(f"keras:{model_files['h5']}")
    predictor = Predictor(loaded)
    assert isinstance(predictor.network.gate_model, GateView)  # the fungus gate runs on its own Lite0, at 224 px
    results = [predictor.predict(photo_of(*p)) for p in PHOTOS[:2]]
    assert all(r["fungus_score"] > 0.5 for r in results)  # a mushroom photo, seen by the gate as it was trained
    results.append(predictor.predict_observation([photo_of(*p) for p in PHOTOS[:2]]))
    for result in results:
        assert result["disclaimer"] == DISCLAIMER
        assert result["model"] == {"id": "tiny-h5", "num_species": 8}
        assert result["is_fungus"] is True and 0 < result["fungus_score"] <= 1
        assert len(result["candidates"]) == 5
        toxic = {c["species"] for c in result["candidates"] if c["edibility"] in DANGEROUS}
        warned = {w["species"] for w in result["warnings"] if w["kind"] == "toxic_candidate"}
        assert toxic and toxic <= warned
        assert not result["confident"]  # no thresholds fitted yet: never confident
    clav = candidate("Clavariaceae", 0.5, predictor.catalog)
    assert clav["edibility"] == "unknown" and clav["lookalikes"] == []


@pytest.mark.parametrize("suffix", [".keras", ".h5"])
def test_lambda_layer_is_refused(tmp_path, suffix):
    inp = keras.Input((32, 32, 3))
    x = keras.layers.Lambda(lambda t: t * 2)(inp)
    out = keras.layers.Dense(len(CLASS_NAMES), activation="softmax")(keras.layers.GlobalAveragePooling2D()(x))
    path = tmp_path / f"model{suffix}"
    keras.Model(inp, out).save(path)
    (tmp_path / "config.json").write_text(
        json.dumps(
            {
                "format": "keras",
                "model_file": path.name,
                "class_names": CLASS_NAMES,
                "preprocessing": {"backbone": "custom", "input_size": 32, "scale": [-1, 1]},
            }
        )
    )
    with pytest.raises(ModelLoadError, match="refused.*Lambda"):
        load_model(f"keras:{path}")


def test_custom_layer_is_refused_even_when_registered(tmp_path):
    @keras.saving.register_keras_serializable(package="mushroom_test")
    class Doubler(keras.layers.Layer):
        def call(self, x):
            return x * 2

    inp = keras.Input((32, 32, 3))
    out = keras.layers.Dense(2, activation="softmax")(keras.layers.GlobalAveragePooling2D()(Doubler()(inp)))
    path = tmp_path / "model.keras"
    keras.Model(inp, out).save(path)
    with pytest.raises(ModelLoadError, match="refused.*outside Keras"):
        write_sidecar(path, ["Amanita muscaria", "Boletus edulis"], "custom", input_size=32, scale=[-1, 1])


def test_sidecar_errors(tmp_path, tiny, model_files):
    folder = tmp_path / "m"
    folder.mkdir()
    path = folder / "model.keras"
    tiny.save(path)
    with pytest.raises(ModelLoadError, match="no config.json.*keras-sidecar"):
        load_model(f"keras:{path}")
    with pytest.raises(ModelLoadError, match="takes input"):  # an Xception sidecar says 299, the file takes 64
        small = folder / "small.keras"
        tiny_model(size=64).save(small)
        write_sidecar(small, CLASS_NAMES, "xception")
    with pytest.raises(ModelLoadError, match="xception takes input_size 299"):
        write_sidecar(path, CLASS_NAMES, "xception", input_size=224)
    with pytest.raises(ModelLoadError, match="9 outputs|names 8 classes"):
        write_sidecar(path, CLASS_NAMES[:8], "xception")
    write_sidecar(path, CLASS_NAMES, "xception")
    config = json.loads((folder / "config.json").read_text())
    assert config["preprocessing"] == {
        "backbone": "xception",
        "input_size": 299,
        "scale": [-1, 1],
        "resize": "squash",
        "interpolation": "nearest",
    }
    assert config["outputs"] == "probabilities"
    for change, message in (
        ({"preprocessing": {**config["preprocessing"], "backbone": "resnet"}}, "unknown backbone"),
        ({"class_names": []}, "no class_names"),
        ({"model_file": "other.keras"}, "describes other.keras"),
        ({"outputs": "logits"}, "ends in probabilities"),
    ):
        (folder / "config.json").write_text(json.dumps({**config, **change}))
        with pytest.raises(ModelLoadError, match=message):
            load_model(f"keras:{path}")
    with pytest.raises(ModelLoadError, match="does not exist"):
        load_model(f"keras:{folder / 'missing.h5'}")


def test_without_keras_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "keras", None)
    with pytest.raises(ModelLoadError, match="pip install -r requirements-keras.txt"):
        import_keras()
    monkeypatch.setenv("KERAS_BACKEND", "jax")
    with pytest.raises(ModelLoadError, match="KERAS_BACKEND=jax.*PyTorch backend"):
        import_keras()


def test_class_order_of_the_original_labels(shared_catalog, tmp_path):
    """The original's labels_933.csv is sorted case-insensitively; Keras' loaders number class folders with
    Python's sorted(): 32 of the 933 names sit elsewhere in the model's outputs."""
    names = read_class_names(shared_catalog / "labels_933.csv")
    assert len(names) == 933
    ordered = keras_class_order(names)
    assert sum(a != b for a, b in zip(names, ordered, strict=True)) == 32
    assert ordered.index("Clavaria acuta") < ordered.index("Clavariaceae")
    train = tmp_path / "train"
    for name in ("Clavariaceae", "Clavaria_acuta", "Agaricus_arvensis"):
        (train / name).mkdir(parents=True)
    assert read_class_names(train) == ["Agaricus_arvensis", "Clavaria_acuta", "Clavariaceae"]


def test_cli_predict_and_sidecar_command(model_files, photo_of, tmp_path, tiny, capsys):
    """The CLI as a user runs it: keras-sidecar on a model file, then predict --json on a real photo."""
    folder = tmp_path / "cli"
    folder.mkdir()
    path = folder / "model.h5"
    tiny.save(path)
    labels = folder / "labels.txt"
    labels.write_text("\n".join(CLASS_NAMES) + "\n")

    def run(*args):
        env = dict(os.environ, KERAS_BACKEND="torch", OMP_NUM_THREADS="1")
        cmd = [sys.executable, "-m", "mushroom_id", *args]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)

    from mushroom_id.__main__ import main

    args = ["keras-sidecar", str(path), "--labels", str(labels), "--backbone", "custom", "--input-size", "299"]
    assert main(args) == 2 and "scale" in capsys.readouterr().err  # a custom backbone must state its scale
    done = run(
        "keras-sidecar", str(path), "--labels", str(labels), "--backbone", "custom", "--input-size", "299",
        "--scale=-1,1", "--model-id", "cli-tiny",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "9 classes -> 8 labels" in done.stdout and "measure-trust --write" in done.stdout
    photo = photo_of("Amanita phalloides", "seed")
    done = run("predict", "--model", f"keras:{path}", "--json", str(photo))
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)[str(photo)]
    assert result["model"]["id"] == "cli-tiny" and result["disclaimer"] == DISCLAIMER
    expected = merged(tiny.predict(original_preprocessing(photo), verbose=0), load_model(f"keras:{path}"))[0]
    top = result["candidates"][0]
    assert top["probability"] == pytest.approx(expected.max(), abs=1e-4)


def test_evaluation_puts_a_keras_model_in_the_comparison_table(model_files, photos_dir, tmp_path):
    import timm
    from test_train_fixtures import PER_SPLIT, SPECIES, write_hub_dataset

    from mushroom_id.core.models import save_model
    from mushroom_id.evaluate import main

    data = write_hub_dataset(tmp_path / "ds", photos_dir, per_split={"train": 1, "validation": 1, "test": 2})
    timm_model = timm.create_model(
        "test_efficientnet",
        pretrained=False,
        num_classes=len(SPECIES),
        pretrained_cfg_overlay={"input_size": (3, 40, 40)},
    )
    save_model(timm_model, tmp_path / "ours", sorted(SPECIES), extra={"model_id": "ours"})
    out = tmp_path / "eval"
    argv = ["--model", f"local-dir:{tmp_path / 'ours'}", "--model", f"keras:{model_files['tf2-h5']}"]
    assert main([*argv, "--data", str(data), "--split", "test", "--out", str(out), "--workers", "0"]) == 0
    results = json.loads((out / "comparison.json").read_text())
    assert [r["model"] for r in results] == ["ours", "tiny-tf2-h5"]
    n_test = 2 * len(SPECIES)
    assert [r["images"] for r in results] == [n_test, n_test]  # all four species are among the Keras labels
    assert results[1]["skipped_not_in_model"] == 0 and 0 <= results[1]["top5"] <= 1
    table = (out / "comparison.md").read_text()
    assert "| tiny-tf2-h5 |" in table and "| ours |" in table
    assert (out / "1_tiny-tf2-h5" / "per_species.csv").is_file()
    assert PER_SPLIT  # the shared fixtures module is the one the other evaluation tests use


def test_measure_trust_writes_the_sidecar(model_files, photos_dir, tmp_path, monkeypatch):
    """The calibration command fits temperature and thresholds for a Keras model and stores them in its sidecar."""
    import shutil

    from test_train_fixtures import write_hub_dataset

    from mushroom_id.core import inference
    from mushroom_id.engine import trust

    folder = tmp_path / "calibrated"
    shutil.copytree(model_files["keras"].parent, folder)
    data = write_hub_dataset(tmp_path / "ds", photos_dir, per_split={"train": 1, "validation": 3, "test": 2})
    monkeypatch.setattr(inference, "CACHE_DIR", tmp_path / "cache")
    few_non_fungus = trust.non_fungus_photos()[:4]
    monkeypatch.setattr(trust, "non_fungus_photos", lambda: few_non_fungus)
    monkeypatch.setattr(trust, "unknown_species_photos", lambda labels, limit=300: [])
    report = trust.measure(
        f"keras:{folder / 'model.keras'}", write=True, out_dir=tmp_path / "reports", data_spec=str(data)
    )
    config = json.loads((folder / "config.json").read_text())
    assert report["written_to"] == str(folder / "config.json")
    assert config["format"] == "keras" and config["temperature"] == pytest.approx(report["temperature"])
    assert set(config["thresholds"]) >= {"fungus", "confident", "conformal_qhat"}
    loaded = load_model(f"keras:{folder / 'model.keras'}")
    assert loaded.temperature == pytest.approx(report["temperature"])


def test_app_offers_a_keras_model_in_its_selector(model_files, photo_of, monkeypatch):
    from mushroom_id.serving.ui import Service, build_demo, model_specs

    spec = f"keras:{model_files['keras']}"
    monkeypatch.delenv("MUSHROOM_MODEL", raising=False)
    monkeypatch.setenv("MUSHROOM_EXTRA_MODELS", spec)
    assert model_specs() == ["embedded", spec]
    service = Service()
    assert service.specs == ["embedded", spec] and not service.failed
    assert dict((v, k) for k, v in service.choices())[spec] == "tiny-keras (8 species)"
    demo = build_demo(service=service)
    dropdown = next(c for c in demo.config["components"] if c["props"].get("label") == "Model")
    assert dropdown["props"]["visible"] is True
    result = service.classify({"path": str(photo_of("Amanita phalloides", "seed"))}, spec)
    assert result["model"]["id"] == "tiny-keras" and result["disclaimer"] == DISCLAIMER


@pytest.mark.slow
def test_xception_made_as_the_original_made_it(tmp_path, photo_of):
    """keras.applications.Xception(weights=None) with the original's head size swapped for 5 classes, saved as
    HDF5, given its sidecar by the command (labels from the training folder), served and checked against Keras."""
    import torch

    from mushroom_id.__main__ import main
    from mushroom_id.serving.predictor import Predictor

    names = ["Amanita_phalloides", "Boletus_edulis", "Clavariaceae", "Lactarius_deliciosus", "Pleurotus"]
    model = keras.applications.Xception(weights=None, classes=len(names))
    path = tmp_path / "xception" / "model.h5"
    path.parent.mkdir()
    model.save(path)
    train = tmp_path / "train"
    for name in names:
        (train / name).mkdir(parents=True)
    assert main(["keras-sidecar", str(path), "--labels", str(train), "--backbone", "xception"]) == 0
    loaded = load_model(f"keras:{path}")
    assert loaded.labels[2:] == ["Clavariaceae", "Lactarius deliciosus", "Pleurotus"]
    photos = [photo_of("Lactarius deliciosus", "seed"), photo_of("Boletus edulis", "seed")]
    reference = np.concatenate([original_preprocessing(p) for p in photos])
    predictor = Predictor(loaded)
    x = predictor.batch(photos)
    with torch.inference_mode():
        ours = loaded.model(x).softmax(-1).numpy()
    np.testing.assert_allclose(ours, model.predict(reference, verbose=0), atol=1e-4)
    result = predictor.predict(photos[0])
    assert result["disclaimer"] == DISCLAIMER and result["model"]["num_species"] == 5
    pleurotus = next(c for c in result["candidates"] if c["species"] == "Pleurotus")
    assert pleurotus["edibility"] == "unknown"
