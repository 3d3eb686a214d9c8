"""Peak memory: the app with the embedded model, and each data-preparation stage on the shared photos.

    python bench/memory.py                 # ~3 min on 2 cores: app (torch and ONNX) + all six stages
    python bench/memory.py --skip-data     # the app only
    python bench/memory.py --skip-app --workers 1

Every command runs as a subprocess; its process tree is sampled every 50 ms (psutil). Reported:
the peak RSS of the main process, and the peak of the summed RSS of the whole tree (forked workers
share copy-on-write pages, so the sum overcounts: an upper bound). The app is measured after start
and 8 predictions; the data stages run ``python -m data_prep <stage>`` one after another on every
photo of ../shared served by ``tests/stand_ins/fake_web.py`` (the end-to-end run of data_prep/README.md).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import REPO, header, shared_photos, show

MB = 1024 * 1024


class PeakSampler:
    """Samples a process tree's RSS in a background thread until stopped."""

    def __init__(self, pid: int, interval: float = 0.05):
        import psutil

        self.proc = psutil.Process(pid)
        self.interval = interval
        self.main_peak = 0
        self.tree_peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        import psutil

        while not self._stop.is_set():
            try:
                main = self.proc.memory_info().rss
                total = main
                for child in self.proc.children(recursive=True):
                    try:
                        total += child.memory_info().rss
                    except psutil.Error:
                        pass
            except psutil.Error:
                break
            self.main_peak = max(self.main_peak, main)
            self.tree_peak = max(self.tree_peak, total)
            time.sleep(self.interval)

    def stop(self) -> tuple[float, float]:
        self._stop.set()
        self._thread.join()
        return self.main_peak / MB, self.tree_peak / MB


def run_measured(cmd: list[str], env: dict | None = None) -> tuple[float, float, float, int]:
    """(seconds, main peak MB, tree peak MB, exit code) of a command."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    sampler = PeakSampler(proc.pid)
    _, err = proc.communicate()
    main, tree = sampler.stop()
    if proc.returncode:
        sys.stderr.write(err.decode(errors="replace")[-2000:])
    return time.perf_counter() - t0, main, tree, proc.returncode


def app_memory(runtime: str) -> list:
    from app_throughput import free_port, load_level, wait_ready

    port = free_port()
    env = dict(os.environ, GRADIO_SERVER_PORT=str(port), MUSHROOM_RUNTIME=runtime, GRADIO_ANALYTICS_ENABLED="False")
    proc = subprocess.Popen(
        [sys.executable, "app.py"], cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    sampler = PeakSampler(proc.pid)
    try:
        url = f"http://127.0.0.1:{port}/"
        ready = wait_ready(proc, url)
        idle_main = sampler.proc.memory_info().rss / MB
        load_level(url, 2, 4, shared_photos()[::97])
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    main, _tree = sampler.stop()
    return [f"app.py, embedded model, MUSHROOM_RUNTIME={runtime}", f"{ready:.0f}", idle_main, main]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--skip-app", action="store_true")
    ap.add_argument("--skip-data", action="store_true")
    ap.add_argument("--workers", type=int, default=os.cpu_count(), help="data_prep --workers (default: all cores)")
    ap.add_argument("--work-dir", type=Path, help="data_prep work dir (default: a new temporary folder)")
    args = ap.parse_args()
    header("Peak memory (bench/memory.py)")

    if not args.skip_app:
        rows = [app_memory(rt) for rt in ("torch", "onnx")]
        show(["process", "start s", "RSS after start MB", "peak RSS MB (start + 8 predictions)"], rows, "App")

    if not args.skip_data:
        from mushroom_id.core.paths import shared_photos_dir
        from tests.stand_ins.fake_web import FakeWeb, write_url_list

        work = args.work_dir or Path(tempfile.mkdtemp(prefix="bench-memory-"))
        work.mkdir(parents=True, exist_ok=True)
        stage_args = {
            "species": ["--per-species", "0"],
            "crawl": ["--source", "url-list", "--delay", "0", "--min-side", "64"],
            "dedup": [],
            "normalize": [],
            "split": [],
            "publish": ["--licences", "all"],  # every image, as before the open default
        }
        rows = []
        with FakeWeb(shared_photos_dir()) as web:
            url_list = work / "shared_photos_urls.csv"
            n = write_url_list(web, url_list)
            stage_args["crawl"] += ["--url-list", str(url_list)]
            for stage, extra in stage_args.items():
                cmd = [
                    sys.executable,
                    "-m",
                    "data_prep",
                    stage,
                    "--work-dir",
                    str(work),
                    "--workers",
                    str(args.workers),
                    *extra,
                ]
                seconds, main_mb, tree_mb, code = run_measured(cmd)
                rows.append([stage, seconds, main_mb, tree_mb, "ok" if code == 0 else f"exit {code}"])
                print(f"  {stage}: {seconds:.1f} s, {main_mb:.0f} / {tree_mb:.0f} MB", file=sys.stderr, flush=True)
        show(
            ["stage", "seconds", "peak RSS main MB", "peak RSS tree MB (sum)", "status"],
            rows,
            f"python -m data_prep <stage> on the {n:,} shared photos, --workers {args.workers}",
        )
        if not args.work_dir:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
