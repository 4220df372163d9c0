"""`faceledger db migrate-to`: a SQLite installation moved onto PostgreSQL keeps every face
(and its descriptor: the same search, the same similarity), user, key, consent record and
review task, and its ledger verifies there unchanged, then goes on growing."""

from __future__ import annotations

import json
import sqlite3

from tests.api.conftest import Api, lfw_image, lfw_people, open_api
from tests.api.test_erasure_retention import CASE, index, search
from tests.security.server_process import cli

TABLES = [
    "collections",
    "faces",
    "face_crops",
    "users",
    "api_keys",
    "policies",
    "consents",
    "review_tasks",
    "review_probe_crops",
    "ledger_events",
    "ledger_signatures",
]


def build_installation(data_dir, engine) -> dict:
    """A SQLite installation in use: faces (crops kept), a user, keys, a consent record, an
    investigative search with its review task."""
    services, client = open_api(data_dir, engine)
    with client:
        api = Api(client, data_dir)
        client.post(
            "/v1/collections",
            json={"collection_id": "club", "keep_face_crops": True},
            headers=api.admin,
        )
        people = lfw_people(6)
        faces = {name: index(api, "club", lfw_image(name, 1), name) for name in people}
        client.post("/v1/collections/club/users", json={"user_id": "u1"}, headers=api.operator)
        client.post(
            "/v1/collections/club/users/u1/faces",
            json={"face_ids": [faces[people[0]]]},
            headers=api.operator,
        )
        consent = {
            "subject_kind": "external_image",
            "subject": people[1],
            "consented_by": "the subject",
            "document_reference": "forms/1",
        }
        client.post("/v1/collections/club/consents", json=consent, headers=api.operator)
        investigator = api.key("operator", policy="investigative-lead")
        led = search(api, "club", lfw_image(people[2], 1), investigator, threshold=99, **CASE)
        assert led["governance"]["review"]["task_id"]
    services.close()
    return {"people": people, "faces": faces, "operator": api.operator}


def counts(database) -> dict[str, int]:
    with sqlite3.connect(database) as db:
        return {t: db.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}


def test_a_sqlite_installation_moves_to_postgresql(
    postgresql_server, shared_engine, tmp_path, monkeypatch
) -> None:
    monkeypatch.delenv("FACELEDGER_DATABASE_URL", raising=False)
    data_dir = tmp_path / "data"
    built = build_installation(data_dir, shared_engine)
    before = counts(data_dir / "faceledger.db")
    assert all(before.values()), before  # every kind of record is there to move
    sqlite_file = (data_dir / "faceledger.db").read_bytes()
    services, client = open_api(data_dir, shared_engine)
    with client:
        probe = lfw_image(built["people"][3], 2)
        on_sqlite = search(Api(client, data_dir), "club", probe, built["operator"], threshold=0)
    services.close()
    sqlite_file = (data_dir / "faceledger.db").read_bytes()

    target = postgresql_server.new_database()
    moved = cli(data_dir, "db", "migrate-to", target, check=False)
    assert moved.returncode == 0, moved.stdout + moved.stderr
    assert "ledger OK on the new database" in moved.stdout
    assert (data_dir / "faceledger.db").read_bytes() == sqlite_file  # the source untouched

    # Into a database that is not empty: refused, nothing written.
    again = cli(data_dir, "db", "migrate-to", target, check=False)
    assert again.returncode != 0 and "not empty" in again.stderr

    monkeypatch.setenv("FACELEDGER_DATABASE_URL", target)
    services, client = open_api(data_dir, shared_engine)
    with client:
        api = Api(client, data_dir)  # the admin key from the data directory works there
        on_postgresql = search(api, "club", probe, built["operator"], threshold=0)
        assert on_postgresql["matches"] == on_sqlite["matches"]  # same faces, same scores
        listed = client.get("/v1/collections/club/users", headers=built["operator"]).json()
        assert [u["user_id"] for u in listed["users"]] == ["u1"]
        consents = client.get("/v1/collections/club/consents", headers=api.admin).json()
        assert len(consents["consents"]) == 1
        reviews = client.get("/v1/reviews", headers=api.key("reviewer"))
        assert reviews.status_code == 200 and reviews.json()["tasks"], reviews.text
        # It goes on: new rows get ids after the copied ones, the ledger grows from its head.
        index(api, "club", lfw_image(built["people"][4], 2), "later", headers=built["operator"])
    services.close()
    verified = cli(data_dir, "ledger", "verify", "--json", check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    report = json.loads(verified.stdout)
    assert report["ok"] and report["heads_checked"] >= 1
    assert report["events"] > before["ledger_events"]  # the copied chain, grown
