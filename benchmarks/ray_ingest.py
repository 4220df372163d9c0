"""Batch ingest: faces indexed per second by `faceledger index` on one archive, the images
analysed on 1 and 2 local threads, and as Ray tasks on a local Ray cluster of 1 and 2 CPUs
(`ray start --head`), side by side in one run.

    python benchmarks/ray_ingest.py [--images 400]

The archive: the first photo of LFW people, spread over the alphabet (250x250 JPEGs, about one
face each). Each run indexes it into a fresh collection of its own data directory under the
default policy with consent on record, through the CLI, as a user would; the time is the
whole command (start, planning, analysis, the writes and ledger events), so Ray's start-up and
worker warm-up are in its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceledger.evaluation import lfw
from tests.rekognition.conftest import free_port

BIN = Path(sys.executable).parent


def archive(folder: Path, count: int) -> Path:
    root = lfw.resolve_lfw_dir() / "images"
    people = sorted(p for p in root.iterdir() if (p / f"{p.name}_0001.jpg").exists())
    step = max(1, len(people) // count)
    target = folder / "archive"
    target.mkdir()
    for person in people[::step][:count]:
        shutil.copy(person / f"{person.name}_0001.jpg", target)
    return target


def index(photos: Path, folder: Path, *extra: str) -> tuple[float, dict]:
    data_dir = folder / f"data-{time.monotonic_ns()}"
    env = {**os.environ, "FACELEDGER_DATA_DIR": str(data_dir)}
    run = [str(BIN / "faceledger")]
    subprocess.run([*run, "collections", "create", "c"], env=env, check=True, capture_output=True)
    consent = ["--by", "bench", "--document", "none (LFW)", "--collection"]
    subprocess.run([*run, "consent", "record", "c", *consent], env=env, check=True)
    started = time.perf_counter()
    done = subprocess.run(
        [*run, "index", "c", str(photos), "--json", *extra],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    return elapsed, json.loads(done.stdout)


def ray_cluster(cpus: int, folder: Path) -> tuple[str, dict[str, str]]:
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_USAGE_STATS_ENABLED": "0"}
    port = free_port()
    subprocess.run(
        [
            str(BIN / "ray"),
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={port}",
            f"--num-cpus={cpus}",
            "--include-dashboard=false",
            "--disable-usage-stats",
            f"--temp-dir={tempfile.mkdtemp(prefix='ray-')}",
        ],
        env=env,
        check=True,
        capture_output=True,
    )
    return f"127.0.0.1:{port}", env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        photos = archive(folder, args.images)
        rows = []
        for threads in (1, 2):
            rows.append(
                (f"local, {threads} thread(s)", *index(photos, folder, "--threads", str(threads)))
            )
        for cpus in (1, 2):
            address, env = ray_cluster(cpus, folder)
            os.environ["RAY_AUTH_MODE"] = env["RAY_AUTH_MODE"]
            try:
                rows.append(
                    (f"Ray, {cpus} worker CPU(s)", *index(photos, folder, "--ray-address", address))
                )
            finally:
                subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True)
    print(f"\n{args.images} LFW photos, 2 cores\n")
    print("| analysed on | images | faces indexed | seconds | faces/s |\n|---|---|---|---|---|")
    for label, seconds, summary in rows:
        faces = summary["indexed_faces"]
        print(
            f"| {label} | {summary['images']} | {faces} | {seconds:.1f} | {faces / seconds:.1f} |"
        )


if __name__ == "__main__":
    main()
