"""Shared fixtures. Real photos are read in place from ../shared (never copied)."""

from __future__ import annotations

import csv
import os
import socket

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from mushroom_id.core.paths import shared_catalog_dir, shared_photos_dir  # noqa: E402


def _require_shared():
    if not shared_photos_dir().is_dir():
        msg = f"../shared data not found at {shared_photos_dir()}"
        if os.environ.get("CI"):
            pytest.fail(msg + " (CI=true: failing instead of skipping)")
        pytest.skip(msg)


@pytest.fixture(scope="session")
def photos_dir():
    _require_shared()
    return shared_photos_dir()


@pytest.fixture(scope="session")
def shared_catalog():
    _require_shared()
    return shared_catalog_dir()


@pytest.fixture(scope="session")
def photo_manifest(photos_dir):
    with open(photos_dir / "manifest.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="session")
def photo_of(photos_dir, photo_manifest):
    """Return the path of the first real photo of a species (by manifest order)."""

    def find(species: str, source: str | None = None):
        for row in photo_manifest:
            if row["species"] == species and (source is None or row["source"] == source):
                return photos_dir.parent / row["path"]
        raise LookupError(species)

    return find


@pytest.fixture(scope="module")
def hub_data(tmp_path_factory, photos_dir):
    """A tiny Hub-layout dataset of real photos (test_train_fixtures.write_hub_dataset), one per module."""
    from test_train_fixtures import write_hub_dataset

    return write_hub_dataset(tmp_path_factory.mktemp("hub_dataset"), photos_dir)


def hand_made_predictor(labels, thresholds: dict, catalog, size: int = 32):
    """A Predictor over a tiny random timm model with the given labels and thresholds (no fungus gate):
    for tests that feed ``Predictor.answer`` probability vectors built by hand."""
    import timm

    from mushroom_id.core.models import LoadedModel
    from mushroom_id.serving.predictor import Predictor

    model = timm.create_model("test_efficientnet", pretrained=False, num_classes=len(labels)).eval()
    data_config = {
        "input_size": (3, size, size),
        "mean": (0.5,) * 3,
        "std": (0.5,) * 3,
        "interpolation": "bilinear",
        "crop_pct": 1.0,
    }
    loaded = LoadedModel(
        model=model, labels=labels, data_config=data_config, model_id="hand-made", config={"thresholds": thresholds}
    )
    # no trait table: the hand-built cases pin the documented confusions exactly
    return Predictor(loaded, catalog, use_gate=False, trait_lookalikes=False)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def app_service():
    """The app's models, loaded once per test module."""
    from mushroom_id.serving.ui import Service

    return Service()


@pytest.fixture(scope="module")
def launched_app(app_service):
    """(demo, url): the app launched in-process on a free 127.0.0.1 port, closed after the module."""
    from mushroom_id.serving.ui import build_demo, launch

    demo = build_demo(service=app_service)
    _, url, _ = launch(demo, prevent_thread_lock=True, server_port=free_port(), quiet=True)
    try:
        yield demo, url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def app_url(launched_app):
    return launched_app[1]
