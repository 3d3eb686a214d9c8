"""GPU dry run: one config, a few hundred steps in bf16 + channels-last, before renting hours of GPU.

    python bench/gpu_dry_run.py                                        # configs/convnext_tiny.yaml, 300 steps
    python bench/gpu_dry_run.py --config configs/tf_efficientnetv2_s.yaml --steps 400
    python bench/gpu_dry_run.py --data artifacts/data/dataset          # the real dataset instead of synthetic
    python bench/gpu_dry_run.py --cpu-smoke                            # the same checks, tiny, on CPU (no numbers)

Everything goes through ``train.py`` in a subprocess, as a user runs it, four times:

1. **straight**: ``--epochs E --max-steps-per-epoch S/E --checkpoint-every-steps K --mixed-precision bf16
   --channels-last true --export-onnx true``: images/second (train.py's own ``train_images_per_s``: the
   training loop with its data loader, validation excluded), peak GPU memory (``gpu_peak_memory_gb``),
   seconds per checkpoint, then the test evaluation and the export (ONNX parity).
2. **killed**: the same run, SIGKILLed as soon as the checkpoint at step ~S/2 (inside an epoch) exists.
3. **resumed**: ``--resume auto``: the step it continued at, and its per-step losses against the straight
   run's (on a GPU, bf16 and cuDNN's non-deterministic kernels make them close, not identical; on CPU
   they are identical).
4. **plain**: ``train.py --config C --data D`` with nothing else but a short epoch (``--plain-steps``): the
   images/second a user's run gets from the config's own loader settings (workers from the CPU count,
   pinned memory, persistent workers), next to the straight run's (``--workers``, when given).

Data: without ``--data``, a synthetic dataset in the Hub layout (smooth random 600x450 JPEGs, the size
``data_prep normalize`` writes; ``--classes`` species) is written to a temporary folder, so the script
needs nothing but the repository. Hub weights need the network: ``--pretrained hub`` where there is
one (default: random weights, the same speed). Without a CUDA GPU the script refuses, unless
``--cpu-smoke``. It prints a header and a markdown table for bench/README.md and writes
``<out>/results.json``.
"""

from __future__ import annotations

import argparse
import io
import json
import math
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import REPO, header, show


def synthetic_dataset(root: Path, classes: int, train: int, held_out: int, seed: int = 0) -> Path:
    """A Hub-layout dataset (data/<split>-00000-of-00001.parquet) of smooth random JPEGs."""
    import datasets
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    names = [f"Synthetica species{i:04d}" for i in range(classes)]
    features = datasets.Features({"image": datasets.Image(), "label": datasets.ClassLabel(names=names)})
    (root / "data").mkdir(parents=True, exist_ok=True)
    for split, n in (("train", train), ("validation", held_out), ("test", held_out)):
        images, labels = [], []
        for i in range(n):
            small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)  # upsampled: JPEG sizes like photos'
            img = Image.fromarray(small).resize((600, 450), Image.BICUBIC)
            buf = io.BytesIO()
            img.save(buf, format="JPEG", quality=90)
            images.append({"bytes": buf.getvalue(), "path": f"{split}_{i}.jpg"})
            labels.append(i % classes)
        ds = datasets.Dataset.from_dict({"image": images, "label": labels}, features=features)
        ds.to_parquet(str(root / "data" / f"{split}-00000-of-00001.parquet"))
    return root


def train_command(args, out: Path, data: str, steps_per_epoch: int, epochs: int, every: int) -> list[str]:
    cmd = [
        sys.executable,
        str(REPO / "train.py"),
        "--config",
        str(args.config),
        "--data",
        data,
        "--output-dir",
        str(out),
        "--epochs",
        str(epochs),
        "--max-steps-per-epoch",
        str(steps_per_epoch),
        "--checkpoint-every-steps",
        str(every),
        "--keep-checkpoints",
        "2",
        "--export-onnx",
        "true",
        "--early-stopping-patience",
        "null",
        "--warmup-epochs",
        "0.5",
        "--push-to-hub",
        "null",
    ]
    if args.pretrained:
        cmd += ["--pretrained", args.pretrained]
    if args.cpu_smoke:
        model = yaml.safe_load(args.config.read_text()).get("model", "")
        size = 75 if model.startswith("inception") else 28 if model.startswith("eva") else 32  # their minimum
        cmd += [
            "--mixed-precision",
            "no",
            "--img-size",
            str(size),
            "--batch-size",
            "4",
            "--num-workers",
            "0",
            "--eval-batch-size",
            "8",
            "--grad-accum-steps",
            "1",
        ]
    else:
        cmd += ["--mixed-precision", "bf16", "--channels-last", "true"]
        if args.workers is not None:
            cmd += ["--num-workers", str(args.workers)]
        if args.batch_size:
            cmd += ["--batch-size", str(args.batch_size)]
    return cmd


def plain_command(args, out: Path, data: str, steps: int) -> list[str]:
    """The config as a user runs it: only the data, the run folder and a short epoch (plus, for the CPU smoke
    version, a tiny input and batch; Hub weights replaced offline)."""
    cmd = [sys.executable, str(REPO / "train.py"), "--config", str(args.config), "--data", data]
    cmd += ["--output-dir", str(out), "--epochs", "1", "--max-steps-per-epoch", str(steps), "--test-split", "null"]
    cmd += ["--export-onnx", "false", "--push-to-hub", "null"]
    if args.pretrained:
        cmd += ["--pretrained", args.pretrained]
    if args.cpu_smoke:
        model = yaml.safe_load(args.config.read_text()).get("model", "")
        size = 75 if model.startswith("inception") else 28 if model.startswith("eva") else 32
        cmd += ["--mixed-precision", "no", "--img-size", str(size), "--batch-size", "4", "--eval-batch-size", "8"]
    return cmd


def steps_csv(run: Path) -> dict[int, float]:
    rows = (run / "steps.csv").read_text().splitlines()[1:]
    return {int(r.split(",")[0]): float(r.split(",")[2]) for r in rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", type=Path, default=REPO / "configs" / "convnext_tiny.yaml")
    parser.add_argument("--steps", type=int, default=300, help="optimizer steps of the straight run")
    parser.add_argument("--data", default=None, help="dataset spec for train.py (default: synthetic)")
    parser.add_argument("--classes", type=int, default=933)
    parser.add_argument("--train-images", type=int, default=4096, help="synthetic training images")
    parser.add_argument("--held-out-images", type=int, default=512, help="synthetic validation and test images")
    parser.add_argument("--batch-size", type=int, default=None, help="default: the config's")
    parser.add_argument(
        "--workers", type=int, default=None, help="loader workers of the straight run (default: the config's)"
    )
    parser.add_argument("--plain-steps", type=int, default=100, help="optimizer steps of the plain config run")
    parser.add_argument("--pretrained", default=None, help="default: none for hub configs (offline), else the config's")
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "gpu_dry_run")
    parser.add_argument("--cpu-smoke", action="store_true", help="tiny version on CPU: checks the steps, no numbers")
    args = parser.parse_args(argv)

    import torch

    if not torch.cuda.is_available() and not args.cpu_smoke:
        print(
            "gpu_dry_run.py: no CUDA GPU here (torch.cuda.is_available() is False). This script measures a GPU; "
            "run it on the GPU machine, or add --cpu-smoke for a tiny CPU run of the same steps (no numbers).",
            file=sys.stderr,
        )
        return 2
    config = yaml.safe_load(args.config.read_text())
    if args.pretrained is None and config.get("pretrained") == "hub":
        args.pretrained = "none"  # Hub weights need the network; the speed is the same
    if args.cpu_smoke:
        args.steps, args.classes, args.train_images, args.held_out_images = 8, 4, 32, 8
    header(f"GPU dry run: {args.config.name}" + (" (CPU smoke, not a measurement)" if args.cpu_smoke else ""))
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        print(
            f"- GPU: {props.name}, {props.total_memory / 2**30:.0f} GiB; torch {torch.__version__}, "
            f"CUDA {torch.version.cuda}\n",
            flush=True,
        )

    args.out.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="dry_run_", dir=args.out))
    try:
        data = args.data
        if data is None:
            t0 = time.perf_counter()
            data = str(synthetic_dataset(work / "data", args.classes, args.train_images, args.held_out_images))
            print(
                f"synthetic dataset: {args.train_images} training images, {args.classes} classes "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
        batch = 4 if args.cpu_smoke else (args.batch_size or config.get("batch_size", 32))
        accum = 1 if args.cpu_smoke else config.get("grad_accum_steps", 1)
        n_train = args.train_images if args.data is None else None
        # several epochs when the training split is smaller than the steps need
        per_epoch = args.steps if n_train is None else max(1, min(args.steps, n_train // (batch * accum)))
        epochs = math.ceil(args.steps / per_epoch)
        every = max(1, per_epoch // 2)  # checkpoints inside each epoch too
        total = epochs * per_epoch
        inside = [k for k in range(every, total, every) if k % per_epoch]  # checkpoints that are not an epoch's end
        kill_at = min(inside, key=lambda k: abs(k - total / 2)) if inside else max(1, total // 2)
        env = {**os.environ, "PYTHONPATH": str(REPO)}

        results: dict = {
            "config": args.config.name,
            "steps": epochs * per_epoch,
            "epochs": epochs,
            "batch_size": batch,
            "grad_accum_steps": accum,
            "checkpoint_every_steps": every,
        }
        straight = work / "straight"
        t0 = time.perf_counter()
        done = subprocess.run(
            train_command(args, straight, data, per_epoch, epochs, every),
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
        )
        results["straight_wall_s"] = time.perf_counter() - t0
        if done.returncode:
            print(done.stdout[-4000:], done.stderr[-6000:], sep="\n", file=sys.stderr)
            return 1
        history = json.loads((straight / "metrics.json").read_text())
        final = json.loads((straight / "result.json").read_text())
        results["images_per_s"] = max(h["train_images_per_s"] for h in history)  # epoch 1 includes warm-up
        results["images_per_s_epoch1"] = history[0]["train_images_per_s"]
        results["gpu_peak_memory_gb"] = max((h.get("gpu_peak_memory_gb") or 0) for h in history) or None
        results["onnx_max_prob_diff"] = final.get("onnx", {}).get("max_prob_diff")
        results["test_top1"] = final.get("test", {}).get("top1")

        killed = work / "killed"
        cmd = train_command(args, killed, data, per_epoch, epochs, every)
        child = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        target = killed / "checkpoints" / f"epoch_{(kill_at - 1) // per_epoch + 1:03d}_step_{kill_at:08d}"
        while not target.is_dir() and child.poll() is None:
            time.sleep(0.05)
        child.send_signal(signal.SIGKILL)
        child.wait()
        t0 = time.perf_counter()
        resumed = subprocess.run(cmd + ["--resume", "auto"], cwd=REPO, env=env, capture_output=True, text=True)
        results["resumed_wall_s"] = time.perf_counter() - t0
        if resumed.returncode:
            print(resumed.stdout[-4000:], resumed.stderr[-6000:], sep="\n", file=sys.stderr)
            return 1
        found = re.search(r"^resumed from .*: epoch \d+, step (\d+)", resumed.stdout, flags=re.M)
        results["resumed_at_step"] = int(found.group(1)) if found else None
        results["kill_target_step"] = kill_at
        a, b = steps_csv(straight), steps_csv(killed)
        results["same_steps"] = sorted(a) == sorted(b)
        diffs = [abs(a[s] - b[s]) / max(abs(a[s]), 1e-12) for s in a if s in b]
        results["max_rel_loss_diff"] = max(diffs) if diffs else None
        results["checkpoint_mb"] = (
            sum(f.stat().st_size for f in next((killed / "checkpoints").iterdir()).rglob("*") if f.is_file()) / 2**20
        )

        plain = work / "plain"
        steps = 4 if args.cpu_smoke else min(args.plain_steps, per_epoch)
        cmd = plain_command(args, plain, data, steps)
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
        if done.returncode:
            print(done.stdout[-4000:], done.stderr[-6000:], sep="\n", file=sys.stderr)
            return 1
        (row,) = json.loads((plain / "metrics.json").read_text())
        results["plain_images_per_s"] = row["train_images_per_s"]
        results["plain_workers"] = row["workers"]
        results["plain_steps"] = row["step"]
        results["straight_workers"] = history[0]["workers"]
        (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")

        fmt = lambda v, spec: "n/a" if v is None else format(v, spec)  # noqa: E731
        memory = "n/a" if not results["gpu_peak_memory_gb"] else f"{results['gpu_peak_memory_gb']:.1f} GiB"
        show(
            [
                "config",
                "steps (epochs)",
                "batch x accum",
                "images/s",
                "plain config run: images/s (workers)",
                "peak GPU memory",
                "straight run",
                "checkpoint",
                "killed, resumed at step",
                "same steps",
                "max rel. loss diff",
                "ONNX parity",
            ],
            [
                [
                    args.config.name,
                    f"{results['steps']} ({epochs})",
                    f"{batch} x {accum}",
                    f"{fmt(results['images_per_s'], '.0f')} ({results['straight_workers']} workers)",
                    f"{fmt(results['plain_images_per_s'], '.0f')} ({results['plain_workers']})",
                    memory,
                    f"{results['straight_wall_s']:.0f} s",
                    f"{results['checkpoint_mb']:.0f} MB every {every} steps",
                    results["resumed_at_step"],
                    results["same_steps"],
                    fmt(results["max_rel_loss_diff"], ".2e"),
                    fmt(results["onnx_max_prob_diff"], ".1e"),
                ]
            ],
            title="bf16 + channels-last" if not args.cpu_smoke else "CPU smoke (fp32, 32 px): not a measurement",
        )
        ok = results["same_steps"] and results["resumed_at_step"] and (results["onnx_max_prob_diff"] or 0) < 1e-3
        return 0 if ok else 1
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
