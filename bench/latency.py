"""Prediction latency for one photo: the full predictor path vs the bare model forward (the limit).

    python bench/latency.py                    # ~2 min on 2 cores
    python bench/latency.py --repeats 100      # longer, tighter percentiles

Full path = ``Predictor.predict(path)``: read + decode (JPEG draft) + preprocess + network (species
head and fungus gate) + safety logic. Bare = the network alone on an already prepared tensor.
Both for PyTorch eager and ONNX Runtime, with 1 and 2 intra-op threads, measured round-robin (so
changes in machine load hit every case alike; blocks of 5 calls, each case setting its thread count
first). Photos: a 1024 px photo from the shared set and the
same photo upscaled to 4000x3000 (a 12 MP phone upload, written to a temporary folder).
Then: where the time of the full path goes, and the served path before/after with its outputs compared.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

from _common import header, interleaved, median, percentile, shared_photos, show


def phone_photo(src: Path, out_dir: Path) -> Path:
    from PIL import Image

    out = out_dir / "phone_12mp.jpg"
    with Image.open(src) as im:
        im.convert("RGB").resize((4000, 3000), Image.Resampling.BICUBIC).save(out, "JPEG", quality=92)
    return out


def ms(xs: list[float]) -> tuple[float, float]:
    return median(xs) * 1000, percentile(xs, 95) * 1000


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=20, help="timed calls per case (default 20)")
    ap.add_argument("--model", default="embedded", help="model spec (default: embedded)")
    ap.add_argument(
        "--against",
        default=None,
        help="another model spec: only its full path next to --model's, interleaved in one run "
        "(e.g. the previous embedded model, to check a new default against the latency budget)",
    )
    args = ap.parse_args()
    if args.against:
        return compare_models(args.model, args.against, args.repeats)
    header("Prediction latency (bench/latency.py)")

    import numpy as np
    import torch

    from mushroom_id.core.images import load_image
    from mushroom_id.core.models import load_model
    from mushroom_id.core.safety import combine_observation
    from mushroom_id.serving.predictor import Predictor

    loaded = load_model(args.model)
    torch_pred = Predictor(loaded, runtime="torch")
    onnx1 = Predictor(loaded, runtime="onnx")
    from mushroom_id.serving.onnx import OnnxNetwork

    onnx2 = Predictor(loaded, runtime="onnx")
    onnx2._onnx = OnnxNetwork(onnx2.network, tuple(loaded.data_config["input_size"]), threads=2)

    tmp = Path(tempfile.mkdtemp(prefix="bench-latency-"))
    photo = next(p for p in shared_photos(min_side=700))  # a 1024 px photo
    phone = phone_photo(photo, tmp)
    x = torch_pred.batch([photo])
    network = torch_pred.network

    def bare_torch():
        with torch.inference_mode():
            network(x)

    # torch.set_num_threads is process-wide: each case sets its own count before its block of calls
    cases, setup = {}, {}
    for n in (2, 1):
        cases[f"torch-{n}|bare"] = bare_torch
        cases[f"torch-{n}|full"] = lambda: torch_pred.predict(photo)
        cases[f"torch-{n}|phone"] = lambda: torch_pred.predict(phone)
    for n, pred in ((1, onnx1), (2, onnx2)):
        cases[f"onnx-{n}|bare"] = lambda pred=pred: pred._onnx(x)
        cases[f"onnx-{n}|full"] = lambda pred=pred: pred.predict(photo)
        cases[f"onnx-{n}|phone"] = lambda pred=pred: pred.predict(phone)
    for name in cases:
        runtime, n = name.split("|")[0].split("-")
        setup[name] = (
            (lambda n=int(n): torch.set_num_threads(n)) if runtime == "torch" else (lambda: torch.set_num_threads(1))
        )  # what Predictor(runtime="onnx") sets
    t = interleaved(cases, args.repeats, block=5, setup=setup)
    torch.set_num_threads(2)

    rows = []
    for runtime in ("torch-2", "torch-1", "onnx-1", "onnx-2"):
        bare, full, ph = (ms(t[f"{runtime}|{k}"]) for k in ("bare", "full", "phone"))
        name, threads = runtime.split("-")
        name = {"torch": "PyTorch eager", "onnx": "ONNX Runtime"}[name]
        rows.append([name, threads, *bare, *full, full[0] / bare[0], *ph, ph[0] / bare[0]])
    show(
        [
            "runtime",
            "threads",
            "bare p50",
            "bare p95",
            "full 1024px p50",
            "p95",
            "full/bare",
            "full 12MP p50",
            "p95",
            "full/bare",
        ],
        rows,
        f"Latency in ms, batch 1, {args.repeats} calls per case, medians of interleaved rounds",
    )

    def separate_forwards():  # what Predictor.forward ran before the shared trunk (same numbers)
        with torch.inference_mode():
            loaded.model(x), network.gate_model(x)

    # Where the full path's time goes (PyTorch, 2 threads: the default before this benchmark)
    torch.set_num_threads(2)
    img_small, img_phone = load_image(photo), load_image(phone)
    lp, fungus = torch_pred.forward(x)
    probs = combine_observation(lp)
    parts = {
        "read + decode 1024px (draft)": lambda: load_image(photo),
        "read + decode 12MP (draft 448)": lambda: load_image(phone),
        "read + decode 12MP (no draft)": lambda: load_image(phone, draft_size=None),
        "preprocess (resize 256, crop 224, normalize) 1024px": lambda: torch_pred.transform(img_small),
        f"preprocess, 12MP drafted to {img_phone.size[0]}x{img_phone.size[1]}": lambda: torch_pred.transform(img_phone),
        "network, PyTorch 2 threads": bare_torch,
        "network before trunk sharing: species model + separate gate forward": separate_forwards,
        "network, ONNX Runtime 1 thread": lambda: onnx1._onnx(x),
        "safety logic + result dict": lambda: torch_pred.answer(probs, float(fungus[0])),
    }
    if not (network.trunk_blocks and network.gate_model is not None):
        del parts["network before trunk sharing: species model + separate gate forward"]
    tp = interleaved(parts, args.repeats, block=5)
    show(["step", "p50 ms", "p95 ms"], [[k, *ms(v)] for k, v in tp.items()], "Where the time goes (PyTorch 2 threads)")

    # Before/after of the served path and the equality of its answers
    photos = shared_photos()[:: max(1, len(shared_photos()) // 40)][:40]
    diffs, same = [], 0
    for p in photos:
        a, b = torch_pred.predict(p), onnx1.predict(p)
        pa = np.array([c["probability"] for c in a["candidates"]])
        pb = np.array([c["probability"] for c in b["candidates"]])
        diffs.append(float(np.abs(pa - pb).max()) if len(pa) == len(pb) and len(pa) else 0.0)
        same += json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)
    before = t["torch-2|full"], t["torch-2|phone"]
    threads = t["torch-1|full"], t["torch-1|phone"]
    after = t["onnx-1|full"], t["onnx-1|phone"]
    show(
        ["served path", "1024px p50", "p95", "12MP p50", "p95", "speed-up p50 (1024px / 12MP)"],
        [
            ["before: PyTorch eager, 2 threads (torch default)", *ms(before[0]), *ms(before[1]), "1.00 / 1.00"],
            [
                "PyTorch eager, 1 thread (MUSHROOM_THREADS=1)",
                *ms(threads[0]),
                *ms(threads[1]),
                f"{median(before[0]) / median(threads[0]):.2f} / {median(before[1]) / median(threads[1]):.2f}",
            ],
            [
                "after: ONNX Runtime, 1 thread (MUSHROOM_RUNTIME=onnx)",
                *ms(after[0]),
                *ms(after[1]),
                f"{median(before[0]) / median(after[0]):.2f} / {median(before[1]) / median(after[1]):.2f}",
            ],
        ],
        "Served path before/after",
    )
    print(
        f"Answers on {len(photos)} shared photos: {same} identical JSON, "
        f"max candidate probability difference {max(diffs):.4f} (4-decimal rounding).\n"
    )
    shutil.rmtree(tmp, ignore_errors=True)
    return 0


def compare_models(spec: str, other: str, repeats: int) -> int:
    """Full-path p50/p95 of two models side by side, ONNX Runtime (1 thread, the served runtime) and PyTorch
    eager (2 threads), every case interleaved in one run; the ratio against ``other`` per runtime."""
    import torch

    from mushroom_id.core.models import load_model
    from mushroom_id.serving.predictor import Predictor

    torch.set_num_threads(2)
    photo = next(p for p in shared_photos(min_side=700))
    loaded = {s: load_model(s) for s in (other, spec)}
    preds = {
        (s, rt): Predictor(loaded[s], runtime=rt, **({"threads": 1} if rt == "onnx" else {}))
        for rt in ("onnx", "torch")
        for s in (other, spec)
    }
    for p in preds.values():  # the first call builds the ONNX session / warms the caches
        p.predict(photo)

    t = interleaved(
        {k: (lambda p=p: p.predict(photo)) for k, p in preds.items()},
        repeats,
        block=5,
        setup={k: (lambda: torch.set_num_threads(2)) for k in preds if k[1] == "torch"},
    )
    show(
        ["model", "architecture", "runtime", "full path p50 ms", "p95 ms", "ratio p50"],
        [
            [
                s,
                loaded[s].config.get("architecture"),
                rt,
                *ms(t[(s, rt)]),
                f"{median(t[(s, rt)]) / median(t[(other, rt)]):.2f}",
            ]
            for (s, rt) in preds
        ],
        f"Full prediction path (1024 px photo), {repeats} calls each, interleaved",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
