"""Load: concurrent indexers and searchers against a real server on loopback, on real LFW faces.

    python benchmarks/load.py [--indexers 2] [--searchers 2] [--images 300] [--searches 300]

Starts ``faceledger serve`` in its own process on a fresh data directory (127.0.0.1 only), then
runs the indexers and searchers at once for a fixed count: indexers enrol the first photo of each
person, searchers search with the second photo of people already enrolled. Reports throughput,
p50/p99 latency, errors by status, the server's peak memory, and checks that nothing was lost:
every acknowledged face is listed, and found again by its own photo. Bounded in count and time;
it stops by itself. Results also go to out/load.json.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceledger.config import get_settings
from tests.security.server_process import ServerProcess, list_faces, post_photo, prepare

COLLECTION = "load"


class Recorder:
    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {"index": [], "search": []}
        self.statuses: dict[str, Counter[int]] = {"index": Counter(), "search": Counter()}
        self.acknowledged: dict[str, str] = {}
        self.enrolled: list[str] = []  # people whose face is stored, for the searchers
        self.lock = threading.Lock()

    def add(self, kind: str, seconds: float, status: int) -> None:
        with self.lock:
            self.latencies[kind].append(seconds)
            self.statuses[kind][status] += 1


def people_with_two_photos(lfw: Path, count: int) -> list[str]:
    names = sorted(
        p.name for p in (lfw / "images").iterdir() if (p / f"{p.name}_0002.jpg").exists()
    )
    random.Random(5).shuffle(names)
    return names[:count]


def photo(lfw: Path, name: str, number: int) -> Path:
    return lfw / "images" / name / f"{name}_{number:04d}.jpg"


def indexer(url, headers, lfw, names, recorder: Recorder) -> None:
    with httpx.Client(timeout=120) as client:
        for name in names:
            started = time.perf_counter()
            response = post_photo(
                client,
                f"{url}/v1/collections/{COLLECTION}/faces",
                photo(lfw, name, 1),
                headers,
                external_image_id=name,
            )
            recorder.add("index", time.perf_counter() - started, response.status_code)
            if response.status_code == 200:
                with recorder.lock:
                    for face in response.json()["indexed"]:
                        recorder.acknowledged[face["face"]["face_id"]] = name
                    recorder.enrolled.append(name)


def searcher(url, headers, lfw, count: int, recorder: Recorder, seed: int) -> None:
    rng = random.Random(seed)
    with httpx.Client(timeout=120) as client:
        done = 0
        while done < count:
            with recorder.lock:
                pool = list(recorder.enrolled)
            if not pool:
                time.sleep(0.05)
                continue
            name = rng.choice(pool)
            started = time.perf_counter()
            response = search(client, url, headers, photo(lfw, name, 2), 80, 10)
            recorder.add("search", time.perf_counter() - started, response.status_code)
            done += 1


def search(
    client: httpx.Client, url: str, headers: dict, path: Path, threshold: int, most: int
) -> httpx.Response:
    return post_photo(
        client,
        f"{url}/v1/collections/{COLLECTION}/search",
        path,
        headers,
        threshold=str(threshold),
        max_faces=str(most),
    )


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def check_nothing_lost(url: str, headers: dict, lfw: Path, recorder: Recorder) -> dict:
    listed = list_faces(url, headers, COLLECTION)
    with httpx.Client(timeout=120) as client:
        missing = sorted(set(recorder.acknowledged) - set(listed))
        not_found = 0
        # A search uses the photo's largest face: each photo must find one of its own faces.
        by_photo: dict[str, set[str]] = {}
        for face_id, name in recorder.acknowledged.items():
            by_photo.setdefault(name, set()).add(face_id)
        sample = sorted(by_photo.items())[:: max(1, len(by_photo) // 50)]
        for name, face_ids in sample:
            found = search(client, url, headers, photo(lfw, name, 1), 99, 4096).json()
            not_found += not face_ids & {m["face"]["face_id"] for m in found["matches"]}
    return {
        "acknowledged": len(recorder.acknowledged),
        "listed": len(listed),
        "missing": len(missing),
        "photos_searched_again": len(sample),
        "not_found_by_own_photo": not_found,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--indexers", type=int, default=2)
    parser.add_argument("--searchers", type=int, default=2)
    parser.add_argument("--images", type=int, default=300, help="faces to enrol in all")
    parser.add_argument("--searches", type=int, default=300, help="searches in all")
    parser.add_argument("--data", type=Path, default=get_settings().eval_data)
    parser.add_argument("--out", type=Path, default=Path("out/load.json"))
    args = parser.parse_args()
    lfw = args.data / "lfw"
    if not (lfw / "images").exists():
        sys.exit(f"LFW not found at {lfw} (set --data or FACELEDGER_EVAL_DATA)")
    with tempfile.TemporaryDirectory() as folder:
        data_dir = Path(folder) / "data"
        token = prepare(data_dir, COLLECTION)
        headers = {"Authorization": f"Bearer {token}"}
        server = ServerProcess(data_dir).start()
        try:
            names = people_with_two_photos(lfw, args.images)
            recorder = Recorder()
            threads = [
                threading.Thread(
                    target=indexer,
                    args=(server.url, headers, lfw, names[i :: args.indexers], recorder),
                )
                for i in range(args.indexers)
            ] + [
                threading.Thread(
                    target=searcher,
                    args=(server.url, headers, lfw, args.searches // args.searchers, recorder, i),
                )
                for i in range(args.searchers)
            ]
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join(3600)
            elapsed = time.perf_counter() - started
            lost = check_nothing_lost(server.url, headers, lfw, recorder)
            peak = server.peak_rss_mb()
        finally:
            server.stop()
    result = {
        "indexers": args.indexers,
        "searchers": args.searchers,
        "seconds": round(elapsed, 1),
        "server_peak_rss_mb": round(peak),
        **{
            kind: {
                "requests": len(recorder.latencies[kind]),
                "per_second": round(len(recorder.latencies[kind]) / elapsed, 2),
                "p50_ms": round(1000 * statistics.median(recorder.latencies[kind]), 1),
                "p99_ms": round(1000 * percentile(recorder.latencies[kind], 0.99), 1),
                "statuses": dict(recorder.statuses[kind]),
            }
            for kind in ("index", "search")
        },
        "nothing_lost": lost,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    if lost["missing"] or lost["not_found_by_own_photo"]:
        sys.exit("LOST: acknowledged faces missing or not found")


if __name__ == "__main__":
    main()
