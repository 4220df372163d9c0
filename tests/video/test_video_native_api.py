"""Video through the native API: upload (streamed, limited), a job with progress and paginated
results, the upload deleted once the job ends."""

from __future__ import annotations

import time

from tests.api.conftest import Api, open_api
from tests.conftest import DATA, require
from tests.video.test_video_jobs import HAMILTON


def test_upload_run_and_forget(tmp_path, shared_engine) -> None:
    clip = require(DATA / "videos" / HAMILTON)
    services, client = open_api(tmp_path, shared_engine, max_video_bytes=5_000_000)
    with client:
        api = Api(client, tmp_path)
        uploaded = client.post(
            "/v1/videos",
            params={"filename": "../../etc/x.mp4"},
            content=clip.read_bytes(),
            headers={**api.operator, "Content-Type": "application/octet-stream"},
        )
        assert uploaded.status_code == 201, uploaded.text
        video = uploaded.json()
        assert video["bucket"] == "faceledger-uploads" and "/" not in video["name"]
        assert video["metadata"]["width"] == 640
        stored = tmp_path / "uploads" / video["name"]
        assert stored.exists()
        started = client.post(
            "/v1/video/jobs",
            json={
                "kind": "detect",
                "video": {"bucket": video["bucket"], "name": video["name"]},
                "sample_fps": 2,
            },
            headers=api.operator,
        )
        assert started.status_code == 202, started.text
        job_id = started.json()["job_id"]
        seen_progress = set()
        deadline = time.monotonic() + 120
        while True:
            job = client.get(f"/v1/video/jobs/{job_id}", headers=api.operator).json()
            seen_progress.add(job["progress"]["frames_done"])
            if job["status"] != "IN_PROGRESS":
                break
            assert time.monotonic() < deadline
            time.sleep(0.1)
        assert job["status"] == "SUCCEEDED" and job["sample_fps"] == 2 and job["scan_fps"] == 5.0
        assert job["progress"]["frames_done"] == job["progress"]["frames_total"] == 19
        assert not stored.exists()  # the video is gone once the job ends
        first = client.get(
            f"/v1/video/jobs/{job_id}", params={"max_results": 5}, headers=api.operator
        ).json()
        rest = client.get(
            f"/v1/video/jobs/{job_id}",
            params={"max_results": 1000, "next_token": first["next_token"]},
            headers=api.operator,
        ).json()
        assert first["results"] + rest["results"] == job["results"]
        # Another operator cannot see this job; too large an upload is refused as it streams.
        other = api.key("operator")
        assert client.get(f"/v1/video/jobs/{job_id}", headers=other).status_code == 404
        big = client.post(
            "/v1/videos",
            content=b"\x00" * 6_000_000,
            headers={**api.operator, "Content-Type": "application/octet-stream"},
        )
        assert big.status_code == 413
        assert list((tmp_path / "uploads").iterdir()) == []  # nothing half-written is kept
        junk = client.post(
            "/v1/videos",
            content=b"not a video at all" * 100,
            headers={**api.operator, "Content-Type": "application/octet-stream"},
        )
        assert junk.status_code == 400 and junk.json()["error"]["code"] == "UNSUPPORTED_FORMAT"
    services.close()
