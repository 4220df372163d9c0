"""Search by image through the REST API, before and after, in one run: latency on 250 px LFW
photos and on a 1080p photo, and throughput with 1, 2 and 4 concurrent clients.

    python benchmarks/requests.py [--before REV] [--people 100] [--searches 100]

Each variant is a real ``faceledger serve`` on loopback with a fresh data directory and the same
enrolled faces (the first LFW photo of ``--people`` people, and obama.jpg); searches use each
person's second photo. ``--before REV`` runs the server from a git worktree of that revision
(e.g. the commit before the detector changed) beside the current tree.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.load import people_with_two_photos, photo, search
from faceledger.config import get_settings
from tests.security.server_process import ServerProcess, post_photo, prepare

COLLECTION = "load"  # benchmarks.load.search posts to this collection
CLIENTS = (1, 2, 4)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def enrol(url: str, headers: dict, lfw: Path, names: list[str], extra: Path) -> None:
    with httpx.Client(timeout=300) as client:
        for path in [photo(lfw, n, 1) for n in names] + [extra]:
            response = post_photo(client, f"{url}/v1/collections/{COLLECTION}/faces", path, headers)
            response.raise_for_status()


def latencies(url: str, headers: dict, paths: list[Path]) -> list[float]:
    seconds = []
    with httpx.Client(timeout=300) as client:
        for path in paths:
            started = time.perf_counter()
            search(client, url, headers, path, 80, 10).raise_for_status()
            seconds.append(time.perf_counter() - started)
    return seconds


def throughput(url: str, headers: dict, paths: list[Path], clients: int) -> float:
    """Searches per second with ``clients`` clients each searching every path once."""

    def client_loop(offset: int) -> None:
        rotated = paths[offset:] + paths[:offset]
        latencies(url, headers, rotated)

    threads = [
        threading.Thread(target=client_loop, args=(i * len(paths) // clients,))
        for i in range(clients)
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return clients * len(paths) / (time.perf_counter() - started)


def measure(label: str, env: dict[str, str], args: argparse.Namespace) -> dict[str, float]:
    data = args.data or get_settings().eval_data
    lfw = data / "lfw"
    examples = data / "samples" / "face_recognition" / "examples"
    names = people_with_two_photos(lfw, args.people)
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        token = prepare(data_dir, COLLECTION)
        server = ServerProcess(data_dir, **env).start()
        try:
            headers = {"Authorization": f"Bearer {token}"}
            enrol(server.url, headers, lfw, names, examples / "obama.jpg")
            small = [photo(lfw, n, 2) for n in names][: args.searches]
            latencies(server.url, headers, small[:5])  # warm-up
            result = {}
            small_seconds = latencies(server.url, headers, small)
            large_seconds = latencies(server.url, headers, [examples / "obama-1080p.jpg"] * 30)
            for name, values in (("250px", small_seconds), ("1080p", large_seconds)):
                result[f"{name} p50 ms"] = 1000 * statistics.median(values)
                result[f"{name} p99 ms"] = 1000 * percentile(values, 0.99)
            for clients in CLIENTS:
                result[f"{clients} clients /s"] = throughput(server.url, headers, small, clients)
            result["peak RSS MB"] = server.peak_rss_mb()
        finally:
            server.stop()
    print(f"{label}: " + ", ".join(f"{k} {v:.1f}" for k, v in result.items()), flush=True)
    return result


def worktree(revision: str, into: Path) -> Path:
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        ["git", "-C", str(root), "worktree", "add", "--detach", str(into), revision],
        check=True,
        capture_output=True,
    )
    return into


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", default=None, help="a git revision to compare against")
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--searches", type=int, default=100)
    parser.add_argument("--data", type=Path, default=None)
    args = parser.parse_args()
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.before:
            tree = worktree(args.before, Path(tmp) / "before")
            try:
                env = {"PYTHONPATH": str(tree), "FACELEDGER_CACHE_DIR": str(Path(tmp) / "cache")}
                results[f"before ({args.before})"] = measure("before", env, args)
            finally:
                root = Path(__file__).resolve().parents[1]
                subprocess.run(
                    ["git", "-C", str(root), "worktree", "remove", "--force", str(tree)],
                    check=False,
                )
        results["after (this tree)"] = measure("after", {"PYTHONPATH": os.getcwd()}, args)
    keys = list(next(iter(results.values())))
    print(f"\n{'':24}" + "".join(f"{k:>16}" for k in keys))
    for label, values in results.items():
        print(f"{label:24}" + "".join(f"{values[k]:16.1f}" for k in keys))
    if len(results) == 2:
        before, after = results.values()
        ratios = [
            before[k] / after[k] if "ms" in k or "MB" in k else after[k] / before[k] for k in keys
        ]
        print(f"{'improvement (x)':24}" + "".join(f"{r:16.2f}" for r in ratios))


if __name__ == "__main__":
    main()
