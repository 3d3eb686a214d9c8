"""Export a saved model: a standalone Hub folder, ONNX (with a parity check), a model card, a Hub push.

    python -m mushroom_id.export --model embedded --out exported/embedded --onnx
    python -m mushroom_id.export --model local-dir:runs/lite0/model --out exported/lite0 --onnx \\
        --push-to-hub org/mushroom-lite0

The Hub folder is timm's layout (``config.json`` with ``label_names``, plus ``model.safetensors`` with
*all* tensors, fp32 — no ``base_weights`` indirection), so ``timm.create_model("hf-hub:org/name")``,
``load_model("hf-hub:org/name")`` and ``transformers.pipeline("image-classification", model=...)`` all
load it. The calibration temperature is folded into the classifier, so all of them get calibrated
probabilities from a plain softmax (``--keep-temperature-separate``: keep it in ``config.json`` only).
The ONNX graph takes normalised ``pixel_values`` (N, 3, H, W) and returns raw ``logits``;
label names, temperature and preprocessing are in its metadata.
"""

from __future__ import annotations

import argparse
import json
import sys

from mushroom_id.core.models import load_model, load_model_dir
from mushroom_id.engine.export import (
    export_hub_folder,
    export_onnx,
    push_to_hub,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mushroom_id.export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", default="embedded", help="embedded | local-dir:<path> | hf-hub:<repo>")
    parser.add_argument("--out", required=True, help="output folder (Hub layout)")
    parser.add_argument("--onnx", action="store_true", help="also write model.onnx and check parity")
    parser.add_argument(
        "--keep-temperature-separate",
        action="store_true",
        help="do not fold the temperature into the classifier (transformers' pipeline then gives uncalibrated scores)",
    )
    parser.add_argument("--check-images", nargs="*", default=None, help="photos for the ONNX parity check")
    parser.add_argument("--push-to-hub", default=None, metavar="ORG/NAME")
    parser.add_argument("--dataset", default=None, help="dataset id named in the model card")
    parser.add_argument("--private", action="store_true")
    args = parser.parse_args(argv)

    loaded = load_model(args.model)
    metrics_file = loaded.folder / "metrics.json" if loaded.folder else None
    src_metrics = json.loads(metrics_file.read_text()) if metrics_file and metrics_file.is_file() else None
    out = export_hub_folder(loaded, args.out, src_metrics, fold_calibration=not args.keep_temperature_separate)
    summary: dict = {"folder": str(out)}
    if args.onnx:
        summary["onnx"] = export_onnx(load_model_dir(out), out / "model.onnx", check_images=args.check_images)
    if args.push_to_hub:
        summary["pushed"] = push_to_hub(out, args.push_to_hub, dataset=args.dataset, private=args.private)
    print(json.dumps(summary, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
