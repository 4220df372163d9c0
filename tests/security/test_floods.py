"""Refusals cost the refuser, not the ledger (finding 4), and bodies are bounded before they
are read (finding 5)."""

from __future__ import annotations

import os
import socket
import threading
import time

import httpx
import psutil
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.api.conftest import Api, open_api
from tests.rekognition.conftest import Server
from tests.security.conftest import send, signed_request
from tests.security.server_process import ServerProcess

FLOOD = 2000


def ledger_size(services) -> tuple[int, int]:
    with services.db.read() as session:
        rows = session.execute(text("SELECT count(*), sum(length(body)) FROM ledger_events")).one()
    return int(rows[0]), int(rows[1] or 0)


@pytest.fixture
def fresh(tmp_path, shared_engine):
    """A server with the shipped refusal budget (2 a second, bursts of 20)."""
    services, client = open_api(tmp_path, shared_engine, refusal_burst=20)
    with client:
        yield Api(client, tmp_path), services
    services.close()


def test_a_flood_of_wrong_keys_adds_a_few_small_events(fresh) -> None:
    api, services = fresh
    events_before, bytes_before = ledger_size(services)
    huge = "c" * 60_000
    statuses = []
    started = time.monotonic()
    for i in range(FLOOD):
        response = api.client.get(
            f"/v1/collections/{huge}{i}", headers={"Authorization": f"Bearer flk_{i}.wrong"}
        )
        statuses.append(response.status_code)
    elapsed = time.monotonic() - started
    services.refusals.flush(everything=True)
    events_after, bytes_after = ledger_size(services)
    assert statuses[:20] == [401] * 20  # the burst is answered, and recorded
    # Then only what the bucket refills (2 a second) gets a key check; the rest is 429 at once.
    assert statuses.count(401) <= 20 + 2 * elapsed + 1
    assert statuses.count(401) + statuses.count(429) == FLOOD
    print(
        f"flood of {FLOOD} wrong keys: {statuses.count(401)} checked, {statuses.count(429)} "
        f"throttled; ledger +{events_after - events_before} events, "
        f"+{bytes_after - bytes_before} bytes"
    )
    assert events_after - events_before <= 12
    assert bytes_after - bytes_before <= 30_000
    # Bounded fields: the 60 kB path is cut, with the SHA-256 of the whole kept.
    with services.db.read() as session:
        longest = session.execute(text("SELECT max(length(body)) FROM ledger_events")).scalar()
    assert longest < 3_000
    # The server keeps answering: other addresses, and health from this one.
    assert api.client.get("/v1/health").status_code == 200
    other = TestClient(api.client.app, client=("127.0.0.2", 50000))
    assert other.get("/v1/collections", headers=api.admin).status_code == 200
    # While its budget is spent, the flooded address is refused before any key is checked,
    # a good one included. (The checks above took time: spend what refilled meanwhile.)
    for _ in range(20):
        wrong = {"Authorization": "Bearer flk_again.wrong"}
        if api.client.get("/v1/collections", headers=wrong).status_code == 429:
            break
    throttled = api.client.get("/v1/collections", headers=api.admin)
    assert throttled.status_code == 429 and int(throttled.headers["Retry-After"]) >= 1
    # And it is served again once its budget refills (2 a second).
    time.sleep(int(throttled.headers["Retry-After"]))
    assert api.client.get("/v1/collections", headers=api.admin).status_code == 200
    report = other.get(
        "/v1/reports/accountability",
        params={"from": "2000-01-01", "to": "2100-01-01"},
        headers=api.admin,
    ).json()
    assert report["refused"]["total"] >= FLOOD  # counted, though aggregated


def test_a_flood_of_bad_signatures_on_the_rekognition_endpoint(tmp_path) -> None:
    with Server(tmp_path, refusal_burst=20) as server:
        key_id, _ = server.aws_key()
        events_before, _ = ledger_size(server.services)
        kinds = []
        started = time.monotonic()
        for i in range(300):
            headers, body = signed_request(server.url, (key_id, f"wrong{i}"), "ListCollections", {})
            kinds.append(send(server.url, headers, body).json()["__type"])
        elapsed = time.monotonic() - started
        server.services.refusals.flush(everything=True)
        events_after, _ = ledger_size(server.services)
    assert kinds[:20] == ["AccessDeniedException"] * 20
    assert kinds.count("AccessDeniedException") <= 20 + 2 * elapsed + 1
    assert kinds.count("AccessDeniedException") + kinds.count("ThrottlingException") == 300
    assert events_after - events_before <= 8


def rss_mb(pid: int) -> float:
    return psutil.Process(pid).memory_info().rss / 2**20


def test_bodies_are_refused_before_they_are_read(tmp_path) -> None:
    with Server(tmp_path) as server:
        limit = server.settings.max_request_bytes
        # Declared too large: refused from the header, before a byte of the body is sent.
        with socket.create_connection(("127.0.0.1", server.port), timeout=30) as raw:
            raw.sendall(
                b"POST / HTTP/1.1\r\nHost: x\r\n"
                b"X-Amz-Target: RekognitionService.ListCollections\r\n"
                b"Content-Length: 314572800\r\n\r\n"
            )
            answer = b""
            while b"}" not in answer:  # the whole (small) answer, headers and body
                chunk = raw.recv(65536)
                if not chunk:
                    break
                answer += chunk
            text = answer.decode()
        assert text.startswith("HTTP/1.1 413")
        assert "ImageTooLargeException" in text
        # Chunked (no length): refused once the limit is passed while reading, on both APIs.
        start = rss_mb(os.getpid())

        def chunks():
            sent = 0
            while sent < 300 * 2**20:
                yield b"x" * 2**20
                sent += 2**20

        key = server.aws_key()
        headers, _ = signed_request(server.url, key, "ListCollections", {})
        headers.pop("Content-Length", None)
        for url, extra in (
            (server.url + "/", headers),
            (server.url + "/v1/detect", {"Authorization": "Bearer nope.nope"}),
        ):
            try:
                response = httpx.post(url, headers=extra, content=chunks(), timeout=60)
                assert response.status_code in (401, 413, 400), response.text
            except httpx.HTTPError:
                pass  # the server may close the connection mid-upload: also a refusal
        grown = rss_mb(os.getpid()) - start
        assert grown < 3 * limit / 2**20 + 100  # never the 300 MB sent
        # Unsigned requests to POST / are refused before the body is read at all.
        refused = httpx.post(
            server.url + "/",
            headers={"X-Amz-Target": "RekognitionService.ListCollections"},
            content=b"{" + b" " * (limit - 10) + b"}",
            timeout=30,
        )
        assert refused.json()["__type"] == "AccessDeniedException"
        assert threading.active_count() < 50


def wrong_key_statuses(url: str, forwarded_for: list[str]) -> list[int]:
    with httpx.Client(timeout=30) as client:
        return [
            client.get(
                f"{url}/v1/collections",
                headers={"Authorization": "Bearer flk_x.wrong", "X-Forwarded-For": address},
            ).status_code
            for address in forwarded_for
        ]


def test_a_forged_x_forwarded_for_does_not_escape_the_refusal_budget(tmp_path) -> None:
    """A real server (uvicorn would believe a local caller's header by default): with no
    trusted proxy, rotating the header changes nothing."""
    server = ServerProcess(tmp_path / "data", FACELEDGER_REFUSAL_BURST="3").start()
    try:
        statuses = wrong_key_statuses(server.url, [f"203.0.113.{i}" for i in range(8)])
    finally:
        server.stop()
    assert statuses[:3] == [401] * 3 and set(statuses[3:]) == {429}


def test_behind_a_trusted_proxy_each_client_has_its_own_budget(tmp_path) -> None:
    server = ServerProcess(
        tmp_path / "data",
        FACELEDGER_REFUSAL_BURST="3",
        FACELEDGER_TRUSTED_PROXIES="127.0.0.1,10.0.0.0/8",
    ).start()
    try:
        first = wrong_key_statuses(server.url, ["203.0.113.7"] * 5)
        # Another client behind the same proxy chain; what it wrote left of it is not believed.
        other = wrong_key_statuses(server.url, ["198.51.100.1, 203.0.113.8, 10.1.2.3"] * 2)
        # A client that writes a proxy's address is still judged by the entry the proxy added.
        spoof = wrong_key_statuses(server.url, ["10.9.9.9, 203.0.113.7"])
    finally:
        server.stop()
    assert first == [401, 401, 401, 429, 429]
    assert other == [401, 401]
    assert spoof == [429]  # 203.0.113.7 spent its budget above
