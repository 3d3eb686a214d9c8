"""Assemble a deployable Hugging Face Space folder (the library behind ``python -m mushroom_id.space``)."""

from __future__ import annotations

import shutil
from pathlib import Path

from mushroom_id.core.paths import CATALOG_CSV, EMBEDDED_MODEL_DIR, PACKAGE_DIR, REPO_DIR, shared_photos_dir
from mushroom_id.serving.reference_photos import BUNDLE_DIR, ReferencePhotos, export

SPACE_CONFIG_DIR = REPO_DIR / "space_config"
APP_FILE = "app.py"
REFERENCE_DIR = BUNDLE_DIR.name  # reference_photos/, beside app.py
MARKER = ".mushroom-space"  # marks a folder this builder made (and may replace with --force)
PYTHON_VERSION = "3.11"
REQUIRED_KEYS = (
    "title",
    "emoji",
    "sdk",
    "sdk_version",
    "python_version",
    "app_file",
    "license",
    "short_description",
    "models",
    "datasets",
)
EXAMPLE_SUFFIXES = {".jpg", ".jpeg", ".png", ".webp"}
GITATTRIBUTES = "".join(
    f"*.{ext} filter=lfs diff=lfs merge=lfs -text\n"
    for ext in ("safetensors", "onnx", "bin", "jpg", "jpeg", "png", "webp")
)


def front_matter(readme: str | Path) -> dict:
    """The YAML front matter of a Space README (between the first two ``---`` lines)."""
    import yaml

    text = Path(readme).read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise ValueError(f"{readme} does not start with YAML front matter ('---')")
    block, sep, _ = text[4:].partition("\n---")
    if not sep:
        raise ValueError(f"{readme}: front matter is not closed by a '---' line")
    meta = yaml.safe_load(block) or {}
    if not isinstance(meta, dict):
        raise ValueError(f"{readme}: front matter is not a mapping")
    return meta


def requirement_names(path: str | Path) -> dict[str, str]:
    """``{normalised name: version pin ('' if unpinned)}`` from a requirements file."""
    out = {}
    for line in Path(path).read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        name, _, version = line.partition("==")
        out[name.strip().lower().replace("_", "-")] = version.strip()
    return out


def check_space_config(config_dir: Path = SPACE_CONFIG_DIR) -> list[str]:
    """Problems that would make the Space fail to build or differ from what we test; [] if none."""
    import gradio

    problems = []
    readme, reqs = config_dir / "README.md", config_dir / "requirements.txt"
    for f in (readme, reqs):
        if not f.is_file():
            problems.append(f"missing {f}")
    if problems:
        return problems
    try:
        meta = front_matter(readme)
    except Exception as e:  # YAML errors included
        return [str(e)]
    problems += [f"front matter lacks {key!r}" for key in REQUIRED_KEYS if key not in meta]
    if meta.get("sdk") != "gradio":
        problems.append(f"sdk is {meta.get('sdk')!r}, expected 'gradio'")
    if str(meta.get("sdk_version")) != gradio.__version__:
        problems.append(
            f"sdk_version {meta.get('sdk_version')!r} differs from the installed gradio "
            f"{gradio.__version__} (the version the tests ran with)"
        )
    if meta.get("python_version") != PYTHON_VERSION:
        problems.append(f"python_version must be the string {PYTHON_VERSION!r}, got {meta.get('python_version')!r}")
    if meta.get("app_file") != APP_FILE:
        problems.append(f"app_file must be {APP_FILE!r}, got {meta.get('app_file')!r}")
    if len(str(meta.get("short_description", ""))) > 60:
        problems.append("short_description is longer than the Hub's 60 characters")
    for key in ("models", "datasets"):
        if key in meta and not (isinstance(meta[key], list) and all("/" in str(r) for r in meta[key])):
            problems.append(f"{key} must be a list of 'org/name' repo ids")
    if "gradio" in requirement_names(reqs):
        problems.append("requirements.txt lists gradio; the Space installs it from sdk_version")
    return problems


def build_space(
    out_dir: str | Path,
    *,
    examples: str | Path | None = None,
    force: bool = False,
    config_dir: Path = SPACE_CONFIG_DIR,
    photos: bool = True,
) -> Path:
    """Write a deployable Space folder to ``out_dir`` and return its path."""
    problems = check_space_config(config_dir)
    if problems:
        raise ValueError("space_config is not deployable:\n  " + "\n  ".join(problems))
    for needed in (
        REPO_DIR / APP_FILE,
        CATALOG_CSV,
        EMBEDDED_MODEL_DIR / "config.json",
        EMBEDDED_MODEL_DIR / "model.safetensors",
    ):
        if not needed.is_file():
            raise FileNotFoundError(f"{needed} is missing; the Space needs it")
    out = Path(out_dir).resolve()
    if out == REPO_DIR or REPO_DIR.is_relative_to(out) or out.is_relative_to(PACKAGE_DIR):
        raise ValueError(f"refusing to build into {out}: it would overwrite the repository")
    if out.exists() and any(out.iterdir()):
        if not force:
            raise FileExistsError(f"{out} is not empty; pass --force to replace an earlier build")
        if not (out / MARKER).is_file():
            raise FileExistsError(f"{out} was not made by this builder ({MARKER} missing); not deleting it")
        shutil.rmtree(out)
    examples_dir = Path(examples) if examples else None
    if examples_dir is not None and not examples_dir.is_dir():
        raise FileNotFoundError(f"examples folder {examples_dir} does not exist")

    out.mkdir(parents=True, exist_ok=True)
    shutil.copy2(REPO_DIR / APP_FILE, out / APP_FILE)
    shutil.copytree(PACKAGE_DIR, out / PACKAGE_DIR.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo"))
    shutil.copy2(config_dir / "README.md", out / "README.md")
    shutil.copy2(config_dir / "requirements.txt", out / "requirements.txt")
    (out / ".gitattributes").write_text(GITATTRIBUTES)
    if examples_dir is not None:
        (out / "examples").mkdir()
        for photo in sorted(examples_dir.iterdir()):
            if photo.suffix.lower() in EXAMPLE_SUFFIXES and photo.is_file():
                shutil.copy2(photo, out / "examples" / photo.name)
    if photos:
        refs = _shared_reference_photos()
        if refs:
            export(refs, out / REFERENCE_DIR)
    (out / MARKER).write_text("built by python -m mushroom_id.space build; safe to replace with --force\n")
    return out


def _shared_reference_photos() -> ReferencePhotos:
    """The licence-clean photos of ``../shared`` (read in place), or none when it is absent."""
    photos_dir = shared_photos_dir()
    if not (photos_dir / "manifest.csv").is_file():
        return ReferencePhotos.none(f"{photos_dir} not found")
    return ReferencePhotos.from_manifest(photos_dir)
