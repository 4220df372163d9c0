"""Signed heads of the ledger, and the places they are held outside the database.

A signed head names the newest event of the chain at some moment (its seq and hash) with an
Ed25519 signature over both. Whoever keeps a copy can later prove that the chain still holds
that event unchanged: deleting or rewriting anything up to it is then caught, as Certificate
Transparency's signed tree heads let monitors catch a log that forks or shrinks.

Heads are published (after the transaction that made them commits) to an anchor file outside
the database, ``<data dir>/ledger/heads.jsonl`` (0600, one JSON object a line), and POSTed to
witness URLs where configured.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from faceledger.delivery import Courier, Delivery
from faceledger.errors import InputNotFoundError, LedgerError

HEX64 = re.compile(r"^[0-9a-f]{64}$")


def head_message(seq: int, head_hash: str) -> bytes:
    return f"faceledger-ledger-head:{seq}:{head_hash}".encode()


@dataclass(frozen=True)
class SignedHead:
    """The chain's newest event at ``seq`` had ``hash``; ``signature`` is the ledger key's
    Ed25519 signature over :func:`head_message` (``time`` is the event's own time)."""

    seq: int
    hash: str
    time: str
    signature: str
    public_key_id: str

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))

    @classmethod
    def from_dict(cls, value: Any, where: str) -> SignedHead:
        if not isinstance(value, dict):
            raise LedgerError(f"{where}: a signed head is a JSON object")
        seq, head_hash = value.get("seq"), value.get("hash")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
            raise LedgerError(f"{where}: 'seq' must be a positive integer")
        if not isinstance(head_hash, str) or not HEX64.match(head_hash):
            raise LedgerError(f"{where}: 'hash' must be 64 lower-case hex digits")
        return cls(
            seq,
            head_hash,
            str(value.get("time", "")),
            str(value.get("signature", "")),
            str(value.get("public_key_id", "")),
        )


def read_heads(path: Path) -> Iterator[tuple[str, SignedHead]]:
    """(where, head) for each line of a heads file; ``where`` is ``file:line``."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise InputNotFoundError(f"no such heads file: {path}") from None
    except OSError as error:
        raise LedgerError(f"cannot read the heads file {path}: {error.strerror}") from None
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            value = json.loads(line)
        except ValueError:
            raise LedgerError(f"{where}: not a JSON object") from None
        yield where, SignedHead.from_dict(value, where)


class AnchorFile:
    """Appends each published head as one line; a single ``write`` on an ``O_APPEND`` file,
    so processes sharing the data directory do not interleave lines."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def append(self, heads: Iterable[SignedHead]) -> None:
        lines = "".join(h.to_json() + "\n" for h in heads).encode()
        if not lines:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        descriptor = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(descriptor, lines)
            os.fsync(descriptor)
        finally:
            os.close(descriptor)

    def last(self) -> SignedHead | None:
        """The newest head in the file (highest seq), None when there is none."""
        if not self.path.exists():
            return None
        heads = [head for _, head in read_heads(self.path)]
        return max(heads, key=lambda h: h.seq, default=None)


class Witnesses:
    """POSTs heads to witness URLs from a background thread, so appends never wait on the
    network (:class:`faceledger.delivery.Courier`)."""

    def __init__(self, urls: Iterable[str], timeout: float = 5.0) -> None:
        self.urls = [u for u in urls if u]
        self.courier = Courier(timeout)

    def publish(self, heads: Iterable[SignedHead]) -> None:
        for head in heads:
            for url in self.urls:
                self.courier.send(Delivery(url, head.to_json().encode()))

    def flush(self, timeout: float = 10.0) -> None:
        self.courier.flush(timeout)
