"""Video jobs with their pixel work on a real Ray cluster (`ray start --head` on loopback, two
worker CPUs): the video cut into 2-second segments, each decoded, detected and described by a
task, the faces followed and searched in the CLI's process. The results are the local path's,
row for row; a damaged video fails the job saying how far it got, as it does locally; every
start and end is on one verified ledger."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import DATA, require
from tests.rekognition.conftest import Server, free_port
from tests.security.server_process import cli, prepare
from tests.video.test_video_jobs import HAMILTON, frame_jpeg, video, wait

VIDEOS = DATA / "videos"


def run(data_dir: Path, *args: str, ray: str | None = None) -> subprocess.CompletedProcess:
    extra = ("--ray-address", ray) if ray else ()
    return cli(data_dir, "video", *args, "--policy", "test-open", *extra, check=False)


def without_job_ids(found: subprocess.CompletedProcess) -> dict:
    assert found.returncode == 0, found.stderr
    summary = json.loads(found.stdout)
    summary.pop("job_id")
    return summary


def test_video_jobs_on_ray_match_the_local_path(ray_cluster, tmp_path, monkeypatch) -> None:
    clip = require(VIDEOS / HAMILTON)
    monkeypatch.setenv("FACELEDGER_VIDEO_SEGMENT_SECONDS", "2")  # 9 s: five segments
    data_dir = tmp_path / "data"
    prepare(data_dir, "cast")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "cast-3s.jpg").write_bytes(frame_jpeg(HAMILTON, 3000))
    cli(data_dir, "index", "cast", str(photos), "--policy", "test-open", "--max-faces", "10")

    search = ("search", "cast", str(clip), "--format", "json")
    local, remote = (without_job_ids(run(data_dir, *search, ray=r)) for r in (None, ray_cluster))
    assert remote == local
    assert len(local["persons"]) >= 5 and len(local["results"]) >= 50
    with_candidates = [p for p in local["persons"] if p["candidates"]]
    assert with_candidates and all(
        c["external_image_id"] == "cast-3s" for p in with_candidates for c in p["candidates"]
    )
    # Every frame: the tracker asks for few descriptors; the tasks made them all and the
    # ones it did not ask for were dropped, so the tracks are the same.
    every = ("detect", str(clip), "--every-frame", "--format", "json")
    local, remote = (without_job_ids(run(data_dir, *every, ray=r)) for r in (None, ray_cluster))
    assert remote == local
    assert len(local["results"]) > 200

    ledger = cli(data_dir, "ledger", "verify", "--json", check=False)
    assert ledger.returncode == 0 and json.loads(ledger.stdout)["ok"]
    events = [
        json.loads(line)["event"] for line in cli(data_dir, "ledger", "export").stdout.splitlines()
    ]
    finished = [e for e in events if e["operation"] == "VideoJobFinished"]
    assert len(finished) == 4 and all(e["outcome"] != "failed" for e in finished)


def test_a_damaged_video_fails_on_ray_as_it_does_locally(ray_cluster, tmp_path) -> None:
    source = require(VIDEOS / "one-by-one-person-detection.mp4").read_bytes()
    damaged = tmp_path / "damaged.mp4"
    damaged.write_bytes(source[: len(source) // 10])  # its index still says 139 s
    data_dir = tmp_path / "data"
    prepare(data_dir, "cast")
    outcomes = [
        run(data_dir, "detect", str(damaged), "--format", "json", ray=r)
        for r in (None, ray_cluster)
    ]
    for outcome in outcomes:
        assert outcome.returncode == 3, outcome.stderr
        assert "FAILED" in outcome.stderr and "damaged" in outcome.stderr


def test_a_server_given_a_ray_cluster_runs_rekognition_video_jobs_there(
    ray_cluster, tmp_path
) -> None:
    buckets = tmp_path / "buckets"
    (buckets / "clips").mkdir(parents=True)
    shutil.copy(require(VIDEOS / HAMILTON), buckets / "clips" / HAMILTON)
    responses = []
    for name, ray in (("local", ""), ("ray", ray_cluster)):
        settings = {"s3_bucket_dir": buckets, "ray_address": ray, "video_segment_seconds": 2}
        with Server(tmp_path / name, **settings) as server:
            rek = server.client(server.aws_key(purpose="video on ray"))
            started = rek.start_face_detection(Video=video(HAMILTON))
            done = wait(rek, "get_face_detection", started["JobId"], MaxResults=1000)
            assert done["JobStatus"] == "SUCCEEDED", done.get("StatusMessage")
            responses.append({k: done[k] for k in ("Faces", "VideoMetadata")})
    assert responses[1] == responses[0] and len(responses[0]["Faces"]) >= 50


def test_an_address_where_no_ray_answers_fails_the_job_at_once(tmp_path) -> None:
    if importlib.util.find_spec("ray") is None:  # not imported here: see conftest's token
        pytest.skip("needs Ray: pip install -e '.[test]'")
    data_dir = tmp_path / "data"
    prepare(data_dir, "cast")
    nobody = f"127.0.0.1:{free_port()}"
    outcome = run(data_dir, "detect", str(require(VIDEOS / HAMILTON)), ray=nobody)
    assert outcome.returncode == 1
    assert f"cannot reach Ray at {nobody}" in outcome.stderr.replace("\n", "")


def test_a_task_lost_beyond_rays_retries_is_an_error_not_a_hang(ray_cluster) -> None:
    from faceledger.errors import WorkersFailed
    from faceledger.service.workers import RayWorkers

    workers = RayWorkers(ray_cluster)
    try:
        assert workers.name == "Ray (2 CPUs)"
        assert list(workers.run(divmod, iter([("a", (7, 2))]))) == [("a", (3, 1))]
        with pytest.raises(WorkersFailed, match="a Ray task failed after its retries"):
            list(workers.run(os._exit, iter([("dies", (1,))])))  # the worker process exits
    finally:
        workers.close()


def test_a_job_on_ray_can_be_cancelled_and_a_stopping_server_leaves_its_job_to_the_next(
    ray_cluster, tmp_path
) -> None:
    from faceledger.config import Settings
    from faceledger.service import video
    from faceledger.service.auth import Actor, Role
    from faceledger.service.common import Request
    from faceledger.service.context import Services
    from faceledger.store.schema import VideoJobRow

    clip = require(VIDEOS / "one-by-one-person-detection.mp4")  # 139 s: 14 segments
    local = Request(Actor("cli:test", Role.LOCAL), purpose="video test")
    services = Services.open(Settings(data_dir=tmp_path, ray_address=ray_cluster))

    def started(sample_fps: float | None) -> str:
        job_id = video.start_job(
            services, local, "detect", video.VideoSource(clip), sample_fps=sample_fps
        )
        deadline = time.monotonic() + 120
        while video.get_job(services, local, job_id).job.frames_done == 0:
            assert time.monotonic() < deadline, "no progress"
            time.sleep(0.1)
        return job_id

    try:
        cancelled = started(None)
        video.cancel_job(services, local, cancelled)
        deadline = time.monotonic() + 60
        while (job := video.get_job(services, local, cancelled).job).status == "IN_PROGRESS":
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert job.status == "FAILED" and "cancelled after" in job.status_message
        left = started(None)
    finally:
        services.close()  # the server stops with the second job under way
    services = Services.open(Settings(data_dir=tmp_path))
    try:
        with services.db.read() as session:
            row = session.get(VideoJobRow, left)
            assert row.status == "IN_PROGRESS" and row.runner is None  # free for the next start
            assert 0 < row.frames_done < 1394
    finally:
        services.close()
