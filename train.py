"""Fine-tune a timm backbone on the mushroom dataset.

    accelerate launch train.py --config configs/tf_efficientnetv2_s.yaml --data org/mushrooms-933
    python train.py --config configs/lite0_embedded.yaml                    # CPU, the embedded default
    python train.py --config configs/convnext_tiny.yaml --epochs 3 --lr 3e-4 --resume auto
    python train.py --config configs/lite0.yaml --push-to-hub org/mushroom-lite0

Every ``--key value`` overrides a config key (see mushroom_id/training/config.py); values are
YAML (``--trainable '[blocks.6, classifier]'``, ``--ema-decay null``). The resolved config,
per-epoch metrics, checkpoints, the best and final models and the test evaluation go to
``runs/<name>/`` (or ``--output-dir``).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from mushroom_id.training.config import load_config, parse_overrides
from mushroom_id.training.loop import train


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", help="YAML file in configs/")
    args, rest = parser.parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    config = load_config(args.config, parse_overrides(rest))
    result = train(config)
    summary = {k: v for k, v in result.items() if k != "history"}
    print(json.dumps(summary, indent=2, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
