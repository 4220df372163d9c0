"""Video jobs from the CLI (progress, JSON, CSV, contact sheet), across a server restart, and
cancelled."""

from __future__ import annotations

import json
import time

from faceledger.config import Settings
from faceledger.service import video
from faceledger.service.auth import Actor, Role
from faceledger.service.common import Request
from faceledger.service.context import Services
from tests.conftest import DATA, require
from tests.rekognition.conftest import Server
from tests.security.server_process import cli, prepare
from tests.video.test_video_jobs import FACENET, frame_jpeg

LOCAL = Request(Actor("cli:test", Role.LOCAL), purpose="video test")  # photo-library


def test_cli_search_json_csv_and_contact_sheet(tmp_path) -> None:
    clip = require(DATA / "videos" / FACENET)
    data_dir = tmp_path / "data"
    prepare(data_dir, "cast")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "frame-1s.jpg").write_bytes(frame_jpeg(FACENET, 1000))
    indexed = cli(
        data_dir,
        "index",
        "cast",
        str(photos),
        "--policy",
        "test-open",
        "--max-faces",
        "10",
        "--json",
    )
    assert json.loads(indexed.stdout)["indexed_faces"] >= 2
    sheet = tmp_path / "sheet.html"
    found = cli(
        data_dir,
        "video",
        "search",
        "cast",
        str(clip),
        "--policy",
        "test-open",
        "--format",
        "json",
        "--sheet",
        str(sheet),
    )
    summary = json.loads(found.stdout)
    assert summary["metadata"]["width"] == 1920 and summary["sample_fps"] == 5.0
    with_candidates = [p for p in summary["persons"] if p["candidates"]]
    assert len(with_candidates) >= 2
    assert all(
        c["external_image_id"] == "frame-1s" for p in with_candidates for c in p["candidates"]
    )
    page = sheet.read_text()
    assert page.count("<img") == len(summary["persons"])
    assert "never identifications" in page
    rows = cli(
        data_dir, "video", "detect", str(clip), "--format", "csv", "--sample-fps", "2"
    ).stdout.splitlines()
    assert rows[0].startswith("timestamp_ms,person,left")
    # Sampled every 500 ms: each the first frame (25 a second) at or after a multiple of 500.
    assert all(int(r.split(",")[0]) % 500 < 40 for r in rows[1:])
    ledger = cli(data_dir, "ledger", "export").stdout
    assert '"operation":"StartFaceSearch"' in ledger.replace(" ", "")


def test_a_job_left_unfinished_is_started_again_by_the_next_server(tmp_path, monkeypatch) -> None:
    clip = require(DATA / "videos" / FACENET)
    data_dir = tmp_path / "data"
    services = Services.open(Settings(data_dir=data_dir))
    monkeypatch.setattr(video.JobRunner, "submit", lambda self, job_id: None)  # the server dies
    job_id = video.start_job(services, LOCAL, "detect", video.VideoSource(clip), sample_fps=2)
    services.close()
    monkeypatch.undo()
    with Server(data_dir) as server:  # its start resumes the job
        deadline = time.monotonic() + 120
        while True:
            page = video.get_job(server.services, LOCAL, job_id)
            if page.job.status != "IN_PROGRESS":
                break
            assert time.monotonic() < deadline
            time.sleep(0.3)
    assert page.job.status == "SUCCEEDED" and page.results


def test_a_job_can_be_cancelled(tmp_path) -> None:
    clip = require(DATA / "videos" / FACENET)
    services = Services.open(Settings(data_dir=tmp_path))
    try:
        job_id = video.start_job(
            services, LOCAL, "detect", video.VideoSource(clip), sample_fps=None
        )
        video.cancel_job(services, LOCAL, job_id)
        deadline = time.monotonic() + 120
        while video.get_job(services, LOCAL, job_id).job.status == "IN_PROGRESS":
            assert time.monotonic() < deadline
            time.sleep(0.2)
        job = video.get_job(services, LOCAL, job_id).job
        assert job.status == "FAILED" and "cancelled after" in job.status_message
        assert job.frames_done < 105
    finally:
        services.close()


def test_a_job_that_hits_a_bug_is_failed_not_left_in_progress(tmp_path, monkeypatch) -> None:
    clip = require(DATA / "videos" / FACENET)

    def broken(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(video, "_followed", broken)
    services = Services.open(Settings(data_dir=tmp_path))
    try:
        job_id = video.start_job(services, LOCAL, "detect", video.VideoSource(clip))
        deadline = time.monotonic() + 60
        while video.get_job(services, LOCAL, job_id).job.status == "IN_PROGRESS":
            assert time.monotonic() < deadline, "the job was left in progress"
            time.sleep(0.1)
        job = video.get_job(services, LOCAL, job_id).job
        assert job.status == "FAILED" and "internal error (RuntimeError)" in job.status_message
        assert "a bug" not in job.status_message  # details go to the log, not the client
    finally:
        services.close()


def test_erasure_and_retention_reach_video_results(tmp_path) -> None:
    import datetime as dt

    from faceledger.service import collections, erasure, faces, policy, retention
    from tests.api.conftest import TEST_POLICY

    clip = require(DATA / "videos" / FACENET)
    services = Services.open(Settings(data_dir=tmp_path))
    request = Request(Actor("cli:test", Role.LOCAL, policy="test-open"), purpose="video test")
    try:
        policy.put_policy(
            services, request, {**TEST_POLICY, "retention": {"search_records_days": 30}}
        )
        collections.create_collection(services, request, "cast")
        faces.index_faces(
            services,
            request,
            "cast",
            frame_jpeg(FACENET, 1000),
            external_image_id="subject",
            max_faces=10,
        )
        job_id = video.start_job(
            services, request, "search", video.VideoSource(clip), collection_id="cast"
        )
        while video.get_job(services, request, job_id).job.status == "IN_PROGRESS":
            time.sleep(0.3)
        before = video.get_job(services, request, job_id).results
        assert any(r["matches"] for r in before)
        receipt = erasure.erase_subject(services, request, external_image_id="subject")["receipt"]
        assert receipt["removed"]["video_search_matches"] == sum(len(r["matches"]) for r in before)
        after = video.get_job(services, request, job_id).results
        assert len(after) == len(before) and not any(r["matches"] for r in after)
        run = retention.run_retention(
            services, request, dt.datetime.now(dt.UTC) + dt.timedelta(days=31)
        )
        assert run.deleted_video_jobs == [job_id]
    finally:
        services.close()
