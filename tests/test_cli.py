"""The command line, run as a user would (a subprocess), on real photos."""

from __future__ import annotations

import json
import subprocess
import sys

from mushroom_id.core.catalog import default_catalog


def run(*args):
    return subprocess.run([sys.executable, "-m", "mushroom_id", *args], capture_output=True, text=True, timeout=300)


def test_predict_prints_top5_like_the_original_and_json(photo_of, tmp_path):
    good = photo_of("Boletus edulis", "wiki")
    bad = tmp_path / "notes.jpg"
    bad.write_text("<html>this is not a photo</html>")
    human = run("predict", str(good), str(bad))
    assert human.returncode == 2  # one photo failed
    assert human.stdout.count("Prediction: With") == 5
    assert "Top 1 Prediction: With" in human.stdout
    assert "notes.jpg" in human.stderr and "not" in human.stderr.lower()

    machine = run("predict", "--json", "--top-k", "3", str(good))
    assert machine.returncode == 0, machine.stderr
    result = json.loads(machine.stdout)[str(good)]
    catalog = default_catalog()
    assert len(result["candidates"]) == 3
    assert all(c["species"] in catalog for c in result["candidates"])
    assert result["disclaimer"]


def test_observation_mode(photo_manifest, photos_dir):
    paths = [
        str(photos_dir.parent / r["path"])
        for r in photo_manifest
        if r["species"] == "Cantharellus cibarius" and r["source"] == "inatse"
    ][:2]
    out = run("predict", "--json", "--observation", *paths)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["observation"]["photos"] == 2
