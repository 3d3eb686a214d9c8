"""Keras models (the original project's, or retrained ones) behind the ``keras:`` model spec.

    MUSHROOM_MODEL=keras:/models/xception/model.h5 python app.py
    python -m mushroom_id predict --model keras:/models/xception/model.h5 photo.jpg
    python -m mushroom_id keras-sidecar /models/xception/model.h5 --labels labels_933.csv --backbone xception

A Keras model folder is the model file (``.keras``, or the legacy HDF5 ``.h5`` the original saved) plus a
sidecar ``config.json`` beside it, in the spirit of timm's Hub layout::

    {"format": "keras", "model_file": "model.h5", "model_id": "original-xception",
     "class_names": [...],            # the model's outputs, in its order, as the training folders named them
     "preprocessing": {"backbone": "xception", "input_size": 299, "scale": [-1, 1],
                       "resize": "squash", "interpolation": "nearest"},
     "outputs": "probabilities",      # the original's models end in a softmax
     "temperature": 1.0, "thresholds": {...}}   # written by `measure-trust --write`, as for our models

``keras:<file>`` reads the sidecar beside the file; ``keras:<folder>`` reads the folder's sidecar.
The file is loaded by Keras 3 on the **PyTorch backend** (no TensorFlow; the optional extra
``requirements-keras.txt``) with ``safe_mode=True``: a Lambda layer or custom code is refused.

The Keras model is a ``torch.nn.Module`` on that backend; :class:`KerasClassifier` wraps it so the
rest of the package sees an ordinary classifier: NCHW images in [-1, 1] (the same tensor the fungus
gate's EfficientNet-Lite reads), rescaled to the range the Keras model was trained on, NHWC, and
log-probabilities out (softmax/temperature downstream then give the model's own probabilities).
Class names are resolved through the catalog: synonyms and misspellings become accepted species,
several outputs naming one species are merged (their probabilities added), and names that are not
catalog species (the original's Clavariaceae, Clavulinaceae, Pleurotus, "Panaeolus sp") stay as they
are, with edibility unknown.
"""

from __future__ import annotations

import csv
import json
import os
import re
from pathlib import Path
from typing import Any

import torch
from torch import nn

from mushroom_id.core.catalog import Catalog, default_catalog
from mushroom_id.core.models import LoadedModel, ModelLoadError, write_config

PREFIX = "keras:"
SUFFIXES = (".keras", ".h5", ".hdf5")
INSTALL_HINT = "pip install -r requirements-keras.txt (keras and h5py; Keras runs on PyTorch, no TensorFlow)"

# The original's backbones, preprocessed as keras.applications.<backbone>.preprocess_input does ("tf" mode:
# x / 127.5 - 1) at the size it trained on. "custom": a retrained model; input_size and scale are stated.
BACKBONES: dict[str, dict[str, Any]] = {
    "xception": {"input_size": 299, "scale": [-1, 1]},
    "inception_resnet_v2": {"input_size": 299, "scale": [-1, 1]},
    "custom": {},
}
SCALES = ([-1, 1], [0, 1], [0, 255])
# How the training images were resized to input_size x input_size (aspect ratio not kept, nothing cropped):
# ImageDataGenerator.flow_from_directory / keras.utils.load_img: PIL "nearest" (the original);
# image_dataset_from_directory: "bilinear".
INTERPOLATIONS = ("nearest", "bilinear", "bicubic")
OUTPUTS = ("probabilities", "logits")
NOT_CALIBRATED = 1.01  # the confident threshold of a sidecar no calibration has touched


def import_keras():
    """Keras 3 on the PyTorch backend, or a :class:`ModelLoadError` that says what to do."""
    backend = os.environ.setdefault("KERAS_BACKEND", "torch")
    if backend != "torch":
        raise ModelLoadError(
            f"KERAS_BACKEND={backend}: mushroom-id runs Keras models on the PyTorch backend; "
            "unset KERAS_BACKEND or set KERAS_BACKEND=torch"
        )
    try:
        import keras
    except ImportError as e:
        raise ModelLoadError(f"Keras models need the optional extra: {INSTALL_HINT}") from e
    if not str(keras.__version__).startswith("3."):
        raise ModelLoadError(f"Keras {keras.__version__} found; Keras 3 is needed: {INSTALL_HINT}")
    if keras.backend.backend() != "torch":  # imported earlier in this process with another backend
        raise ModelLoadError(
            f"Keras was already imported with the {keras.backend.backend()} backend; "
            "mushroom-id needs KERAS_BACKEND=torch set before Keras is first imported"
        )
    return keras


class KerasClassifier(nn.Module):
    """A Keras classifier (PyTorch backend) as a timm-like module: NCHW in [-1, 1] -> log-probabilities."""

    def __init__(self, keras_model, scale: list[float], outputs: str, merge: list[int] | None, num_labels: int):
        super().__init__()
        self.keras_model = keras_model
        low, high = scale
        # [-1, 1] -> [low, high]
        self.scale_a, self.scale_b = (high - low) / 2.0, (high + low) / 2.0
        self.outputs = outputs
        self.num_labels = num_labels
        self.register_buffer("merge", torch.tensor(merge, dtype=torch.long) if merge is not None else None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        device = x.device
        x = x.permute(0, 2, 3, 1).float()
        if (self.scale_a, self.scale_b) != (1.0, 0.0):
            x = x * self.scale_a + self.scale_b
        y = self.keras_model(x.contiguous(), training=False)
        y = torch.as_tensor(y).to(device).float()
        if self.outputs == "logits" and self.merge is None:
            return y
        p = y.softmax(dim=-1) if self.outputs == "logits" else y
        if self.merge is not None:
            p = torch.zeros(p.shape[0], self.num_labels, dtype=p.dtype, device=device).index_add_(
                1, self.merge.to(device), p
            )
        # a softmax can underflow to exactly 0: the floor keeps log finite (its probability stays ~1e-38)
        return p.clamp_min(torch.finfo(p.dtype).tiny).log()


def resolve_class_names(class_names: list[str], catalog: Catalog) -> tuple[list[str], list[int] | None, dict]:
    """(labels, merge index or None, what happened): accepted catalog names, outputs naming one species merged."""
    labels: list[str] = []
    index: dict[str, int] = {}
    merge: list[int] = []
    renamed, unresolved = {}, []
    for raw in class_names:
        shown = " ".join(str(raw).replace("_", " ").split())
        accepted = catalog.resolve(shown)
        name = accepted or shown
        if accepted is None:
            unresolved.append(shown)
        elif accepted != shown:
            renamed[shown] = accepted
        if name not in index:
            index[name] = len(labels)
            labels.append(name)
        merge.append(index[name])
    merged = {n: [c for c, i in zip(class_names, merge, strict=True) if labels[i] == n] for n in labels}
    info = {
        "classes": len(class_names),
        "labels": len(labels),
        "renamed": renamed,
        "merged": {n: cs for n, cs in merged.items() if len(cs) > 1},
        "unresolved": unresolved,
    }
    return labels, (merge if len(labels) < len(class_names) else None), info


def read_class_names(path: str | Path) -> list[str]:
    """Class names in the model's output order from: a text file (one per line), a CSV with a ``Names``
    column (the original's ``labels_933.csv``) or a JSON list; or, for a folder of class folders (the
    training folder), the class folders in the order Keras' loaders number them (sorted by name)."""
    path = Path(path)
    if path.is_dir():
        return keras_class_order(p.name for p in path.iterdir() if p.is_dir() and not p.name.startswith("."))
    text = path.read_text(encoding="utf-8-sig")
    if path.suffix == ".json":
        names = json.loads(text)
    elif path.suffix == ".csv":
        rows = list(csv.DictReader(text.splitlines()))
        column = next((c for c in ("Names", "name", "names", "label", "class") if rows and c in rows[0]), None)
        if column is None:
            raise ValueError(f"{path}: a CSV of class names needs a Names column")
        names = [r[column] for r in rows]
    else:
        names = text.splitlines()
    names = [str(n).strip() for n in names if str(n).strip()]
    if not names:
        raise ValueError(f"{path}: no class names")
    return names


def keras_class_order(names) -> list[str]:
    """The order ``ImageDataGenerator.flow_from_directory`` and ``image_dataset_from_directory`` give
    class folders: Python's ``sorted`` of the folder names (spaces were ``_`` in the original's folders)."""
    return sorted((str(n).strip() for n in names), key=lambda n: n.replace(" ", "_"))


def spec_paths(spec: str) -> tuple[Path, Path | None]:
    """(folder, model file named by the spec or None when the spec names a folder)."""
    path = Path(spec[len(PREFIX) :] if spec.startswith(PREFIX) else spec).expanduser()
    if path.is_dir():
        return path, None
    if path.suffix.lower() not in SUFFIXES:
        raise ModelLoadError(f"{spec}: expected a {'/'.join(SUFFIXES)} file or a folder holding one")
    if not path.is_file():
        raise ModelLoadError(f"Keras model file {path} does not exist (from spec {spec!r})")
    return path.parent, path


def check_sidecar(config: dict[str, Any], where: str) -> dict[str, Any]:
    """The preprocessing the sidecar states, checked against its backbone; a ModelLoadError says what is wrong."""
    if config.get("format") != "keras":
        raise ModelLoadError(f'{where}: not a Keras sidecar ("format": "keras" missing)')
    if not config.get("class_names"):
        raise ModelLoadError(f"{where}: no class_names (the model's classes in its output order)")
    pre = dict(config.get("preprocessing") or {})
    backbone = pre.get("backbone")
    if backbone not in BACKBONES:
        raise ModelLoadError(f"{where}: unknown backbone {backbone!r}; known: {', '.join(BACKBONES)}")
    for key, expected in BACKBONES[backbone].items():
        if key in pre and pre[key] != expected:
            raise ModelLoadError(
                f"{where}: {backbone} takes {key} {expected} (as the original trained it), the sidecar says {pre[key]}"
            )
        pre.setdefault(key, expected)
    size = pre.get("input_size")
    if not isinstance(size, int) or not 8 <= size <= 2048:
        raise ModelLoadError(f"{where}: preprocessing.input_size must be a whole number of pixels, not {size!r}")
    if pre.get("scale") not in SCALES:
        raise ModelLoadError(f"{where}: preprocessing.scale {pre.get('scale')!r} is not one of {SCALES}")
    pre.setdefault("resize", "squash")
    if pre["resize"] != "squash":
        raise ModelLoadError(f'{where}: only resize "squash" (the whole photo to a square, as Keras\' loaders do)')
    pre.setdefault("interpolation", "nearest")
    if pre["interpolation"] not in INTERPOLATIONS:
        raise ModelLoadError(f"{where}: interpolation {pre['interpolation']!r} is not one of {INTERPOLATIONS}")
    if config.get("outputs", "probabilities") not in OUTPUTS:
        raise ModelLoadError(f"{where}: outputs must be one of {OUTPUTS}")
    return pre


def data_config(pre: dict[str, Any]) -> dict[str, Any]:
    """timm's data config for the sidecar's preprocessing: the whole photo squashed to input_size x input_size
    with PIL's filter, then scaled to [-1, 1] (:class:`KerasClassifier` maps that to the model's own range)."""
    size = pre["input_size"]
    return {
        "input_size": (3, size, size),
        "interpolation": pre["interpolation"],
        "mean": (0.5, 0.5, 0.5),
        "std": (0.5, 0.5, 0.5),
        "crop_pct": 1.0,
        "crop_mode": "squash",
    }


def _output_kind(keras_model) -> str | None:
    """ "probabilities" when the last layer ends in a softmax, "logits" when linear, None when unknown."""
    last = keras_model.layers[-1]
    activation = getattr(last, "activation", None)
    name = getattr(activation, "__name__", None)
    if type(last).__name__ == "Softmax" or name == "softmax":
        return "probabilities"
    if name == "linear":
        return "logits"
    return None


def load_keras_file(path: Path):
    """``keras.saving.load_model`` in safe mode; refusals and broken files become ModelLoadError."""
    keras = import_keras()
    if path.suffix.lower() in (".h5", ".hdf5"):
        try:
            import h5py  # noqa: F401
        except ImportError as e:
            raise ModelLoadError(f"{path.name} is an HDF5 file, which needs h5py: {INSTALL_HINT}") from e
    try:
        if path.suffix.lower() in (".h5", ".hdf5"):
            keras_model = _load_legacy_h5(keras, path)
        else:
            keras_model = keras.saving.load_model(str(path), compile=False, safe_mode=True)
    except ModelLoadError:
        raise
    except Exception as e:
        text = str(e)
        first = text.splitlines()[0][:300] if text else ""
        if "Lambda" in text or "safe_mode" in text or "lambda" in text:
            raise ModelLoadError(
                f"{path} is refused: it holds Python code (a Lambda layer) that Keras' safe mode does not load, "
                "because loading it can run arbitrary code. Only models made of standard Keras layers are served."
            ) from None
        if any(s in text for s in ("Could not locate", "Unknown layer", "could not be deserialized", "custom_object")):
            raise ModelLoadError(
                f"{path} is refused: it needs custom code (layers or functions outside Keras), which is not "
                f"loaded ({type(e).__name__}: {first})"
            ) from None
        raise ModelLoadError(
            f"cannot load {path} with Keras {keras.__version__} ({type(e).__name__}: {first})"
        ) from None
    custom = custom_parts(keras_model)
    if custom:
        raise ModelLoadError(
            f"{path} is refused: it uses code outside Keras ({', '.join(custom[:5])}); only models made of "
            "standard Keras layers are served"
        )
    return keras_model


# InceptionResNetV2 as tf.keras 2 built it scales each residual branch with a Python lambda
# (`Lambda(lambda inputs, scale: inputs[0] + inputs[1] * scale, arguments={"scale": s}, name="block35_1")`);
# Keras 3 builds the same block with its own CustomScaleLayer. Such a layer is rebuilt as CustomScaleLayer from
# its name, its two inputs and its scale: the file's bytecode is never loaded or run.
_IRV2_LAMBDA = re.compile(r"^block(35|17|8)_\d+$")
# Arguments tf.keras 2 wrote for layers that never used them (SeparableConv inherited them from Conv) and that
# Keras 3 refuses: dropped when they hold the value that means "not used".
_UNUSED_TF2_ARGS = {
    "SeparableConv1D": {"groups": 1, "kernel_initializer": None, "kernel_regularizer": None, "kernel_constraint": None},
    "SeparableConv2D": {"groups": 1, "kernel_initializer": None, "kernel_regularizer": None, "kernel_constraint": None},
    "DepthwiseConv2D": {"groups": 1},
    "DepthwiseConv1D": {"groups": 1},
}


def legacy_h5_compat(model_config: dict) -> tuple[dict, list[str]]:
    """The model config of a tf.keras 2 HDF5 file made loadable by Keras 3 (see above); (config, what changed)."""
    import copy

    config = copy.deepcopy(model_config)
    notes: list[str] = []

    def fix(layer: dict) -> dict:
        kind, cfg = layer.get("class_name"), layer.get("config") or {}
        if isinstance(cfg.get("layers"), list):  # a nested model (Sequential or Functional)
            cfg["layers"] = [fix(inner) for inner in cfg["layers"]]
        for key, unused in _UNUSED_TF2_ARGS.get(kind, {}).items():
            if key in cfg and (unused is None or cfg[key] == unused):
                del cfg[key]
                notes.append(f"{cfg.get('name')}: dropped tf.keras 2's unused {key}")
        nodes = layer.get("inbound_nodes") or []
        if (
            kind == "Lambda"
            and _IRV2_LAMBDA.match(str(cfg.get("name", "")))
            and set(cfg.get("arguments") or {}) == {"scale"}
            and isinstance(cfg["arguments"]["scale"], int | float)
            and len(nodes) == 1
            and len(nodes[0]) == 2
        ):
            layer = dict(layer, class_name="CustomScaleLayer")
            layer["config"] = {
                "name": cfg["name"],
                "trainable": cfg.get("trainable", True),
                "dtype": cfg.get("dtype", "float32"),
                "scale": float(cfg["arguments"]["scale"]),
            }
            notes.append(f"{cfg['name']}: InceptionResNetV2's residual-scale lambda rebuilt as CustomScaleLayer")
            return layer
        return layer

    config = fix(config)
    return config, notes


def _load_legacy_h5(keras, path: Path):
    """A legacy HDF5 file, through :func:`legacy_h5_compat` when it was written by tf.keras 2 (in memory:
    the user's file is never changed)."""
    import io

    import h5py
    from keras.src.applications.inception_resnet_v2 import CustomScaleLayer
    from keras.src.legacy.saving.legacy_h5_format import load_model_from_hdf5

    with h5py.File(path, "r") as f:
        raw = f.attrs.get("model_config")
        if raw is None:
            raise ModelLoadError(f"{path} holds no model (only weights?): save the whole model with model.save()")
        raw = raw.decode("utf-8") if hasattr(raw, "decode") else raw
        fixed, notes = legacy_h5_compat(json.loads(raw))
        # Keras' own InceptionResNetV2 layer, which Keras 3 does not register for HDF5 files
        known = {"CustomScaleLayer": CustomScaleLayer}
        if not notes:
            return load_model_from_hdf5(f, custom_objects=known, compile=False, safe_mode=True)
        buffer = io.BytesIO()
        with h5py.File(buffer, "w") as mem:
            for key, value in f.attrs.items():
                mem.attrs[key] = value
            mem.attrs["model_config"] = json.dumps(fixed)
            for key in f:
                f.copy(f[key], mem, name=key)
            return load_model_from_hdf5(mem, custom_objects=known, compile=False, safe_mode=True)


def custom_parts(keras_model) -> list[str]:
    """Layers and activations of the model whose code is not Keras' own (a registered custom layer loads in
    safe mode when its class is importable: it is still custom code), and any Lambda layer."""
    found = []
    for layer in keras_model._flatten_layers(include_self=False, recursive=True):
        kind = type(layer)
        if not kind.__module__.startswith("keras.") or kind.__name__ == "Lambda":
            found.append(f"layer {layer.name} ({kind.__module__}.{kind.__name__})")
        activation = getattr(layer, "activation", None)
        if callable(activation) and not str(getattr(activation, "__module__", "")).startswith("keras."):
            found.append(f"activation of {layer.name} ({getattr(activation, '__module__', '?')})")
    return found


def read_sidecar(folder: Path) -> dict[str, Any]:
    path = folder / "config.json"
    if not path.is_file():
        raise ModelLoadError(
            f"{folder} has no config.json beside the Keras model: write it with "
            "`python -m mushroom_id keras-sidecar <model file> --labels <labels file or training folder> "
            "--backbone xception|inception_resnet_v2` (see README, 'Models from the original Keras project')"
        )
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{path} is not valid JSON: {e}") from e


def load_keras_model(spec: str, device: str = "cpu", catalog: Catalog | None = None) -> LoadedModel:
    """Load ``keras:<file or folder>`` (see module doc) as a :class:`LoadedModel`."""
    folder, named = spec_paths(spec)
    config = read_sidecar(folder)
    where = str(folder / "config.json")
    check_sidecar(config, where)
    file_name = config.get("model_file")
    if named is not None and file_name and file_name != named.name:
        raise ModelLoadError(f"{where} describes {file_name}, not {named.name}: one Keras model per folder")
    path = named or (folder / file_name if file_name else None)
    if path is None or not path.is_file():
        raise ModelLoadError(f"{where}: model_file {file_name!r} not found in {folder}")
    return _assemble(load_keras_file(path), config, folder, path, catalog or default_catalog())


def _assemble(keras_model, config: dict[str, Any], folder: Path, path: Path, catalog: Catalog) -> LoadedModel:
    """Check the loaded file against its sidecar and wrap it."""
    where = str(folder / "config.json")
    pre = check_sidecar(config, where)
    if len(keras_model.inputs) != 1 or len(keras_model.outputs) != 1:
        raise ModelLoadError(f"{path.name}: expected one image input and one output")
    shape = tuple(keras_model.inputs[0].shape)
    size = pre["input_size"]
    if len(shape) != 4 or shape[3] not in (3, None) or any(s not in (size, None) for s in shape[1:3]):
        raise ModelLoadError(
            f"{path.name} takes input {shape[1:]} (height, width, channels), but {where} says {size} x {size} RGB"
        )
    class_names = list(config["class_names"])
    out_shape = tuple(keras_model.outputs[0].shape)
    if len(out_shape) != 2 or out_shape[1] != len(class_names):
        raise ModelLoadError(f"{path.name} has {out_shape[1:]} outputs but {where} names {len(class_names)} classes")
    detected = _output_kind(keras_model)
    outputs = config.get("outputs") or detected or "probabilities"
    if detected and outputs != detected:
        raise ModelLoadError(f"{path.name} ends in {detected} but {where} says outputs are {outputs}")

    labels, merge, info = resolve_class_names(class_names, catalog)
    module = KerasClassifier(keras_model, pre["scale"], outputs, merge, len(labels)).eval()
    config = dict(config, label_resolution=info)  # in memory only: update_model_config re-reads the file
    return LoadedModel(
        model=module,
        labels=labels,
        data_config=data_config(pre),
        temperature=float(config.get("temperature", 1.0)),
        model_id=config.get("model_id") or f"keras-{path.stem}",
        config=config,
        folder=folder,
    )


def write_sidecar(
    model_file: str | Path,
    class_names: list[str],
    backbone: str,
    *,
    input_size: int | None = None,
    scale: list[float] | None = None,
    interpolation: str = "nearest",
    model_id: str | None = None,
) -> LoadedModel:
    """Write ``config.json`` beside ``model_file`` after loading the file and checking it against the
    sidecar (input size, class count, softmax or logits), so a wrong sidecar fails now, not when served.
    A temperature and thresholds already fitted for the same file and classes are kept."""
    model_file = Path(model_file)
    folder = model_file.parent
    pre: dict[str, Any] = {"backbone": backbone, **BACKBONES.get(backbone, {})}
    if input_size is not None:
        pre["input_size"] = input_size
    if scale is not None:
        pre["scale"] = list(scale)
    pre.update(resize="squash", interpolation=interpolation)
    config: dict[str, Any] = {
        "format": "keras",
        "model_file": model_file.name,
        "model_id": model_id or re.sub(r"[^A-Za-z0-9_.-]+", "-", f"keras-{model_file.stem}"),
        "class_names": list(class_names),
        "preprocessing": pre,
        "outputs": "probabilities",
        "temperature": 1.0,
        # above any probability: never "confident" until `measure-trust --write` fits it on our photos
        "thresholds": {"confident": NOT_CALIBRATED},
    }
    target = folder / "config.json"
    if target.is_file():
        try:
            old = json.loads(target.read_text())
        except json.JSONDecodeError:
            old = {}
        if old.get("format") != "keras":
            raise ModelLoadError(f"{target} exists and is not a Keras sidecar: put the Keras model in its own folder")
        if old.get("model_file") == model_file.name and old.get("class_names") == config["class_names"]:
            config.update({k: old[k] for k in ("temperature", "thresholds") if k in old})
    check_sidecar(config, str(target))
    if not model_file.is_file():
        raise ModelLoadError(f"Keras model file {model_file} does not exist")
    keras_model = load_keras_file(model_file)
    config["outputs"] = _output_kind(keras_model) or "probabilities"
    loaded = _assemble(keras_model, config, folder, model_file, default_catalog())
    write_config(folder, config)
    return loaded


def add_sidecar_arguments(parser) -> None:
    """Options of ``python -m mushroom_id keras-sidecar``."""
    parser.add_argument("model_file", help="the Keras model: .keras, or the legacy HDF5 .h5 the original saved")
    parser.add_argument(
        "--labels",
        required=True,
        help="the model's class names: the training folder (its class folders, numbered as Keras' loaders did: "
        "sorted), or a file in the model's output order (text, one per line; CSV with a Names column; JSON list)",
    )
    parser.add_argument(
        "--order",
        choices=("file", "keras"),
        default="file",
        help="file: the labels file is in the model's output order (default); keras: sort the names as "
        "flow_from_directory / image_dataset_from_directory numbered the class folders",
    )
    parser.add_argument("--backbone", required=True, choices=list(BACKBONES), help="what the model was built on")
    parser.add_argument("--input-size", type=int, default=None, help="pixels (custom backbone; 299 for the original's)")
    parser.add_argument(
        "--scale",
        choices=("-1,1", "0,1", "0,255"),
        default=None,
        help="input range (custom backbone; [-1, 1] for the original's, as keras.applications preprocess_input)",
    )
    parser.add_argument(
        "--interpolation",
        choices=INTERPOLATIONS,
        default="nearest",
        help="resize filter of training: nearest (ImageDataGenerator, the original) or bilinear "
        "(image_dataset_from_directory)",
    )
    parser.add_argument("--model-id", default=None, help="the name shown in the app and in evaluation tables")


def keras_sidecar_command(args) -> int:
    """``python -m mushroom_id keras-sidecar``: write and check the sidecar, then say how to use the model."""
    import sys

    names = read_class_names(args.labels)
    if args.order == "keras":
        names = keras_class_order(names)
    elif not Path(args.labels).is_dir():
        moved = sum(a != b for a, b in zip(names, keras_class_order(names), strict=True))
        if moved:
            print(
                f"note: {moved} of {len(names)} names would move in Keras' class order (sorted folder names, as "
                "flow_from_directory numbers them). If the model was trained from class folders with Keras' "
                "loaders, its outputs follow that order: rerun with --order keras (or --labels <training folder>).",
                file=sys.stderr,
            )
    scale = [float(v) if "." in v else int(v) for v in args.scale.split(",")] if args.scale else None
    try:
        loaded = write_sidecar(
            args.model_file,
            names,
            args.backbone,
            input_size=args.input_size,
            scale=scale,
            interpolation=args.interpolation,
            model_id=args.model_id,
        )
    except ModelLoadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    info = loaded.config["label_resolution"]
    spec = f"{PREFIX}{Path(args.model_file).resolve()}"
    print(f"wrote {Path(args.model_file).parent / 'config.json'}")
    print(
        f"{info['classes']} classes -> {info['labels']} labels: {len(info['renamed'])} renamed to their accepted "
        f"catalog name, {len(info['merged'])} species named by several classes (probabilities added), "
        f"{len(info['unresolved'])} not catalog species (edibility unknown): {', '.join(info['unresolved'][:10])}"
    )
    print(f"\nuse it:  python -m mushroom_id predict --model {spec} photo.jpg")
    print(f"calibrate on our validation photos:  python -m mushroom_id measure-trust --write --model {spec}")
    return 0
