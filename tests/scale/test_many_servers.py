"""Several server processes on one PostgreSQL database behave as one server: a face indexed
through any of them is found by the next search on any other, nothing acknowledged is lost,
the ledger stays one verified chain, and a rate limit holds across all of them."""

from __future__ import annotations

import itertools
import json
import threading

import httpx

from tests.api.conftest import lfw_image, lfw_people
from tests.security.server_process import ServerProcess, cli, list_faces, post_photo, prepare

PEOPLE = 24


def search(client: httpx.Client, server: ServerProcess, photo, headers) -> list[str]:
    answer = post_photo(
        client,
        f"{server.url}/v1/collections/people/search",
        photo,
        headers,
        threshold="0",
        max_faces="50",
    )
    assert answer.status_code == 200, answer.text
    return [m["face"]["face_id"] for m in answer.json()["matches"]]


def test_three_servers_on_one_database(postgresql_server, tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("FACELEDGER_DATABASE_URL", postgresql_server.new_database())
    # A refused client has 6 refusals before every server answers 429 (a refill of one per
    # 100 s does not matter here).
    monkeypatch.setenv("FACELEDGER_REFUSAL_BURST", "6")
    monkeypatch.setenv("FACELEDGER_REFUSAL_RATE", "0.01")
    data_dir = tmp_path / "data"
    token = prepare(data_dir, "people")
    headers = {"Authorization": f"Bearer {token}"}
    auditor = json.loads(
        cli(data_dir, "keys", "create", "--role", "auditor", "--name", "a", "--json").stdout
    )["token"]
    photos = [(name, lfw_image(name, 1)) for name in lfw_people(PEOPLE)]
    servers = [ServerProcess(data_dir) for _ in range(2)]
    servers.append(ServerProcess(data_dir, "--workers", "2"))  # and one with two workers
    for server in servers:
        server.start(timeout=180)
    acknowledged: dict[str, str] = {}
    errors: list[str] = []
    indexing = threading.Event()

    def index(number: int) -> None:
        """Index a third of the photos on one server; each new face must be found at once
        by a search on the next server."""
        here, there = servers[number], servers[(number + 1) % 3]
        with httpx.Client(timeout=120) as client:
            for name, photo in photos[number::3]:
                answer = post_photo(
                    client,
                    f"{here.url}/v1/collections/people/faces",
                    photo,
                    headers,
                    external_image_id=name,
                    max_faces="1",
                )
                if answer.status_code != 200:
                    errors.append(answer.text)
                    return
                face_id = answer.json()["indexed"][0]["face"]["face_id"]
                acknowledged[face_id] = name
                if face_id not in search(client, there, photo, headers):
                    errors.append(
                        f"{name}'s face {face_id} from {here.url} not found on {there.url}"
                    )

    def keep_searching(server: ServerProcess) -> None:
        with httpx.Client(timeout=120) as client:
            for _, photo in itertools.cycle(photos):
                if not indexing.is_set():
                    return
                search(client, server, photo, headers)

    try:
        indexing.set()
        workers = [threading.Thread(target=index, args=(n,)) for n in range(3)]
        workers += [threading.Thread(target=keep_searching, args=(s,)) for s in servers]
        for worker in workers[:3]:
            worker.start()
        for worker in workers[3:]:
            worker.start()
        for worker in workers[:3]:
            worker.join()
        indexing.clear()
        for worker in workers[3:]:
            worker.join()
        assert not errors, errors
        assert len(acknowledged) == PEOPLE

        # Nothing lost, every face found by every server's index.
        with httpx.Client(timeout=120) as client:
            for server in servers:
                assert list_faces(server.url, headers, "people") == acknowledged
                for face_id, name in acknowledged.items():
                    assert face_id in search(client, server, lfw_image(name, 1), headers)

        # One ledger: every face's IndexFaces event once, whichever server wrote it.
        auditing = {"Authorization": f"Bearer {auditor}"}
        events = httpx.get(
            f"{servers[1].url}/v1/ledger/events",
            params={"operation": "IndexFaces", "limit": 1000},
            headers=auditing,
            timeout=60,
        ).json()["events"]
        indexed = [f for e in events for f in e["event"]["results"]["indexed_face_ids"]]
        assert sorted(indexed) == sorted(acknowledged)

        # A refusal budget shared by all: 6 refusals in all, not 6 on each server.
        statuses = [
            httpx.get(
                f"{server.url}/v1/collections",
                headers={"Authorization": "Bearer flk_0000000000000000.wrong"},
                timeout=30,
            ).status_code
            for server in servers * 4
        ]
        assert statuses == [401] * 6 + [429] * 6, statuses
    finally:
        for server in servers:
            server.stop()
    verified = cli(data_dir, "ledger", "verify", "--json", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert json.loads(verified.stdout)["ok"]


def test_several_workers_need_postgresql(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("FACELEDGER_DATABASE_URL", raising=False)
    refused = cli(tmp_path / "data", "serve", "--workers", "2", check=False)
    assert refused.returncode == 2 and "postgresql://" in refused.stderr


def test_servers_starting_together_migrate_once_and_make_one_admin_key(
    postgresql_server, shared_engine, tmp_path
) -> None:
    """Three servers' starts on a new database at the same moment: the schema is made once
    (the others wait, then find it current) and exactly one bootstrap admin key exists."""
    from concurrent.futures import ThreadPoolExecutor

    from faceledger.config import Settings
    from faceledger.service.context import Services
    from faceledger.service.keys import ensure_admin_key
    from faceledger.store.schema import ApiKeyRow

    settings = Settings(data_dir=tmp_path / "data", database_url=postgresql_server.new_database())
    start = threading.Barrier(3)

    def start_server(_: int) -> tuple[Services, object]:
        start.wait()
        services = Services.open(settings, engine=shared_engine)
        return services, ensure_admin_key(services)

    pool = ThreadPoolExecutor(3)
    try:  # unserialised migrations deadlock: a time limit turns that into a failure
        started = [f.result(timeout=120) for f in [pool.submit(start_server, n) for n in range(3)]]
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    try:
        written = [path for _, path in started if path is not None]
        assert len(written) == 1  # one server wrote the key file; the others found a key
        with started[0][0].db.read() as session:
            assert session.query(ApiKeyRow).count() == 1
    finally:
        for services, _ in started:
            services.close()
