"""Fine-tune a timm backbone on the mushroom dataset.

    python -m data_prep all --from ../shared/data/photos --licences all  # artifacts/data/dataset, every photo, local
    python train.py --config configs/lite0.yaml                # one process: CPU or one GPU
    python train.py --config configs/lite0_embedded.yaml       # CPU, the embedded model (data: shared-photos)
    python train.py --config configs/convnext_tiny.yaml --epochs 3 --lr 3e-4 --resume auto
    accelerate launch --multi_gpu --num_processes 8 train.py --config configs/tf_efficientnetv2_s.yaml
    ACCELERATE_USE_CPU=true OMP_NUM_THREADS=1 torchrun --standalone --nproc_per_node 2 train.py --config ...

Every config key is an option (below, with its default); values are YAML (``--trainable '[blocks.6,
classifier]'``, ``--ema-decay null``). The resolved config, per-epoch and per-step metrics, checkpoints,
the best and final models and the test evaluation go to ``runs/<name>/`` (or ``--output-dir``).
``--resume auto`` continues at the exact step of the newest checkpoint (a fresh start if there is none).
"""

from __future__ import annotations

import json
import logging
import sys

from mushroom_id.engine.config import ConfigError, load_config, parse_args
from mushroom_id.engine.launch import LauncherGone, LaunchRefused, end_launcher


def main(argv: list[str] | None = None) -> int:
    config_file, overrides = parse_args(argv, description=__doc__)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        config = load_config(config_file, overrides)
        from mushroom_id.engine.loop import train

        result = train(config)
    except LauncherGone:  # a peer refused, said why and stopped the launcher: nothing to add
        return 2
    except LaunchRefused as e:  # also ends the launcher, which would add its traceback to ours
        end_launcher(f"train.py: error: {e}")
        return 2
    except ConfigError as e:  # a setting to change, not a bug: the message, no traceback
        print(f"train.py: error: {e}", file=sys.stderr)
        return 2
    summary = {k: v for k, v in result.items() if k not in ("history", "steps_log", "test")}
    if "test" in result:  # the headline numbers; all of them are in <run>/eval/metrics.json
        summary["test"] = {k: v for k, v in result["test"].items() if isinstance(v, int | float | str)}
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
