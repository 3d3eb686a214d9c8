"""The Hugging Face Space: space_config/ is valid, and the assembled folder runs on its own, offline."""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import gradio
import httpx
import pytest
from conftest import free_port

from mushroom_id.core.paths import EMBEDDED_MODEL_DIR, REPO_DIR
from mushroom_id.serving.bundle import (
    MARKER,
    SPACE_CONFIG_DIR,
    build_space,
    check_space_config,
    front_matter,
    requirement_names,
)
from mushroom_id.space import main

# Installed on a Space with the SDK (sdk_version), so not listed in its requirements.txt.
PROVIDED_BY_SDK = {"gradio", "gradio-client"}
# Imported only behind the optional Keras extra (the keras: model spec); without it that spec says what
# to install (tests/test_keras.py), and the Space serves safetensors models.
OPTIONAL_EXTRA = {"keras", "h5py"}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return build_space(tmp_path_factory.mktemp("space") / "space")


def test_space_config_is_valid():
    assert check_space_config() == []
    meta = front_matter(SPACE_CONFIG_DIR / "README.md")
    assert meta["sdk"] == "gradio"
    assert meta["sdk_version"] == gradio.__version__ == requirement_names(REPO_DIR / "requirements.txt")["gradio"]
    assert meta["python_version"] == "3.11"
    assert meta["app_file"] == "app.py" and (REPO_DIR / meta["app_file"]).is_file()
    assert meta["license"] and meta["title"] and meta["emoji"]
    assert 0 < len(meta["short_description"]) <= 60
    assert meta["models"] and meta["datasets"]


def test_check_catches_bad_config(tmp_path):
    config = tmp_path / "space_config"
    shutil.copytree(SPACE_CONFIG_DIR, config)
    readme = config / "README.md"
    text = readme.read_text()
    text = text.replace(f"sdk_version: {gradio.__version__}", "sdk_version: 4.0.0")
    text = text.replace('python_version: "3.11"', "python_version: 3.11")  # YAML float, not a string
    readme.write_text(text)
    (config / "requirements.txt").write_text("gradio==4.0.0\ntorch\n")
    problems = " | ".join(check_space_config(config))
    assert "sdk_version '4.0.0'" in problems
    assert "python_version" in problems
    assert "lists gradio" in problems
    with pytest.raises(ValueError, match="not deployable"):
        build_space(tmp_path / "out", config_dir=config)


def test_space_requirements_pin_the_tested_versions():
    space = requirement_names(SPACE_CONFIG_DIR / "requirements.txt")
    repo = requirement_names(REPO_DIR / "requirements.txt")
    for name, version in space.items():
        assert version, f"{name} is not pinned in space_config/requirements.txt"
        assert repo.get(name) == version, f"{name}=={version} differs from requirements.txt ({repo.get(name)})"


def _imports(path: Path, root: Path) -> set[str]:
    """Absolute module names imported anywhere in a file (function-level imports too)."""
    found = set()
    package = path.parent.relative_to(root).parts
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve inside the package
                base = ".".join(package[: len(package) - node.level + 1])
                mod = f"{base}.{node.module}" if node.module else base
                found.add(mod)
                found |= {f"{mod}.{a.name}" for a in node.names}
            else:
                found.add(node.module)
    return found


def test_space_requirements_cover_what_the_app_imports(bundle):
    """Follow the imports from the bundle's app.py; every third-party one must be installable."""
    todo, seen, third_party = [bundle / "app.py"], set(), set()
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        for mod in _imports(path, bundle):
            top = mod.split(".")[0]
            if top == "mushroom_id":
                parts = mod.split(".")
                for candidate in (
                    bundle.joinpath(*parts).with_suffix(".py"),
                    bundle.joinpath(*parts, "__init__.py"),
                ):
                    if candidate.is_file():
                        todo.append(candidate)
            elif top not in sys.stdlib_module_names and top not in OPTIONAL_EXTRA:
                third_party.add(top)
    assert (
        bundle / "mushroom_id" / "serving" / "predictor.py" in seen
        and bundle / "mushroom_id" / "serving" / "ui" / "render.py" in seen
    )
    dists = importlib.metadata.packages_distributions()
    required = requirement_names(bundle / "requirements.txt")
    missing = []
    for top in sorted(third_party):
        names = {d.lower().replace("_", "-") for d in dists.get(top, [top])}
        if not names & (set(required) | PROVIDED_BY_SDK):
            missing.append(f"{top} ({', '.join(sorted(names))})")
    assert not missing, f"space requirements.txt lacks: {missing}"


def test_bundle_contents(bundle):
    for rel in (
        "app.py",
        "README.md",
        "requirements.txt",
        ".gitattributes",
        "mushroom_id/__init__.py",
        "mushroom_id/serving/ui/render.py",
        "mushroom_id/serving/ui/ui.css",
        "mushroom_id/serving/ui/ui.js",
        "mushroom_id/data/catalog.csv",
        "mushroom_id/data/reference_scores.csv",
        "mushroom_id/data/embedded_model/config.json",
        "mushroom_id/data/embedded_model/model.safetensors",
    ):
        assert (bundle / rel).is_file(), rel
    assert not list(bundle.rglob("__pycache__"))
    assert (bundle / "README.md").read_text() == (SPACE_CONFIG_DIR / "README.md").read_text()
    assert "*.safetensors filter=lfs" in (bundle / ".gitattributes").read_text()
    assert not (bundle / "examples").exists()  # none given: the default (credited) examples are used
    size = sum(f.stat().st_size for f in bundle.rglob("*") if f.is_file())
    assert size < 20e6


def test_bundle_reference_photos_are_licence_clean_thumbnails(bundle, photo_manifest, photos_dir):
    """Made at build time from ../shared: re-encoded thumbnails with credits, never copies."""
    from mushroom_id.serving.reference_photos import EXAMPLE_SPECIES, ReferencePhotos

    index = json.loads((bundle / "reference_photos" / "index.json").read_text())
    assert len(index["photos"]) >= 400
    assert [e["species"] for e in index["examples"]] == list(EXAMPLE_SPECIES)
    for entry in index["photos"] + index["examples"]:
        assert entry["source"] in ("commons", "inat")
        assert entry["page"].startswith(
            ("https://commons.wikimedia.org/wiki/File:", "https://www.gbif.org/occurrence/")
        )
        assert entry["source"] == "inat" or entry["licence"]
    shared_hashes = {r["sha256"] for r in photo_manifest}
    for f in (bundle / "reference_photos").rglob("*.jpg"):
        assert hashlib.sha256(f.read_bytes()).hexdigest() not in shared_hashes, f
    refs = ReferencePhotos.from_folder(bundle / "reference_photos")
    photo = refs.get("Trametes versicolor")
    assert (photo.licence or photo.source == "inat") and Path(photo.path).is_file()
    shared = ReferencePhotos.from_manifest(photos_dir)
    assert [p.page for p in refs.photos("Trametes versicolor")] == [
        p.page for p in shared.photos("Trametes versicolor")
    ]
    assert refs.data_uri(photo).startswith("data:image/jpeg;base64,")


def test_build_without_photos(tmp_path):
    out = build_space(tmp_path / "space", photos=False)
    assert not (out / "reference_photos").exists()


def test_build_refuses_to_clobber(tmp_path, photo_of):
    out = tmp_path / "space"
    with pytest.raises(ValueError, match="overwrite the repository"):
        build_space(REPO_DIR, force=True)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "precious.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="not made by this builder"):
        build_space(foreign, force=True)
    assert (foreign / "precious.txt").is_file()

    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "fly_agaric.jpg").symlink_to(photo_of("Amanita muscaria", "seed"))
    (examples / "notes.txt").write_text("not a photo")
    assert main(["build", str(out), "--examples", str(examples)]) == 0
    assert sorted(p.name for p in (out / "examples").iterdir()) == ["fly_agaric.jpg"]
    assert (out / MARKER).is_file()
    assert main(["build", str(out)]) == 1  # not empty, no --force
    assert main(["build", str(out), "--force"]) == 0
    assert not (out / "examples").exists()
    assert main(["check"]) == 0


@pytest.mark.slow
def test_assembled_space_answers_offline(bundle, tmp_path, photo_of):
    """`python app.py` inside the assembled folder, in a subprocess, offline, answers /classify."""
    from gradio_client import Client, handle_file

    port = free_port()
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MUSHROOM_", "GRADIO_", "PYTHON")) and k != "SPACE_ID"
    }
    env.update(
        HF_HUB_OFFLINE="1",
        HF_HOME=str(tmp_path / "hf"),
        GRADIO_ANALYTICS_ENABLED="False",
        GRADIO_SERVER_PORT=str(port),
        MUSHROOM_SHARED=str(tmp_path / "no_shared"),
        GRADIO_TEMP_DIR=str(tmp_path / "gradio"),
    )
    which = subprocess.run(
        [sys.executable, "-c", "import mushroom_id; print(mushroom_id.__file__)"],
        cwd=bundle,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(which.stdout.strip()).is_relative_to(bundle)  # the bundle's package, not the repo's

    log = tmp_path / "app.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "app.py"], cwd=bundle, env=env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, f"the Space app exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"the Space app did not start:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}config", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        result = Client(url, verbose=False).predict(
            handle_file(str(photo_of("Amanita phalloides", "seed"))), api_name="/classify"
        )
        config = httpx.get(f"{url}config", timeout=10).json()
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
    model_id = json.loads((EMBEDDED_MODEL_DIR / "config.json").read_text()).get("model_id")
    assert result["model"]["id"] == model_id
    assert result["candidates"] and result["disclaimer"]
    assert any(w["kind"] == "toxic_candidate" for w in result["warnings"])
    # without ../shared, the bundle's own reference photos and captioned examples are used
    (gallery,) = [c for c in config["components"] if c["props"].get("elem_id") == "examples"]
    assert "Velvet Shank (Flammulina velutipes)" in [item["caption"] for item in gallery["props"]["value"]]
    assert "Reference photos:** 4" in json.dumps(config)
