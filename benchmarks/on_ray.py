"""Work on Ray against the same work on local threads, side by side in one run, on a local
Ray cluster of 1 and 2 CPUs (`ray start --head`):

- batch ingest: faces indexed per second by `faceledger index` on one archive (local: 1 and 2
  threads). The archive: the first photo of LFW people, spread over the alphabet (250x250
  JPEGs, about one face each), indexed into a fresh collection under the default policy with
  consent on record.
- a video job: `faceledger video detect` at 5 sampled frames a second (local: the job's own
  pipeline), its real-time factor (seconds taken / seconds of video). The clip: the facenet
  1080p clip (8 people, 4.2 s) played ``--repeats`` times over, re-encoded (H.264) here, so the
  job is long enough for Ray's start not to be the whole figure.

    python benchmarks/on_ray.py [--images 400] [--repeats 6]

Each run is the whole CLI command in a data directory of its own, as a user would run it
(start, planning, analysis, the writes and ledger events), so Ray's start-up and worker
warm-up are in its figures.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from faceledger.evaluation import lfw
from faceledger.imaging.video import frames
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


def long_clip(folder: Path, repeats: int) -> Path:
    import av

    source = lfw.resolve_lfw_dir().parent / "videos" / "facenet-pytorch-video.mp4"
    pictures = [f.rgb for f in frames(source, None)]
    target = folder / f"facenet-x{repeats}.mp4"
    with av.open(str(target), "w") as container:
        stream = container.add_stream("libx264", rate=25)
        stream.height, stream.width = pictures[0].shape[:2]
        stream.pix_fmt, stream.options = "yuv420p", {"crf": "18"}
        for picture in pictures * repeats:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(picture, format="rgb24")))
        container.mux(stream.encode())
    return target


def video_job(clip: Path, folder: Path, *extra: str) -> tuple[float, dict]:
    env = {**os.environ, "FACELEDGER_DATA_DIR": str(folder / f"data-{time.monotonic_ns()}")}
    started = time.perf_counter()
    done = subprocess.run(
        [str(BIN / "faceledger"), "video", "detect", str(clip), "--format", "json", *extra],
        env=env,
        capture_output=True,
        text=True,
    )
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"video detect failed: {done.stderr[-2000:]}")
    summary = json.loads(done.stdout)
    return elapsed, {
        "seconds": summary["metadata"]["duration_ms"] / 1000,
        "frames": len({r["timestamp_ms"] for r in summary["results"]}),
        "persons": len(summary["persons"]),
        "faces": len(summary["results"]),
    }


def ray_cluster(cpus: int, folder: Path) -> tuple[str, dict[str, str]]:
    # A token of the run's own unless one is set: `ray start` in token mode needs one.
    os.environ.setdefault("RAY_AUTH_TOKEN", secrets.token_hex(32))
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
    parser.add_argument("--repeats", type=int, default=6)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        photos = archive(folder, args.images)
        clip = long_clip(folder, args.repeats)
        rows, videos = [], []
        for threads in (1, 2):
            rows.append(
                (f"local, {threads} thread(s)", *index(photos, folder, "--threads", str(threads)))
            )
        videos.append(("local (the job's pipeline, 2 cores)", *video_job(clip, folder)))
        for cpus in (1, 2):
            address, env = ray_cluster(cpus, folder)
            os.environ["RAY_AUTH_MODE"] = env["RAY_AUTH_MODE"]
            try:
                on_ray = ("--ray-address", address)
                label = f"Ray, {cpus} worker CPU(s)"
                rows.append((label, *index(photos, folder, *on_ray)))
                videos.append((label, *video_job(clip, folder, *on_ray)))
            finally:
                subprocess.run([str(BIN / "ray"), "stop", "--force"], env=env, capture_output=True)
    print(f"\n{args.images} LFW photos, 2 cores\n")
    print("| analysed on | images | faces indexed | seconds | faces/s |\n|---|---|---|---|---|")
    for label, seconds, summary in rows:
        faces = summary["indexed_faces"]
        print(
            f"| {label} | {summary['images']} | {faces} | {seconds:.1f} | {faces / seconds:.1f} |"
        )
    print(f"\n`video detect` {clip.name}, 5 frames a second, segments of 10 s on Ray\n")
    print(
        "| analysed on | video s | frames with faces | faces | persons | seconds "
        "| real-time factor |"
    )
    print("|---|---|---|---|---|---|---|")
    for label, seconds, job in videos:
        print(
            f"| {label} | {job['seconds']:.1f} | {job['frames']} | {job['faces']} | "
            f"{job['persons']} | {seconds:.1f} | {seconds / job['seconds']:.2f} |"
        )


if __name__ == "__main__":
    main()
