"""App throughput: N concurrent gradio_client callers against the launched app (``python app.py``).

    python bench/app_throughput.py                                   # ~4 min on 2 cores
    python bench/app_throughput.py --configs torch@2,onnx:1@2 --requests 4 --callers 1,4,16,32

Each config is ``runtime[:threads]@concurrency``: the app is started as a subprocess with
``MUSHROOM_RUNTIME=runtime``, ``MUSHROOM_THREADS=threads`` (omitted: the runtime's default) and
``MUSHROOM_CONCURRENCY=concurrency`` (the queue's ``default_concurrency_limit``: predictions run at
once). For N = 1, 4, 16 callers (threads of this process, one ``Client`` each), every caller sends
``--requests`` photos of the shared set to ``/classify``; reported: requests/s over the wall time,
latency p50/p95 per request (upload + queue wait + prediction + result), errors.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import REPO, header, median, percentile, shared_photos, show

DEFAULT_CONFIGS = "torch@1,torch@2,torch:1@2,onnx:1@2"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def parse_config(spec: str) -> dict:
    runtime, _, concurrency = spec.partition("@")
    runtime, _, threads = runtime.partition(":")
    return {"spec": spec, "runtime": runtime, "threads": threads, "concurrency": int(concurrency or 2)}


def start_app(cfg: dict, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = dict(
        os.environ,
        GRADIO_SERVER_PORT=str(port),
        GRADIO_ANALYTICS_ENABLED="False",
        HF_HUB_OFFLINE="1",
        MUSHROOM_RUNTIME=cfg["runtime"],
        MUSHROOM_CONCURRENCY=str(cfg["concurrency"]),
    )
    env.pop("MUSHROOM_THREADS", None)
    if cfg["threads"]:
        env["MUSHROOM_THREADS"] = cfg["threads"]
    log = open(log_path, "w")  # noqa: SIM115 - closed with the process
    proc = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, f"http://127.0.0.1:{port}/"


def wait_ready(proc: subprocess.Popen, url: str, timeout: float = 180) -> float:
    import httpx

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"the app exited with code {proc.returncode}")
        try:
            if httpx.get(url + "config", timeout=2).status_code == 200:
                return time.perf_counter() - t0
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise TimeoutError(f"the app did not answer at {url} within {timeout} s")


def load_level(url: str, callers: int, requests: int, photos: list[Path]) -> dict:
    from gradio_client import Client, handle_file

    clients = [Client(url, verbose=False) for _ in range(callers)]
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(callers + 1)

    def caller(i: int) -> None:
        start.wait()
        for k in range(requests):
            photo = photos[(i * requests + k) % len(photos)]
            t0 = time.perf_counter()
            try:
                clients[i].predict(handle_file(str(photo)), api_name="/classify")
                with lock:
                    latencies.append(time.perf_counter() - t0)
            except Exception as e:  # queue full, timeouts: counted, not fatal
                with lock:
                    errors.append(type(e).__name__)

    threads = [threading.Thread(target=caller, args=(i,)) for i in range(callers)]
    for t in threads:
        t.start()
    start.wait()
    t0 = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    for c in clients:
        c.close()
    return {"ok": len(latencies), "errors": len(errors), "wall": wall, "latencies": latencies}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--configs", default=DEFAULT_CONFIGS, help=f"comma-separated (default {DEFAULT_CONFIGS})")
    ap.add_argument("--callers", default="1,4,16", help="concurrent callers per level (default 1,4,16)")
    ap.add_argument("--requests", type=int, default=2, help="requests per caller per level (default 2)")
    args = ap.parse_args()
    header("App throughput (bench/app_throughput.py)")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

    photos = shared_photos()[::37]  # a spread of sizes and species
    levels = [int(n) for n in args.callers.split(",")]
    rows = []
    logs = Path(os.environ.get("TMPDIR", "/tmp"))
    for spec in args.configs.split(","):
        cfg = parse_config(spec)
        proc, url = start_app(cfg, logs / f"bench-app-{os.getpid()}-{spec.replace(':', '_')}.log")
        try:
            ready = wait_ready(proc, url)
            load_level(url, 1, 2, photos)  # warm-up: first call pays lazy imports
            for n in levels:
                r = load_level(url, n, args.requests, photos)
                lat = r["latencies"]
                rows.append(
                    [
                        spec,
                        cfg["runtime"],
                        cfg["threads"] or "default",
                        cfg["concurrency"],
                        n,
                        r["ok"] / r["wall"],
                        median(lat) * 1000,
                        percentile(lat, 95) * 1000,
                        r["errors"],
                        f"{ready:.0f}",
                    ]
                )
                print(f"  {spec} N={n}: {rows[-1][5]:.2f} req/s, p95 {rows[-1][7]:.0f} ms", file=sys.stderr, flush=True)
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
    show(
        [
            "config",
            "runtime",
            "threads",
            "MUSHROOM_CONCURRENCY",
            "callers N",
            "req/s",
            "p50 ms",
            "p95 ms",
            "errors",
            "start s",
        ],
        rows,
        f"/classify under N concurrent gradio_client callers, {args.requests} requests each",
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
