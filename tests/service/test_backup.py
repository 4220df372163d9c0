"""`faceledger backup` while a real server writes, `faceledger restore`, and backups that were
tampered with: refused on their checksums, or caught by the ledger's verification."""

from __future__ import annotations

import hashlib
import json
import shutil
import sqlite3
import stat
import threading

import httpx
import pytest

from tests.api.conftest import lfw_image, lfw_people
from tests.security.server_process import ServerProcess, cli, list_faces, post_photo, prepare


@pytest.fixture(autouse=True)
def one_database(database, request):
    """Backup and restore copy a SQLite file; on PostgreSQL they refuse, pointing to pg_dump."""
    about_postgresql = request.node.name.startswith("test_backup_of_postgresql")
    if database == "postgresql" and not about_postgresql:
        pytest.skip("backup and restore copy SQLite's file; PostgreSQL is backed up by pg_dump")
    if database == "sqlite" and about_postgresql:
        pytest.skip("a test of the refusal on PostgreSQL")


def test_backup_of_postgresql_points_to_pg_dump(tmp_path) -> None:
    refused = cli(tmp_path / "data", "backup", str(tmp_path / "copy"), check=False)
    assert refused.returncode != 0 and "pg_dump" in refused.stderr
    assert not (tmp_path / "copy").exists()


def test_online_backup_while_the_server_indexes_then_restore(tmp_path) -> None:
    data_dir, copy, restored = tmp_path / "data", tmp_path / "backup", tmp_path / "restored"
    token = prepare(data_dir, "people")
    headers = {"Authorization": f"Bearer {token}"}
    photos = [(f"{p}-{k}", lfw_image(p, k)) for p in lfw_people(20) for k in (1, 2)]
    acknowledged: dict[str, str] = {}
    server = ServerProcess(data_dir).start()
    url = f"{server.url}/v1/collections/people/faces"

    def index_all() -> None:
        with httpx.Client(timeout=60) as client:
            for name, path in photos:
                answer = post_photo(
                    client, url, path, headers, external_image_id=name, max_faces="1"
                )
                assert answer.status_code == 200, answer.text
                for face in answer.json()["indexed"]:
                    acknowledged[face["face"]["face_id"]] = name

    writer = threading.Thread(target=index_all)
    try:
        writer.start()
        while len(acknowledged) < 8:
            writer.join(0.05)
            assert writer.is_alive() or len(acknowledged) >= 8
        before = dict(acknowledged)
        made = cli(data_dir, "backup", str(copy))  # while the server goes on indexing
        writer.join(300)
        assert len(acknowledged) > len(before)
        everything = list_faces(server.url, headers, "people")
    finally:
        server.stop()
    assert "backup in" in made.stdout
    assert stat.S_IMODE(copy.stat().st_mode) == 0o700
    assert all(stat.S_IMODE(p.stat().st_mode) == 0o600 for p in copy.rglob("*") if p.is_file())

    done = cli(restored, "restore", str(copy))
    assert "ledger OK" in done.stdout, done.stdout + done.stderr
    server = ServerProcess(restored).start()
    try:
        faces = list_faces(server.url, headers, "people")
        # Everything acknowledged before the backup began is in it; nothing it holds is
        # invented; and the restored index agrees with the restored database.
        assert set(before) <= set(faces) <= set(everything)
        face_id, name = next(iter(before.items()))
        person, number = name.rsplit("-", 1)
        with httpx.Client(timeout=60) as client:
            found = client.post(
                f"{server.url}/v1/collections/people/search",
                files={"image": lfw_image(person, int(number)).read_bytes()},
                data={"threshold": "99"},
                headers=headers,
            ).json()
        assert face_id in {m["face"]["face_id"] for m in found["matches"]}
    finally:
        server.stop()
    verified = json.loads(cli(restored, "ledger", "verify", "--json").stdout)
    assert verified["ok"] and verified["heads_checked"] >= 1
    events = [
        json.loads(line)["event"] for line in cli(restored, "ledger", "export").stdout.splitlines()
    ]
    operations = [e["operation"] for e in events]
    assert "Backup" in operations and "RestoreFromBackup" in operations


def small_backup(tmp_path):
    data_dir, copy = tmp_path / "data", tmp_path / "backup"
    for name in ("a", "b", "c"):
        cli(data_dir, "collections", "create", name)
        cli(data_dir, "keys", "create", "--role", "auditor", "--name", name)
    cli(data_dir, "backup", str(copy))
    return copy


def reseal(copy) -> None:
    """What a careful attacker does after editing the database: fix the manifest's checksum."""
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    manifest["files"]["faceledger.db"] = hashlib.sha256(
        (copy / "faceledger.db").read_bytes()
    ).hexdigest()
    (copy / "MANIFEST.json").write_text(json.dumps(manifest))


def test_a_damaged_backup_is_refused_before_anything_is_written(tmp_path) -> None:
    copy = small_backup(tmp_path)
    database = bytearray((copy / "faceledger.db").read_bytes())
    database[len(database) // 2] ^= 0xFF
    (copy / "faceledger.db").write_bytes(bytes(database))
    target = tmp_path / "restored"
    refused = cli(target, "restore", str(copy), check=False)
    assert refused.returncode == 1 and "does not match its checksum" in refused.stderr
    assert not (target / "faceledger.db").exists()
    missing = cli(target, "restore", str(tmp_path / "nowhere"), check=False)
    assert missing.returncode == 4 and "not a faceledger backup" in missing.stderr


def test_a_restored_ledger_that_was_cut_or_edited_is_caught(tmp_path) -> None:
    copy = small_backup(tmp_path)
    heads = [
        json.loads(line)
        for line in (copy / "ledger" / "heads.jsonl").read_text().splitlines()
        if line
    ]
    newest_anchored = max(h["seq"] for h in heads)

    cut = tmp_path / "cut"
    shutil.copytree(copy, cut)
    with sqlite3.connect(cut / "faceledger.db") as db:
        db.execute("DELETE FROM ledger_events WHERE seq >= ?", (newest_anchored,))
        db.execute("DELETE FROM ledger_signatures WHERE seq >= ?", (newest_anchored,))
    reseal(cut)
    caught = cli(tmp_path / "from-cut", "restore", str(cut), check=False)
    assert caught.returncode == 1 and "BROKEN" in caught.stderr, caught.stdout + caught.stderr

    edited = tmp_path / "edited"
    shutil.copytree(copy, edited)
    with sqlite3.connect(edited / "faceledger.db") as db:
        body = db.execute("SELECT body FROM ledger_events WHERE seq = 2").fetchone()[0]
        db.execute(
            "UPDATE ledger_events SET body = ? WHERE seq = 2",
            (body.replace('"local"', '"admin"', 1),),
        )
    reseal(edited)
    caught = cli(tmp_path / "from-edited", "restore", str(edited), check=False)
    assert caught.returncode == 1 and "BROKEN at event 2" in caught.stderr, caught.stderr


def test_restore_never_overwrites_silently(tmp_path) -> None:
    copy, target = small_backup(tmp_path), tmp_path / "target"
    cli(target, "restore", str(copy))
    again = cli(target, "restore", str(copy), check=False)
    assert again.returncode == 1 and "pass --force" in again.stderr
    forced = cli(target, "restore", str(copy), "--force")
    assert "ledger OK" in forced.stdout
    (aside,) = target.glob("replaced-*")
    assert (aside / "faceledger.db").exists() and (aside / "keys" / "secrets.key").exists()


def test_a_manifest_cannot_reach_outside_its_backup(tmp_path) -> None:
    """A crafted backup whose manifest names ../ paths (restore would copy them into the data
    directory) is refused before anything is read or written."""
    copy = small_backup(tmp_path)
    secret = tmp_path / "outside.txt"
    secret.write_text("not part of any backup")
    manifest = json.loads((copy / "MANIFEST.json").read_text())
    manifest["files"]["../outside.txt"] = hashlib.sha256(secret.read_bytes()).hexdigest()
    (copy / "MANIFEST.json").write_text(json.dumps(manifest))
    target = tmp_path / "target"
    refused = cli(target, "restore", str(copy), check=False)
    assert refused.returncode == 1 and "outside the backup" in refused.stderr
    assert not target.exists() or not any(target.iterdir())
    taken = cli(tmp_path / "data", "backup", str(copy), check=False)  # not into a used folder
    assert taken.returncode == 3 and "not an empty folder" in taken.stderr
