"""Live watch against a real RTSP stream: ffmpeg pushes a clip over loopback to the watch
(RTSP listen mode), twice, so the watch must reconnect. Alerts arrive as server-sent events and
as a signed webhook, each opening a review task; shipped policies refuse, on the ledger."""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import subprocess
import threading
import time

import pytest

from tests.api.conftest import Api, open_api
from tests.conftest import DATA, require
from tests.rekognition.conftest import free_port
from tests.video.test_video_jobs import FACENET, frame_jpeg
from tests.webhooks import Collector

LIVE_POLICY = {
    "name": "live-test",
    "description": "a live watch under a warrant, each alert reviewed",
    "operations": ["index_faces", "watch_stream"],
    "min_threshold": 80,
    "require_legal_basis": True,
    "legal_bases": ["warrant"],
    "reviewers_required": 1,
}


def push(url: str, clip) -> subprocess.Popen:
    return subprocess.Popen(
        [
            "ffmpeg",
            "-loglevel",
            "error",
            "-re",
            "-i",
            str(clip),
            "-c:v",
            "copy",
            "-an",
            "-f",
            "rtsp",
            "-rtsp_transport",
            "tcp",
            url,
        ],
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def live(tmp_path, shared_engine):
    if shutil.which("ffmpeg") is None:
        pytest.skip("ffmpeg is not installed (apt-get install ffmpeg): no RTSP stream to watch")
    clip = require(DATA / "videos" / FACENET)
    services, client = open_api(tmp_path, shared_engine)
    with client:
        api = Api(client, tmp_path)
        assert client.post("/v1/policies", json=LIVE_POLICY, headers=api.admin).status_code == 201
        client.post("/v1/collections", json={"collection_id": "cast"}, headers=api.admin)
        api.live = api.key("operator", policy="live-test")
        indexed = client.post(
            "/v1/collections/cast/faces",
            files={"image": ("f.jpg", frame_jpeg(FACENET, 1000))},
            data={"external_image_id": "frame-1s", "max_faces": "10", "legal_basis": "warrant"},
            headers=api.live,
        )
        assert indexed.status_code == 200, indexed.text
        yield api, clip
    services.close()


def test_watch_alerts_over_sse_and_webhook_and_reconnects(live) -> None:
    api, clip = live
    hooks = Collector()
    url = f"rtsp://127.0.0.1:{free_port()}/live"
    started = api.client.post(
        "/v1/watches",
        json={
            "collection_id": "cast",
            "source": url,
            "listen": True,
            "sample_fps": 2,
            "legal_basis": "warrant",
            "case": "W-1",
            "purpose": "test",
            "webhook": {"url": hooks.url, "secret": "watch-secret"},
        },
        headers=api.live,
    )
    assert started.status_code == 201, started.text
    watch_id = started.json()["watch_id"]
    received: list[dict] = []

    def listen() -> None:
        with api.client.stream("GET", f"/v1/watches/{watch_id}/alerts", headers=api.live) as sse:
            for line in sse.iter_lines():
                if line.startswith("data: "):
                    received.append(json.loads(line[6:]))

    reader = threading.Thread(target=listen, daemon=True)
    reader.start()
    for _round in range(2):  # the camera pushes, stops, pushes again
        time.sleep(1.0)
        pusher = push(url, clip)
        pusher.wait(60)
        deadline = time.monotonic() + 30
        status = api.client.get(f"/v1/watches/{watch_id}", headers=api.live).json()
        while status["state"] == "running" and time.monotonic() < deadline:
            time.sleep(0.2)
            status = api.client.get(f"/v1/watches/{watch_id}", headers=api.live).json()
    assert status["reconnects"] >= 1 and status["frames"] >= 10
    stopped = api.client.delete(f"/v1/watches/{watch_id}", headers=api.live).json()
    assert stopped["watch_id"] == watch_id
    reader.join(30)
    alerts = [r for r in received if "candidates" in r]
    assert alerts and received[-1]["state"] in ("stopped", "ended")
    assert all(a["review_task_id"] for a in alerts)
    assert all(c["status"] == "unconfirmed" for a in alerts for c in a["candidates"])
    assert {c["external_image_id"] for a in alerts for c in a["candidates"]} == {"frame-1s"}
    deadline = time.monotonic() + 10
    while len(hooks.received) < len(alerts) and time.monotonic() < deadline:
        time.sleep(0.1)
    body, signature = hooks.received[0]
    assert signature == "sha256=" + hmac.new(b"watch-secret", body, hashlib.sha256).hexdigest()
    tasks = api.client.get("/v1/reviews", headers=api.live).json()["tasks"]
    assert {a["review_task_id"] for a in alerts} <= {t["task_id"] for t in tasks}
    ledger = api.client.get("/v1/ledger/events", params={"limit": 10000}, headers=api.auditor)
    operations = [e["event"]["operation"] for e in ledger.json()["events"]]
    assert {"WatchStarted", "WatchAlert", "WatchStopped"} <= set(operations)


def test_shipped_policies_refuse_a_live_watch_on_the_ledger(live) -> None:
    api, _ = live
    refused = api.client.post(
        "/v1/watches",
        json={"collection_id": "cast", "source": "rtsp://127.0.0.1:1/x"},
        headers=api.operator,  # test-open: everything but watch_stream
    )
    assert refused.status_code == 403
    assert "watch_stream" in refused.json()["error"]["message"]
    api.client.app.state.services.refusals.flush(everything=True)
    events = api.client.get(
        "/v1/ledger/events", params={"limit": 10000}, headers=api.auditor
    ).json()["events"]
    assert any(
        e["event"]["outcome"] == "refused" and e["event"]["operation"] == "watch_stream"
        for e in events
    )
    bad = dict(LIVE_POLICY, name="no-review", reviewers_required=0)
    rejected = api.client.post("/v1/policies", json=bad, headers=api.admin)
    assert rejected.status_code == 400 and "human review" in rejected.json()["error"]["message"]


def test_cli_watch_plays_a_file_in_real_time(tmp_path) -> None:
    from tests.security.server_process import cli

    clip = require(DATA / "videos" / FACENET)
    data_dir = tmp_path / "data"
    policy = tmp_path / "live.json"
    policy.write_text(json.dumps(LIVE_POLICY))
    cli(data_dir, "policies", "set", str(policy))
    cli(data_dir, "collections", "create", "cast")
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "frame-1s.jpg").write_bytes(frame_jpeg(FACENET, 1000))
    cli(
        data_dir,
        "index",
        "cast",
        str(photos),
        "--policy",
        "live-test",
        "--legal-basis",
        "warrant",
        "--max-faces",
        "10",
    )
    started = time.monotonic()
    watched = cli(
        data_dir,
        "watch",
        "cast",
        str(clip),
        "--policy",
        "live-test",
        "--legal-basis",
        "warrant",
        "--json",
        check=False,
    )
    assert watched.returncode == 0, watched.stderr
    assert time.monotonic() - started >= 4.0  # a 4.2 s clip, played in real time
    alerts = [json.loads(line) for line in watched.stdout.splitlines()]
    assert alerts and all(a["review_task_id"] for a in alerts)
    assert "ended" in watched.stderr
