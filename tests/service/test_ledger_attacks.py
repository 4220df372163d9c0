"""The ledger against someone who can write the database (finding 3 of the hardening issue):
cutting its tail, cutting back to a checkpoint, emptying it, appending a chain-correct forgery,
editing the newest events. Each was undetected before events were signed one by one and heads
were held outside the database."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import stat
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from faceledger.config import Settings
from faceledger.errors import LedgerError
from faceledger.governance.heads import head_message
from faceledger.governance.ledger import CHECKPOINT_SECONDS, GENESIS, Ledger, chain_hash
from faceledger.service import collections
from faceledger.service.auth import Actor, Role
from faceledger.service.common import Request
from faceledger.service.context import Services
from tests.service.test_ledger import (
    EVENTS,
    NoEngine,
    copy_of,
    db,
    invoke,
    outcome,
    settings_for,
    verify,
)

REQUEST = Request(Actor("test", Role.LOCAL), purpose="ledger attack test")


def tables_digest(data_dir: Path) -> str:
    """Every ledger row, to show a command changed nothing."""
    with db(data_dir) as conn:
        rows = conn.execute("SELECT * FROM ledger_events ORDER BY seq").fetchall()
        rows += conn.execute("SELECT * FROM ledger_signatures ORDER BY seq").fetchall()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def head_file(data_dir: Path, tmp_path: Path) -> Path:
    """What an auditor keeps: the newest signed head, printed by `ledger head`."""
    held = tmp_path / "held-heads.jsonl"
    result = invoke(data_dir, "ledger", "head", "--out", str(held))
    assert result.exit_code == 0, result.output
    return held


def test_the_anchor_file_is_private_and_holds_the_checkpoints(ledger_dir) -> None:
    anchor = ledger_dir / "ledger" / "heads.jsonl"
    assert stat.S_IMODE(os.stat(anchor).st_mode) == 0o600
    heads = [json.loads(line) for line in anchor.read_text().splitlines()]
    assert [h["seq"] for h in heads] == [1, 100, 200]
    assert set(heads[0]) == {"seq", "hash", "time", "signature", "public_key_id"}


def test_ledger_head_prints_the_newest_event_signed(ledger_dir, tmp_path) -> None:
    result = invoke(ledger_dir, "ledger", "head")
    assert result.exit_code == 0, result.output
    head = json.loads(result.stdout)
    assert head["seq"] == EVENTS and len(head["hash"]) == 64
    with db(ledger_dir) as conn:
        stored = conn.execute("SELECT hash FROM ledger_events WHERE seq = ?", (EVENTS,)).fetchone()
    assert head["hash"] == stored[0]


def test_cutting_the_tail_with_its_checkpoint_is_caught_by_the_anchor_file(
    ledger_dir, tmp_path
) -> None:
    data_dir = copy_of(ledger_dir, tmp_path)
    with db(data_dir) as conn:
        conn.execute("DELETE FROM ledger_events WHERE seq > 150")
        conn.execute("DELETE FROM ledger_signatures WHERE seq > 150")
    result = verify(data_dir)
    assert result.exit_code == 1
    assert outcome(result)["first_bad_seq"] == 200
    assert "deleted from its end" in outcome(result)["reason"]


def test_cutting_back_to_a_multiple_of_100(ledger_dir, tmp_path) -> None:
    data_dir = copy_of(ledger_dir, tmp_path)
    held = head_file(data_dir, tmp_path)
    with db(data_dir) as conn:
        conn.execute("DELETE FROM ledger_events WHERE seq > 200")
    # 200 is a checkpoint and everything up to it is intact: only a head of a later event,
    # kept elsewhere, shows that 30 events are gone.
    assert verify(data_dir).exit_code == 0
    caught = verify(data_dir, "--heads", str(held))
    assert caught.exit_code == 1
    assert outcome(caught)["first_bad_seq"] == EVENTS
    assert str(held) in outcome(caught)["reason"]
    with db(data_dir) as conn:
        conn.execute("DELETE FROM ledger_events WHERE seq > 100")
        conn.execute("DELETE FROM ledger_signatures WHERE seq > 100")
    assert outcome(verify(data_dir))["first_bad_seq"] == 200  # the anchor file's head


def test_emptying_both_tables(ledger_dir, tmp_path) -> None:
    data_dir = copy_of(ledger_dir, tmp_path)
    with db(data_dir) as conn:
        conn.execute("DELETE FROM ledger_events")
        conn.execute("DELETE FROM ledger_signatures")
    result = verify(data_dir)
    assert result.exit_code == 1 and outcome(result)["first_bad_seq"] == 1


def forged_event(conn, seq: int) -> tuple[str, str, str]:
    prev = conn.execute("SELECT hash FROM ledger_events WHERE seq = ?", (seq - 1,)).fetchone()
    time = "2026-11-24T00:00:00.000000+00:00"
    body = json.dumps(
        {
            "seq": seq,
            "time": time,
            "operation": "SearchFacesByImage",
            "actor_key_id": "someone-else",
            "actor_role": "operator",
            "collection_id": None,
            "parameters": {},
            "purpose": "forged",
            "image_sha256": None,
            "results": {},
            "outcome": "ok",
        },
        sort_keys=True,
        separators=(",", ":"),
    )
    previous = prev[0] if prev else GENESIS
    return body, previous, chain_hash(previous, body)


def test_a_chain_correct_forged_event_appended(ledger_dir, tmp_path) -> None:
    data_dir = copy_of(ledger_dir, tmp_path)
    with db(data_dir) as conn:
        body, prev, digest = forged_event(conn, EVENTS + 1)
        conn.execute(
            "INSERT INTO ledger_events (seq, time, operation, actor_key_id, collection_id, body,"
            " prev_hash, hash, signature) VALUES (?, ?, ?, ?, NULL, ?, ?, ?, ?)",
            (
                EVENTS + 1,
                json.loads(body)["time"],
                "SearchFacesByImage",
                "someone-else",
                body,
                prev,
                digest,
                "00" * 64,  # no key, so no valid signature
            ),
        )
    result = verify(data_dir)
    assert result.exit_code == 1 and outcome(result)["first_bad_seq"] == EVENTS + 1
    with db(data_dir) as conn:  # leaving the signature out is no better
        conn.execute("UPDATE ledger_events SET signature = NULL WHERE seq = ?", (EVENTS + 1,))
    unsigned = verify(data_dir)
    assert unsigned.exit_code == 1 and "not signed" in outcome(unsigned)["reason"]


def test_editing_the_newest_events(ledger_dir, tmp_path) -> None:
    data_dir = copy_of(ledger_dir, tmp_path)
    with db(data_dir) as conn:
        body = conn.execute("SELECT body FROM ledger_events WHERE seq = ?", (EVENTS,)).fetchone()
        edited = body[0].replace("ledger test", "edited")
        prev = conn.execute("SELECT prev_hash FROM ledger_events WHERE seq = ?", (EVENTS,))
        conn.execute(
            "UPDATE ledger_events SET body = ?, hash = ? WHERE seq = ?",
            (edited, chain_hash(prev.fetchone()[0], edited), EVENTS),
        )
    result = verify(data_dir)
    assert result.exit_code == 1 and outcome(result)["first_bad_seq"] == EVENTS


def test_verifying_and_other_commands_never_sign_a_broken_ledger(ledger_dir, tmp_path) -> None:
    data_dir = copy_of(ledger_dir, tmp_path)
    with db(data_dir) as conn:
        conn.execute("DELETE FROM ledger_events WHERE seq > 210")
    before = tables_digest(data_dir)
    assert verify(data_dir).exit_code == 0  # 211-230 are beyond every held head
    for command in (["ledger", "verify"], ["ledger", "export"], ["policies", "list"]):
        invoke(data_dir, *command)
    assert tables_digest(data_dir) == before


def test_a_writer_refuses_to_extend_a_truncated_chain(ledger_dir, tmp_path) -> None:
    data_dir = copy_of(ledger_dir, tmp_path)
    services = Services.open(settings_for(data_dir), engine=NoEngine())  # type: ignore[arg-type]
    try:
        collections.create_collection(services, REQUEST, "before")  # seen: event 231
        with db(data_dir) as conn:
            conn.execute("DELETE FROM ledger_events WHERE seq > 220")
        with pytest.raises(LedgerError, match="no longer holds event 231"):
            collections.create_collection(services, REQUEST, "after")
    finally:
        services.close()
    # A new process knows the anchor file's newest head (200): cut below it, it refuses too.
    with db(data_dir) as conn:
        conn.execute("DELETE FROM ledger_events WHERE seq > 150")
        conn.execute("DELETE FROM ledger_signatures WHERE seq > 150")
    services = Services.open(settings_for(data_dir), engine=NoEngine())  # type: ignore[arg-type]
    try:
        with pytest.raises(LedgerError, match="no longer holds event 200"):
            collections.create_collection(services, REQUEST, "later")
    finally:
        services.close()


def test_checkpoints_come_at_least_once_a_minute(tmp_path) -> None:
    services = Services.open(Settings(data_dir=tmp_path), engine=NoEngine())  # type: ignore[arg-type]
    now = [dt.datetime(2026, 11, 24, tzinfo=dt.UTC)]
    services.ledger.clock = lambda: now[0]
    try:
        for i in range(10):
            collections.create_collection(services, REQUEST, f"c{i}")
            now[0] += dt.timedelta(seconds=CHECKPOINT_SECONDS / 2 + 1)
    finally:
        services.close()
    heads = [json.loads(line)["seq"] for line in (tmp_path / "ledger/heads.jsonl").open()]
    assert heads == [1, 3, 5, 7, 9]  # 31 s apart: every second event is a checkpoint


class Witness(BaseHTTPRequestHandler):
    received: list[dict] = []  # noqa: RUF012

    def do_POST(self) -> None:
        length = int(self.headers["Content-Length"])
        Witness.received.append(json.loads(self.rfile.read(length)))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_witnesses_receive_each_checkpoint_and_catch_a_truncation(tmp_path) -> None:
    Witness.received.clear()  # the test runs once per database
    server = HTTPServer(("127.0.0.1", 0), Witness)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/heads"
    data_dir = tmp_path / "data"
    try:
        settings = Settings(data_dir=data_dir, ledger_witness_urls=url)
        services = Services.open(settings, engine=NoEngine())  # type: ignore[arg-type]
        for i in range(120):
            collections.create_collection(services, REQUEST, f"w{i}")
        services.close()  # delivers what is queued
    finally:
        server.shutdown()
    assert [h["seq"] for h in Witness.received] == [1, 100]
    witnessed = tmp_path / "witnessed.jsonl"
    witnessed.write_text("".join(json.dumps(h) + "\n" for h in Witness.received))
    # The attacker controls the machine: the database and the anchor file both lose 100.
    with db(data_dir) as conn:
        conn.execute("DELETE FROM ledger_events WHERE seq >= 100")
        conn.execute("DELETE FROM ledger_signatures WHERE seq >= 100")
    (data_dir / "ledger" / "heads.jsonl").write_text(
        (data_dir / "ledger" / "heads.jsonl").read_text().splitlines()[0] + "\n"
    )
    assert verify(data_dir).exit_code == 0
    caught = verify(data_dir, "--heads", str(witnessed))
    assert caught.exit_code == 1 and outcome(caught)["first_bad_seq"] == 100


def test_a_head_not_signed_by_the_ledger_key_is_reported(ledger_dir, tmp_path) -> None:
    held = head_file(ledger_dir, tmp_path)
    head = json.loads(held.read_text())
    head["signature"] = "00" * 64
    held.write_text(json.dumps(head) + "\n")
    result = verify(ledger_dir, "--heads", str(held))
    assert result.exit_code == 1 and "not signed by the ledger's key" in outcome(result)["reason"]


def test_a_malformed_heads_file_is_a_clear_error(ledger_dir, tmp_path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"seq": "x"}\n')
    result = verify(ledger_dir, "--heads", str(bad))
    assert result.exit_code != 0
    assert "'seq' must be a positive integer" in " ".join(result.output.split())


def test_each_event_signature_is_over_its_seq_and_hash(ledger_dir) -> None:
    services = Services.open(settings_for(ledger_dir), engine=NoEngine())  # type: ignore[arg-type]
    try:
        key = services.ledger.signer.public_key
        with db(ledger_dir) as conn:
            seq, digest, signature = conn.execute(
                "SELECT seq, hash, signature FROM ledger_events WHERE seq = 17"
            ).fetchone()
        key.verify(bytes.fromhex(signature), head_message(seq, digest))
        assert isinstance(services.ledger, Ledger)
    finally:
        services.close()
