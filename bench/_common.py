"""Shared helpers for the benchmarks: machine description, timing statistics, markdown tables.

Every benchmark prints a header (date, machine, load average at start, command) and one or more
markdown tables that bench/README.md quotes as they are.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import shlex
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/x.py` from the repository root
    sys.path.insert(0, str(REPO))

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine() -> str:
    return f"{os.cpu_count()} cores ({len(os.sched_getaffinity(0))} usable), {cpu_model()}"


def load_average() -> str:
    return ", ".join(f"{x:.2f}" for x in os.getloadavg())


def header(title: str) -> None:
    """Print the run's context; the load average matters because other work may share the machine."""
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(sys.argv[0], REPO), *sys.argv[1:]])
    print(f"## {title}\n")
    print(f"- date: {_dt.datetime.now().strftime('%Y-%m-%d %H:%M')}")
    print(f"- machine: {machine()}, Python {platform.python_version()}")
    print(f"- load average at start (1/5/15 min): {load_average()}")
    print(f"- command: `{command}`\n", flush=True)


def percentile(values: Sequence[float], q: float) -> float:
    """Linear-interpolated percentile (q in 0..100)."""
    xs = sorted(values)
    if not xs:
        return float("nan")
    pos = (len(xs) - 1) * q / 100
    lo = int(pos)
    hi = min(lo + 1, len(xs) - 1)
    return xs[lo] + (xs[hi] - xs[lo]) * (pos - lo)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def time_call(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def interleaved(
    cases: dict[str, Callable[[], object]],
    repeats: int,
    warmup: int = 2,
    block: int = 1,
    setup: dict[str, Callable[[], object]] | None = None,
) -> dict[str, list[float]]:
    """Seconds per call for each case, measured round-robin so that a change in machine load
    (other jobs) hits every case alike instead of whichever happened to run then.

    ``block`` calls per case per round; ``setup[name]`` runs before each block, followed by one
    untimed call (e.g. ``torch.set_num_threads``: the first call after a change is slow).
    """
    setup = setup or {}
    for name, fn in cases.items():
        setup.get(name, lambda: None)()
        for _ in range(warmup):
            fn()
    out: dict[str, list[float]] = {name: [] for name in cases}
    rounds = max(1, -(-repeats // block))
    for _ in range(rounds):
        for name, fn in cases.items():
            if name in setup:
                setup[name]()
                fn()
            out[name] += [time_call(fn) for _ in range(block)]
    return out


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    def fmt(v: object) -> str:
        if isinstance(v, float):
            if v != v:  # nan
                return "-"
            return f"{v:,.1f}" if abs(v) >= 10 else f"{v:.2f}"
        return str(v)

    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def show(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> None:
    if title:
        print(f"**{title}**\n")
    print(table(headers, rows) + "\n", flush=True)


def shared_photos(limit: int | None = None, min_side: int = 0) -> list[Path]:
    """Files of the shared photo set (read in place), sorted, optionally only those >= min_side px."""
    from mushroom_id.core.paths import shared_manifest, shared_photos_dir

    root = shared_photos_dir()
    rows = [r for r in shared_manifest(root) if min(int(r["orig_width"]), int(r["orig_height"])) >= min_side]
    files = sorted(root.parent / r["path"] for r in rows)
    return files[:limit] if limit else files
