from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import time
import urllib.request

import pytest
from typer.testing import CliRunner

from faceledger.cli.main import app
from tests.conftest import LFW, require

runner = CliRunner()


def run(data_dir, *args: str):
    return runner.invoke(app, [*map(str, args), "--data-dir", str(data_dir)])


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("var")


def test_collections_index_search_and_ledger(data_dir, tmp_path) -> None:
    bush = require(LFW / "images" / "George_W_Bush")
    folder = tmp_path / "photos"
    folder.mkdir()
    for n in (1, 2, 3):
        (folder / f"bush{n}.jpg").write_bytes((bush / f"George_W_Bush_000{n}.jpg").read_bytes())
    (folder / "notes.txt").write_text("skipped: not an image suffix")
    whole = (bush / "George_W_Bush_0005.jpg").read_bytes()
    (folder / "broken.jpg").write_bytes(whole[: len(whole) // 2])
    assert run(data_dir, "collections", "create", "people").exit_code == 0
    duplicate = run(data_dir, "collections", "create", "people")
    assert duplicate.exit_code == 1 and "RESOURCE_ALREADY_EXISTS" in duplicate.stderr

    # The default policy (photo-library) needs consent on record before enrolment.
    refused = json.loads(run(data_dir, "index", "people", folder, "--json").stdout)
    assert refused["indexed_faces"] == 0 and refused["failed_images"] == {"POLICY_VIOLATION": 4}
    recorded = run(
        data_dir,
        "consent",
        "record",
        "people",
        "--collection",
        "--by",
        "photo club consent drive",
        "--document",
        "forms/2026-11",
    )
    assert recorded.exit_code == 0, recorded.output
    listed = json.loads(run(data_dir, "consent", "list", "people", "--json").stdout)
    assert listed[0]["subject_kind"] == "collection" and listed[0]["withdrawn_at"] is None

    indexed = run(data_dir, "index", "people", folder, "--json", "--purpose", "test")
    assert indexed.exit_code == 3, indexed.output  # one image was refused: bad input
    summary = json.loads(indexed.stdout)
    assert summary["images"] == 4 and summary["indexed_faces"] == 3
    assert summary["failed_images"] == {"TRUNCATED": 1}

    found = run(data_dir, "search", "people", bush / "George_W_Bush_0004.jpg", "--json")
    assert found.exit_code == 0
    matches = json.loads(found.stdout)["matches"]
    assert {m["face"]["external_image_id"] for m in matches} == {"bush1", "bush2", "bush3"}

    described = json.loads(run(data_dir, "collections", "describe", "people", "--json").stdout)
    assert described["face_count"] == 3
    missing = run(data_dir, "search", "nowhere", bush / "George_W_Bush_0004.jpg")
    assert missing.exit_code == 4 and "RESOURCE_NOT_FOUND" in missing.stderr

    verified = run(data_dir, "ledger", "verify", "--json")
    assert verified.exit_code == 0 and json.loads(verified.stdout)["ok"]
    export = tmp_path / "ledger.jsonl"
    assert run(data_dir, "ledger", "export", "--out", export).exit_code == 0
    events = [json.loads(line)["event"] for line in export.read_text().splitlines()]
    operations = [e["operation"] for e in events]
    assert operations.count("IndexFaces") == 3 and "SearchFacesByImage" in operations
    search = next(e for e in events if e["operation"] == "SearchFacesByImage")
    assert search["image_sha256"] and search["results"]["matches"]
    assert "embedding" not in json.dumps(events)


def test_users_cli(data_dir) -> None:
    require(LFW)  # uses the faces the first test indexed
    faces = json.loads(
        runner.invoke(
            app, ["collections", "describe", "people", "--json", "--data-dir", str(data_dir)]
        ).stdout
    )
    assert faces["face_count"] == 3
    assert run(data_dir, "users", "create", "people", "gwb").exit_code == 0
    listed = json.loads(run(data_dir, "users", "list", "people", "--json").stdout)
    assert listed[0]["user_id"] == "gwb" and listed[0]["status"] == "CREATED"


def test_keys_cli(data_dir) -> None:
    created = run(
        data_dir, "keys", "create", "--role", "auditor", "--name", "audit office", "--json"
    )
    assert created.exit_code == 0
    key = json.loads(created.stdout)
    assert key["role"] == "auditor" and key["token"].startswith(key["key_id"] + ".")
    listed = json.loads(run(data_dir, "keys", "list", "--json").stdout)
    assert key["key_id"] in {k["key_id"] for k in listed}
    assert key["token"] not in json.dumps(listed)  # the secret is shown once, never again
    assert key["policy"] == "photo-library" and key["aws"] is False
    bad = run(data_dir, "keys", "create", "--role", "king", "--name", "x")
    assert bad.exit_code == 3 and "unknown role" in bad.stderr
    # Without --json each printed value says what it is, and that it is shown once.
    bearer = run(data_dir, "keys", "create", "--role", "auditor", "--name", "desk")
    assert bearer.exit_code == 0
    assert "under use policy photo-library" in bearer.stdout
    lines = dict(
        line.strip().split(":", 1) for line in bearer.stdout.splitlines() if line.startswith("  ")
    )
    assert set(lines) == {"key id", "token"}
    assert lines["token"].strip().startswith(lines["key id"].strip() + ".")
    assert "shown only now" in bearer.stderr
    aws = run(data_dir, "keys", "create", "--role", "operator", "--name", "app", "--aws")
    assert "access key id:" in aws.stdout and "secret access key:" in aws.stdout


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_governance_cli(data_dir, tmp_path) -> None:
    """After the tests above: policies, a report, an erasure receipt and a retention run."""
    require(LFW)
    policies = json.loads(run(data_dir, "policies", "list", "--json").stdout)
    assert [p["name"] for p in policies] == [
        "photo-library",
        "access-control",
        "investigative-lead",
    ]
    custom = tmp_path / "policy.json"
    custom.write_text(json.dumps({**policies[0], "name": "club", "min_threshold": 90}))
    assert run(data_dir, "policies", "set", custom).exit_code == 0
    assert json.loads(run(data_dir, "policies", "show", "club").stdout)["min_threshold"] == 90
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    assert run(data_dir, "policies", "set", bad).exit_code == 3
    key = json.loads(
        run(
            data_dir,
            "keys",
            "create",
            "--role",
            "operator",
            "--name",
            "kiosk",
            "--policy",
            "club",
            "--json",
        ).stdout
    )
    listed = {k["key_id"]: k for k in json.loads(run(data_dir, "keys", "list", "--json").stdout)}
    assert listed[key["key_id"]]["policy"] == "club"
    assert run(data_dir, "keys", "policy", key["key_id"], "nonexistent").exit_code == 4
    assert run(data_dir, "review", "list", "--json").stdout.strip() == "[]"

    today = time.strftime("%Y-%m-%d", time.gmtime())
    out = tmp_path / "report"
    reported = run(
        data_dir, "report", "accountability", "--from", today, "--to", today, "--out", out
    )
    assert reported.exit_code == 0, reported.output
    report = json.loads((out / "accountability.json").read_text())
    assert report["uses"]["by_operation"]["IndexFaces"] >= 3 and report["ledger"]["ok"]
    assert report["refused"]["by_kind"]["policy"] == 4  # the enrolments before consent
    assert "data:image/png" in (out / "accountability.html").read_text()

    # The one who searched cannot review the results, even with every permission (local).
    bush = LFW / "images" / "George_W_Bush" / "George_W_Bush_0002.jpg"
    lead = run(
        data_dir,
        "search",
        "people",
        bush,
        "--json",
        "--threshold",
        "99",
        "--policy",
        "investigative-lead",
        "--purpose",
        "test",
        "--case",
        "T-1",
        "--legal-basis",
        "warrant",
    )
    assert lead.exit_code == 0, lead.output
    found = json.loads(lead.stdout)
    task = found["governance"]["review"]["task_id"]
    face = found["matches"][0]["face"]["face_id"]
    own = run(data_dir, "review", "decide", task, face, "confirm", "--reason", "it is him")
    assert own.exit_code == 6 and "cannot review its results" in own.stderr
    shown = json.loads(run(data_dir, "review", "show", task).stdout)
    assert shown["candidates"][0]["status"] == "unconfirmed" and shown["case"] == "T-1"

    receipt_file = tmp_path / "receipt.json"
    erased = run(data_dir, "erase", "--external-image-id", "bush1", "--out", receipt_file)
    assert erased.exit_code == 0, erased.output
    receipt = json.loads(receipt_file.read_text())
    assert receipt["receipt"]["removed"]["index_entries"] == 1 and receipt["signature"]

    # Photo-library keeps faces 3 years after their last use.
    kept = json.loads(run(data_dir, "retention", "run", "--now", "2027-01-01", "--json").stdout)
    assert kept["deleted_faces"] == {}
    due = json.loads(run(data_dir, "retention", "run", "--now", "2031-01-01", "--json").stdout)
    assert sum(len(v) for v in due["deleted_faces"].values()) >= 2


def test_serve_starts_with_embedded_defaults(tmp_path) -> None:
    port = free_port()
    server_dir = tmp_path / "var"  # created by the server
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "faceledger.cli.main",
            "serve",
            "--port",
            str(port),
            "--data-dir",
            str(server_dir),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/health") as answer:
                    assert json.load(answer)["status"] == "ok"
                    break
            except OSError:
                assert server.poll() is None, server.stdout.read()
                assert time.monotonic() < deadline, "server did not start in 60 s"
                time.sleep(0.3)
        key_file = server_dir / "admin-key.txt"
        assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
        assert stat.S_IMODE(os.stat(server_dir).st_mode) == 0o700  # descriptors live here
        request = urllib.request.Request(
            f"http://127.0.0.1:{port}/v1/collections",
            headers={"Authorization": f"Bearer {key_file.read_text().strip()}"},
        )
        with urllib.request.urlopen(request) as answer:
            assert json.load(answer)["collection_ids"] == []
    finally:
        server.send_signal(signal.SIGINT)
        output = server.communicate(timeout=30)[0]
    assert "admin API key was written" in output


def test_unreadable_inputs_are_reported_not_raised(data_dir, tmp_path) -> None:
    missing = run(data_dir, "search", "people", tmp_path / "absent.jpg")
    assert missing.exit_code == 4 and "NOT_FOUND" in missing.stderr
    folder = run(data_dir, "users", "search", "people", "--image", tmp_path)
    assert folder.exit_code == 3 and "INVALID_PARAMETER" in folder.stderr
    policy = run(data_dir, "policies", "set", tmp_path / "absent.json")
    assert policy.exit_code == 4 and "no such file" in policy.stderr
    (tmp_path / "garbled.json").write_text("{not json")
    garbled = run(data_dir, "policies", "set", tmp_path / "garbled.json")
    assert garbled.exit_code == 3 and "readable" in garbled.stderr


EXIT_CASES = [
    # (command, exit code, error code on stderr): README's table, command by command.
    (("collections", "create", "exits"), 0, None),
    (("collections", "create", "exits"), 1, "RESOURCE_ALREADY_EXISTS"),
    (("collections", "describe", "nope"), 4, "RESOURCE_NOT_FOUND"),
    (("users", "create", "nope", "u"), 4, "RESOURCE_NOT_FOUND"),
    (("users", "delete", "exits", "nobody"), 4, "RESOURCE_NOT_FOUND"),
    (("keys", "revoke", "flk_nobody"), 4, "RESOURCE_NOT_FOUND"),
    (("keys", "create", "--role", "operator", "--name", "x", "--policy", "nope"), 4, None),
    (("consent", "list", "nope"), 4, "RESOURCE_NOT_FOUND"),
    (("consent", "withdraw", "nope"), 4, "RESOURCE_NOT_FOUND"),
    (("review", "show", "nope"), 4, "RESOURCE_NOT_FOUND"),
    (("review", "decide", "nope", "f", "confirm", "--reason", "same ears"), 4, None),
    (("retention", "set", "nope", "5"), 4, "RESOURCE_NOT_FOUND"),
    (("policies", "show", "nope"), 4, "RESOURCE_NOT_FOUND"),
    (("policies", "set", "/nonexistent.json"), 4, "NOT_FOUND"),
    (("ledger", "verify", "--heads", "/nonexistent"), 4, "NOT_FOUND"),
    (("search", "exits", "/nonexistent.jpg"), 4, "NOT_FOUND"),
    (("search", "exits", __file__), 3, "UNSUPPORTED_FORMAT"),
    (("video", "detect", __file__), 3, "UNSUPPORTED_FORMAT"),
    (("report", "accountability", "--from", "x", "--to", "y"), 2, None),
]


@pytest.mark.parametrize(("args", "code", "error"), EXIT_CASES, ids=lambda v: str(v))
def test_exit_codes_are_as_the_readme_says(tmp_path_factory, args, code, error) -> None:
    data_dir = tmp_path_factory.getbasetemp() / "exit-codes"
    result = run(data_dir, *args)
    assert result.exit_code == code, result.output
    if error:
        assert f"error {error}:" in result.stderr
    assert "Traceback" not in result.output
