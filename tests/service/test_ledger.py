from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from faceledger.cli.main import app
from faceledger.config import Settings, get_settings
from faceledger.governance.heads import head_message
from faceledger.governance.ledger import SIGN_EVERY, chain_hash
from faceledger.governance.signing import Signer, public_key_pem
from faceledger.service import collections
from faceledger.service.auth import Actor, Role
from faceledger.service.common import Request
from faceledger.service.context import Services
from faceledger.vision.models import face_model
from tests.databases import cli_env, connect, copy_data_dir, remember, url_of

runner = CliRunner()
EVENTS = 230


class NoEngine:
    """Collections need no face engine; this keeps the ledger tests fast."""

    model_version = face_model("sface-int8").version


@pytest.fixture(scope="module")
def ledger_dir(tmp_path_factory, database) -> Path:
    data_dir = remember(tmp_path_factory.mktemp("ledger"))
    services = Services.open(settings_for(data_dir), engine=NoEngine())  # type: ignore[arg-type]
    request = Request(Actor("test", Role.LOCAL), purpose="ledger test")
    for i in range(EVENTS):
        collections.create_collection(services, request, f"c{i}")
    services.close()  # signs nothing: every event was signed as it was appended
    return data_dir


def settings_for(data_dir: Path, **settings: Any) -> Settings:
    return Settings(data_dir=data_dir, database_url=url_of(data_dir), **settings)


def copy_of(ledger_dir: Path, tmp_path: Path) -> Path:
    return copy_data_dir(ledger_dir, tmp_path / "copy")


def invoke(data_dir: Path, *args: str):
    """The CLI on ``data_dir`` (and its database)."""
    get_settings.cache_clear()  # the CLI's settings are read once per process: read them anew
    return runner.invoke(app, [*args, "--data-dir", str(data_dir)], env=cli_env(data_dir))


def verify(data_dir: Path, *extra: str):
    return invoke(data_dir, "ledger", "verify", "--json", *extra)


def db(data_dir: Path) -> Any:
    return connect(data_dir)


def outcome(result) -> dict:
    return json.loads(result.stdout)


def test_intact_ledger_verifies(ledger_dir, tmp_path) -> None:
    data_dir = copy_of(ledger_dir, tmp_path)
    result = verify(data_dir)
    assert result.exit_code == 0, result.output
    # Opening the data directory adds nothing: verifying is not itself a write.
    body = outcome(result)
    assert body["ok"] and body["events"] == EVENTS
    # Checkpoints: the first event, then every 100th (the test runs within a minute).
    assert body["signatures"] == EVENTS // SIGN_EVERY + 1
    assert body["last_signed_seq"] == 200 and body["unsigned_tail"] == 30
    assert body["heads_checked"] == 3  # the anchor file's heads


def test_a_byte_edited_in_an_event(ledger_dir, tmp_path) -> None:
    data_dir = copy_of(ledger_dir, tmp_path)
    with db(data_dir) as conn:
        body = conn.execute("SELECT body FROM ledger_events WHERE seq = 7").fetchone()[0]
        conn.execute(
            "UPDATE ledger_events SET body = ? WHERE seq = 7",
            (body.replace("ledger test", "ledger tesT"),),
        )
    result = verify(data_dir)
    assert result.exit_code == 1
    assert outcome(result)["first_bad_seq"] == 7
    assert "edited" in outcome(result)["reason"]


def test_a_deleted_event(ledger_dir, tmp_path) -> None:
    data_dir = copy_of(ledger_dir, tmp_path)
    with db(data_dir) as conn:
        conn.execute("DELETE FROM ledger_events WHERE seq = 12")
    result = verify(data_dir)
    assert result.exit_code == 1 and outcome(result)["first_bad_seq"] == 12


def rehash_from(conn: Any, seq: int) -> None:
    rows = conn.execute(
        "SELECT seq, body FROM ledger_events WHERE seq >= ? ORDER BY seq", (seq,)
    ).fetchall()
    prev = conn.execute("SELECT hash FROM ledger_events WHERE seq = ?", (seq - 1,)).fetchone()[0]
    for s, body in rows:
        new = chain_hash(prev, body)
        conn.execute(
            "UPDATE ledger_events SET prev_hash = ?, hash = ? WHERE seq = ?", (prev, new, s)
        )
        prev = new


def test_a_rewritten_chain_without_the_key(ledger_dir, tmp_path) -> None:
    data_dir = copy_of(ledger_dir, tmp_path)
    with db(data_dir) as conn:
        body = conn.execute("SELECT body FROM ledger_events WHERE seq = 3").fetchone()[0]
        conn.execute(
            "UPDATE ledger_events SET body = ? WHERE seq = 3",
            (body.replace("ledger test", "innocent"),),
        )
        rehash_from(conn, 3)  # the chain itself is consistent again
    result = verify(data_dir)
    assert result.exit_code == 1
    assert outcome(result)["first_bad_seq"] == 3  # each event carries its writer's signature
    assert "signature" in outcome(result)["reason"]


def test_a_replaced_key_is_caught_with_the_published_public_key(ledger_dir, tmp_path) -> None:
    published = tmp_path / "ledger.pub"
    published.write_text(invoke(ledger_dir, "ledger", "public-key").stdout)
    data_dir = copy_of(ledger_dir, tmp_path)
    key_file = data_dir / "keys" / "ledger-ed25519.pem"
    key_file.unlink()
    forger = Signer.load_or_create(key_file)  # the attacker's own key
    with db(data_dir) as conn:
        body = conn.execute("SELECT body FROM ledger_events WHERE seq = 2").fetchone()[0]
        conn.execute(
            "UPDATE ledger_events SET body = ? WHERE seq = 2",
            (body.replace("ledger test", "forged"),),
        )
        rehash_from(conn, 2)
        heads = conn.execute("SELECT seq, hash FROM ledger_events").fetchall()
        conn.execute("DELETE FROM ledger_signatures")
        for seq, head in heads:
            conn.execute(
                "UPDATE ledger_events SET signature = ? WHERE seq = ?",
                (forger.sign(head_message(seq, head)), seq),
            )
            if seq % SIGN_EVERY == 0 or seq == EVENTS:
                conn.execute(
                    "INSERT INTO ledger_signatures VALUES (?, ?, ?, ?, ?)",
                    (
                        seq,
                        head,
                        forger.sign(head_message(seq, head)),
                        forger.key_id,
                        "2026-01-01 00:00:00",
                    ),
                )
    (data_dir / "ledger" / "heads.jsonl").unlink()  # the forger hides the old anchors too
    assert verify(data_dir).exit_code == 0  # consistent with the key it now holds...
    caught = verify(data_dir, "--public-key", str(published))
    assert caught.exit_code == 1  # ...but not with the key published before
    assert "not valid for the key" in outcome(caught)["reason"]
    assert public_key_pem(forger.public_key) != published.read_text()
