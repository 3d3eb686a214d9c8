"""Answering a field question: the re-rank from cached photo probabilities vs a full prediction.

    python bench/refine.py                 # ~1 min on 2 cores
    python bench/refine.py --repeats 200

The app keeps the photo's probabilities after the first answer; each field answer then calls
``Predictor.refine`` (re-weighting, safety policy, next questions; no network). Measured side by side,
round-robin, on one shared photo: the full ``Predictor.predict`` with the same answers, and ``refine``
with 0, 1 and 3 answers.
"""

from __future__ import annotations

import argparse

from _common import header, interleaved, median, percentile, shared_photos, show


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=60)
    ap.add_argument("--model", default="embedded")
    args = ap.parse_args()
    header("Field answers: re-rank vs full prediction (bench/refine.py)")

    from mushroom_id.core.models import load_model
    from mushroom_id.serving.predictor import Predictor, configure_threads

    configure_threads()
    predictor = Predictor(load_model(args.model))
    for photo in shared_photos(limit=50):  # the first photo the fungus gate accepts: a real answer to re-rank
        probs, score = predictor.photo_probs([photo])
        if score is None or score >= predictor.thresholds.fungus:
            break
    three = {"hymenium": "gills", "stipe": "ring", "spore_print": "white"}
    cases = {
        "full predict, 3 answers": lambda: predictor.predict(photo, answers=three),
        "refine, 0 answers": lambda: predictor.refine(probs, score, {}),
        "refine, 1 answer": lambda: predictor.refine(probs, score, {"hymenium": "gills"}),
        "refine, 3 answers": lambda: predictor.refine(probs, score, three),
    }
    times = interleaved(cases, args.repeats)
    base = median(times["full predict, 3 answers"])
    rows = [
        [name, f"{median(t) * 1000:.2f}", f"{percentile(t, 95) * 1000:.2f}", f"{median(t) / base:.3f}"]
        for name, t in times.items()
    ]
    show(
        ["case", "p50 ms", "p95 ms", "p50 / full predict"], rows, title=f"{photo.name}, {len(predictor.labels)} species"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
