"""bench/gpu_dry_run.py: refuses without a GPU; its CPU smoke version runs every step (train, kill, resume, and
a plain config run with the config's own loader settings)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parent.parent
SCRIPT = REPO / "bench" / "gpu_dry_run.py"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here: the script would run")
def test_refuses_clearly_without_a_gpu():
    proc = subprocess.run([sys.executable, str(SCRIPT)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "no CUDA GPU" in proc.stderr and "--cpu-smoke" in proc.stderr


@pytest.mark.slow
def test_cpu_smoke_trains_kills_resumes_and_exports(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        str(SCRIPT),
        "--cpu-smoke",
        "--config",
        str(REPO / "configs" / "lite0.yaml"),
        "--out",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    results = json.loads((tmp_path / "results.json").read_text())
    assert results["steps"] == 8 and results["same_steps"]
    assert results["resumed_at_step"] == results["kill_target_step"] == 4  # killed inside the epoch
    assert results["max_rel_loss_diff"] == 0.0  # CPU: the resumed run is the same run
    assert results["onnx_max_prob_diff"] < 1e-4
    # the config as a user runs it: its own loader settings (workers from the CPU count), not --num-workers 0
    assert results["plain_steps"] == 4 and results["plain_images_per_s"] > 0
    assert results["plain_workers"] >= 1 and results["straight_workers"] == 0
    assert "| lite0.yaml | 8 (1) |" in proc.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]  # the work folder is cleaned up
