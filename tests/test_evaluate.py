"""mushroom_id.engine.comparison and the metric report: hand-checked numbers, the CLI's files, plots."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from test_train_fixtures import PER_SPLIT, SPECIES, write_hub_dataset

from mushroom_id.engine.comparison import comparison_table
from mushroom_id.engine.evaluation import per_species_rows, report
from mushroom_id.engine.plots import confused_species
from mushroom_id.evaluate import main

LABELS = ["Amanita virosa", "Boletus edulis", "Cantharellus cibarius"]  # deadly, edible, edible


def _logits(pred: list[int], n_classes: int = 3, margin: float = 4.0) -> np.ndarray:
    out = np.zeros((len(pred), n_classes))
    out[np.arange(len(pred)), pred] = margin
    return out


def test_report_numbers_checked_by_hand():
    y = np.array([0, 0, 1, 1, 1, 2])
    pred = [1, 0, 1, 1, 0, 2]  # one deadly predicted edible, one edible predicted deadly
    r = report(_logits(pred), y, LABELS, temperature=1.0)
    assert r["images"] == 6 and r["species"] == 3
    assert r["top1"] == pytest.approx(4 / 6)
    assert r["top1_species_mean"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert r["top5"] == 1.0  # only 3 classes
    assert r["toxic_as_non_toxic"] == pytest.approx(1 / 2) and r["toxic_specimens"] == 2
    assert r["fungiclef_cost"] == pytest.approx((100 * 1 + 1 * 1) / 6)
    assert r["most_confused"][0][2] == 1 and len(r["most_confused"]) == 2
    # a temperature > 1 softens confidence: ECE changes, accuracy does not
    soft = report(_logits(pred), y, LABELS, temperature=4.0)
    assert soft["top1"] == r["top1"] and soft["ece"] != r["ece"] and soft["ece_uncalibrated"] == r["ece_uncalibrated"]
    rows = {row["species"]: row for row in per_species_rows(_logits(pred), y, LABELS)}
    assert rows["Amanita virosa"]["recall"] == 0.5 and rows["Amanita virosa"]["edibility"] == "deadly"
    assert rows["Boletus edulis"]["precision"] == pytest.approx(round(2 / 3, 4))


def test_confused_species_ranks_classes_by_errors():
    y = np.array([0, 0, 0, 1, 2, 3])
    pred = np.array([1, 1, 0, 2, 2, 3])
    assert confused_species(y, pred, top=2) == [1, 0]  # 1: 3 errors (2 as predicted, 1 as true)


def test_comparison_table_formats_rows():
    table = comparison_table(
        [
            {
                "model": "a",
                "images": 10,
                "species": 4,
                "top1": 0.5,
                "top5": 0.9,
                "top1_species_mean": 0.25,
                "top5_species_mean": 0.5,
                "genus_top1_species_mean": 0.375,
                "macro_f1": 0.1,
                "toxic_as_non_toxic": float("nan"),
                "fungiclef_cost": 1.5,
                "ece": 0.05,
            }
        ]
    )
    lines = table.splitlines()
    assert len(lines) == 3
    # species-balanced numbers lead; the photo-weighted top-1 comes last
    assert lines[2] == "| a | 10 | 4 | 25.0% | 50.0% | 37.5% | 10.0% | n/a | 1.500 | 0.050 | 50.0% |"


def test_genus_top1_is_species_balanced():
    labels = ["Amanita muscaria", "Amanita virosa", "Boletus edulis"]
    y = np.array([0, 0, 0, 0, 2])
    pred = [1, 1, 2, 2, 2]  # Amanita photos: 2 of 4 in the right genus; the one Boletus photo right
    r = report(_logits(pred), y, labels)
    assert r["genus_top1_species_mean"] == pytest.approx((2 / 4 + 1) / 2)
    assert r["top1_species_mean"] == pytest.approx((0 + 1) / 2)


def test_tables_split_cross_source_from_single_source_and_flag_leaks():
    from mushroom_id.engine.comparison import comparison_tables

    row = {"images": 3, "species": 2, "top1_species_mean": 0.5}
    results = [
        {"model": "floor", "subsets": {"cross_source": row, "single_source": {**row, "images": 1}}},
        {"model": "old", "leak": 7, "subsets": {"cross_source": row, "single_source": row}},
    ]
    text = comparison_tables(results)
    cross, single = text.split("single-source")
    assert "cross-source" in cross and "| floor | 3 | 2 | 50.0%" in cross
    assert "| floor | 1 | 2 |" in single
    assert "old (TRAINED ON THESE PHOTOS)" in cross


@pytest.mark.slow
def test_evaluate_cli_writes_metrics_csv_and_plots(tmp_path, photos_dir):
    import timm

    from mushroom_id.core.models import save_model

    data = write_hub_dataset(tmp_path / "ds", photos_dir)
    models = []
    for i in range(2):
        model = timm.create_model(
            "test_efficientnet",
            pretrained=False,
            num_classes=len(SPECIES) - i,
            pretrained_cfg_overlay={"input_size": (3, 40, 40)},
        )
        save_model(model, tmp_path / f"m{i}", sorted(SPECIES)[i:], temperature=1.5, extra={"model_id": f"m{i}"})
        models += ["--model", f"local-dir:{tmp_path / f'm{i}'}"]
    history = tmp_path / "metrics.json"
    history.write_text(
        json.dumps(
            [
                {"epoch": 1, "train_loss": 2.0, "val_loss": 1.9, "val_top1": 0.3},
                {"epoch": 2, "train_loss": 1.5, "val_loss": 1.7, "val_top1": 0.4},
            ]
        )
    )
    out = tmp_path / "eval"
    assert (
        main(
            [
                *models,
                "--data",
                str(data),
                "--split",
                "test",
                "--out",
                str(out),
                "--history",
                str(history),
                "--workers",
                "0",
            ]
        )
        == 0
    )
    results = json.loads((out / "comparison.json").read_text())
    n_test = PER_SPLIT["test"] * len(SPECIES)
    assert [r["images"] for r in results] == [n_test, n_test - PER_SPLIT["test"]]  # m1 lacks one species
    assert results[1]["skipped_not_in_model"] == PER_SPLIT["test"]
    assert results[0]["temperature"] == 1.5
    for sub in ("0_m0", "1_m1"):
        for name in ("metrics.json", "per_species.csv", "reliability.png", "confusion.png", "training_curves.png"):
            path = out / sub / name
            assert path.is_file(), path
            if name.endswith(".png"):
                assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with open(out / "0_m0" / "per_species.csv") as f:
        rows = list(csv.DictReader(f))
    assert sum(int(r["support"]) for r in rows) == n_test
    assert (out / "comparison.md").read_text().count("\n") == 4
