"""Training throughput: train.py next to transformers' Trainer on the same timm model, data, image
size and batch size; then the data loader (600 px JPEG -> 299 px training crops) per core.

    python bench/training.py                          # ~5 min on 2 busy cores
    python bench/training.py --steps 20 --batch-size 64 --peer-repeats 3
    python bench/training.py --skip-peers             # data loader only

* train.py: ``python train.py --config configs/lite0.yaml --data shared-photos --epochs 1
  --max-steps-per-epoch S ...`` (full fine-tuning of tf_efficientnet_lite0 from the pip ImageNet
  weights, fp32 on CPU, no EMA); its own ``train_images_per_s`` (metrics.json) is reported.
* Trainer: ``TimmWrapperForImageClassification`` around the same timm architecture (same drop rates,
  same pip weights), ``Trainer`` with the same batch size, steps, AdamW, learning rate, loader workers
  and the same timm training transform on the same training split (``load_splits("shared-photos")``).
  Reported: Trainer's ``train_samples_per_second``. Both numbers include the loader's start-up.
* Data loader: shared photos re-encoded to 600 px JPEGs (the normalize stage's output size) in a
  temporary folder, then ``load_image`` + timm's training transform at 299 px (RandomResizedCrop,
  flip, colour jitter, RandAugment: train.py's defaults) in one process (per core) and in a
  ``DataLoader`` with one worker per core; projected linearly to a 16-core GPU host.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import REPO, header, median, shared_photos, show

TRAIN_DEFAULTS = dict(scale=(0.25, 1.0), hflip=0.5, vflip=0.0, color_jitter=0.3, auto_augment="rand-m9-mstd0.5-inc1")


def run_train_py(steps: int, batch: int, workers: int, lr: float, out: Path) -> dict:
    cmd = [
        sys.executable,
        "train.py",
        "--config",
        "configs/lite0.yaml",
        "--data",
        "shared-photos",
        "--epochs",
        "1",
        "--max-steps-per-epoch",
        str(steps),
        "--batch-size",
        str(batch),
        "--num-workers",
        str(workers),
        "--mixed-precision",
        "no",
        "--channels-last",
        "false",
        "--ema-decay",
        "null",
        "--lr",
        str(lr),
        "--warmup-epochs",
        "0",
        "--test-split",
        "null",
        "--export-onnx",
        "false",
        "--output-dir",
        str(out),
    ]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode:
        return {"error": (proc.stderr or proc.stdout)[-1500:], "wall": wall}
    history = json.loads((out / "metrics.json").read_text())
    return {"images_per_s": history[-1]["train_images_per_s"], "wall": wall, "command": " ".join(cmd[1:])}


def run_trainer(steps: int, batch: int, workers: int, lr: float, out: Path) -> dict:
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config
    from transformers import TimmWrapperConfig, TimmWrapperForImageClassification, Trainer, TrainingArguments

    from mushroom_id.core.models import lite0_imagenet_state_dict
    from mushroom_id.engine.data import load_splits

    data = load_splits("shared-photos")
    config = TimmWrapperConfig(
        architecture="tf_efficientnet_lite0",
        num_labels=len(data.labels),
        model_args={"drop_rate": 0.2, "drop_path_rate": 0.1},
    )
    model = TimmWrapperForImageClassification(config)
    weights = {k: v for k, v in lite0_imagenet_state_dict().items() if not k.startswith("classifier.")}
    missing, _ = model.timm_model.load_state_dict(weights, strict=False)
    assert all(k.startswith("classifier.") for k in missing), missing
    probe = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    transform = create_transform(**resolve_data_config(model=probe), is_training=True, **TRAIN_DEFAULTS)
    train_set = data["train"].with_transform(transform)

    class AsDict(torch.utils.data.Dataset):
        def __len__(self):
            return len(train_set)

        def __getitem__(self, i):
            x, y, _ = train_set[i]
            return {"pixel_values": x, "labels": y}

    args = TrainingArguments(
        output_dir=str(out),
        per_device_train_batch_size=batch,
        max_steps=steps,
        learning_rate=lr,
        weight_decay=0.05,
        optim="adamw_torch",
        lr_scheduler_type="constant",
        dataloader_num_workers=workers,
        use_cpu=True,
        report_to=[],
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        remove_unused_columns=False,
        disable_tqdm=True,
        max_grad_norm=1.0,
        seed=0,
    )
    from transformers import TrainerCallback

    class StepTimes(TrainerCallback):
        def __init__(self):
            self.times = []

        def on_step_end(self, *_args, **_kwargs):
            self.times.append(time.perf_counter())

    steps_cb = StepTimes()
    t0 = time.perf_counter()
    result = Trainer(model=model, args=args, train_dataset=AsDict(), callbacks=[steps_cb]).train()
    gaps = [b - a for a, b in zip(steps_cb.times, steps_cb.times[1:], strict=False)]
    return {
        "images_per_s": result.metrics["train_samples_per_second"],
        "wall": time.perf_counter() - t0,
        "steady": batch / median(gaps) if gaps else float("nan"),
        "threads": torch.get_num_threads(),
    }


def make_600px(files: list[Path], out_dir: Path) -> list[str]:
    """The normalize stage's output size: longest side 600 px, JPEG q90 (small photos upscaled, so
    every file costs what a 600 px JPEG costs to decode)."""
    from PIL import Image

    out = []
    for i, f in enumerate(files):
        with Image.open(f) as im:
            img = im.convert("RGB")
            scale = 600 / max(img.size)
            img = img.resize((round(img.width * scale), round(img.height * scale)), Image.Resampling.BICUBIC)
            path = out_dir / f"{i:04d}.jpg"
            img.save(path, "JPEG", quality=90)
            out.append(str(path))
    return out


class Crops:
    def __init__(self, files, transform):
        self.files, self.transform = files, transform

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        from mushroom_id.core.images import load_image

        return self.transform(load_image(self.files[i]))


def loader_throughput(files: list[str], workers: int, batch: int, repeats: int) -> tuple[float, float]:
    import timm
    import torch
    from timm.data import create_transform, resolve_data_config

    model = timm.create_model("tf_efficientnet_lite0", pretrained=False)
    cfg = resolve_data_config(model=model)
    cfg["input_size"] = (3, 299, 299)
    transform = create_transform(**cfg, is_training=True, **TRAIN_DEFAULTS)
    dataset = Crops(files, transform)
    torch.set_num_threads(1)  # loader workers run one thread each; measure one core the same way
    single, multi = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for i in range(len(dataset)):
            dataset[i]
        single.append(len(dataset) / (time.perf_counter() - t0))
        loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers, shuffle=True)
        t0 = time.perf_counter()
        n = sum(len(x) for x in loader)
        multi.append(n / (time.perf_counter() - t0))
    return median(single), median(multi)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=4, help="optimizer steps per trainer (default 4)")
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="DataLoader workers (default: all cores)")
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--loader-files", type=int, default=256, help="600 px JPEGs for the loader benchmark")
    ap.add_argument("--repeats", type=int, default=3, help="passes of the loader benchmark (median)")
    ap.add_argument("--peer-repeats", type=int, default=1, help="alternated runs of train.py and Trainer")
    ap.add_argument("--skip-peers", action="store_true", help="only the data-loader benchmark")
    args = ap.parse_args()
    header("Training throughput (bench/training.py)")
    tmp = Path(tempfile.mkdtemp(prefix="bench-training-"))

    if not args.skip_peers:
        ours_runs, peer_runs = [], []
        for i in range(args.peer_repeats):  # alternated, so that load changes hit both alike
            ours = run_train_py(args.steps, args.batch_size, args.workers, args.lr, tmp / f"train_py{i}")
            if "error" in ours:
                print(f"train.py failed:\n```\n{ours['error']}\n```\n")
            else:
                ours_runs.append(ours)
            peer_runs.append(run_trainer(args.steps, args.batch_size, args.workers, args.lr, tmp / f"trainer{i}"))
        ours_ips = median([r["images_per_s"] for r in ours_runs]) if ours_runs else float("nan")
        peer_ips = median([r["images_per_s"] for r in peer_runs])
        rows = [
            ["train.py (Accelerate loop)", ours_ips, "-", median([r["wall"] for r in ours_runs] or [float("nan")])],
            [
                "transformers Trainer + TimmWrapperForImageClassification",
                peer_ips,
                median([r["steady"] for r in peer_runs]),
                median([r["wall"] for r in peer_runs]),
            ],
        ]
        show(
            [
                "trainer",
                "train images/s (its own figure)",
                "steady state (steps 2+)",
                "wall s (incl. start-up, data, eval)",
            ],
            rows,
            f"tf_efficientnet_lite0, full fine-tuning, fp32, 224 px, batch {args.batch_size}, {args.steps} steps, "
            f"{args.workers} loader workers, shared-photos train split, CPU, median of {args.peer_repeats} "
            "alternated runs",
        )
        print(
            f"train.py / Trainer: {ours_ips / peer_ips:.2f}x (each trainer's own images/s: samples over the "
            "training loop's time, loader start-up included)\n"
        )

    import torch

    threads = torch.get_num_threads()
    files = make_600px(shared_photos()[:: max(1, len(shared_photos()) // args.loader_files)][: args.loader_files], tmp)
    per_core, all_cores = loader_throughput(files, args.workers, args.batch_size, args.repeats)
    torch.set_num_threads(threads)
    cores = args.workers
    efficiency = all_cores / (per_core * cores)
    show(
        ["what", "images/s"],
        [
            ["1 core (one process, load_image + training transform)", per_core],
            [f"DataLoader, {cores} workers", all_cores],
            [f"scaling efficiency at {cores} workers", efficiency],
            ["projected: 16-core GPU host, 16 workers (1 core x 16 x efficiency)", per_core * 16 * efficiency],
            [
                "projected: 16-core GPU host, 15 workers (one core kept for the training process)",
                per_core * 15 * efficiency,
            ],
        ],
        f"Data loader: {len(files)} JPEGs of 600 px -> 299 px training crops, median of {args.repeats} passes",
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
