"""Who may do what. Every use case checks its permission here, whichever interface called it."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from faceledger.errors import (
    AuthenticationError,
    InvalidParameterError,
    NotFoundError,
    PermissionDeniedError,
)
from faceledger.governance.secrets import SecretBox
from faceledger.store.database import Database
from faceledger.store.schema import ApiKeyRow, utcnow


class Role(StrEnum):
    ADMIN = "admin"  # keys and collections; not biometric searches (separation of duties)
    OPERATOR = "operator"  # index, search, compare, detect, users
    REVIEWER = "reviewer"  # confirms or rejects search results under review
    AUDITOR = "auditor"  # ledger and reports only
    LOCAL = "local"  # the CLI on the data directory: whoever can read it can do anything


PERMISSIONS: dict[Role, frozenset[str]] = {
    Role.ADMIN: frozenset(
        {
            "keys:manage",
            "policies:manage",
            "collections:manage",
            "collections:read",
            "consent:manage",
            "erasure:run",
            "retention:run",
            "ledger:read",
            "evaluation:read",
            "reports:read",
        }
    ),
    Role.OPERATOR: frozenset(
        {
            "collections:read",
            "faces:write",
            "faces:read",
            "faces:search",
            "faces:compare",
            "faces:detect",
            "users:write",
            "users:read",
            "consent:manage",
            "review:read",
        }
    ),
    Role.REVIEWER: frozenset({"collections:read", "review:read", "review:decide"}),
    Role.AUDITOR: frozenset(
        {
            "ledger:read",
            "collections:read",
            "evaluation:run",
            "evaluation:read",
            "review:read",
            "reports:read",
        }
    ),
}
PERMISSIONS[Role.LOCAL] = frozenset().union(*PERMISSIONS.values())


@dataclass(frozen=True)
class Actor:
    key_id: str
    role: Role
    name: str = ""
    policy: str | None = None  # None: the server's default policy

    def require(self, permission: str) -> None:
        if permission not in PERMISSIONS[self.role]:
            raise PermissionDeniedError(
                f"the {self.role.value} role may not do this (needs {permission})"
            )


@dataclass(frozen=True)
class IssuedKey:
    key_id: str
    name: str
    role: Role
    token: str  # shown once; only its hash is stored
    policy: str | None = None


def _role(value: Role | str) -> Role:
    try:
        role = Role(value)
    except ValueError:
        raise InvalidParameterError(
            f"unknown role {value!r}; roles: admin, operator, reviewer, auditor"
        ) from None
    if role is Role.LOCAL:
        raise InvalidParameterError("the local role is not issued as a key")
    return role


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_key(db: Database, role: Role | str, name: str, policy: str | None = None) -> IssuedKey:
    """A new API key. The token is ``<key id>.<secret>``; only the secret's SHA-256 is stored
    (the secret is 256 random bits, so a slow hash would add nothing)."""
    with db.write() as session:
        return _add_key(session, _role(role), name, policy)


def create_first_key(db: Database, role: Role, name: str) -> IssuedKey | None:
    """A key, only if the database has none at all; checked and created in one write
    transaction, so of several servers starting at once exactly one creates it."""
    with db.write() as session:
        if session.scalar(select(func.count()).select_from(ApiKeyRow)):
            return None
        return _add_key(session, role, name, None)


def _add_key(session: Session, role: Role, name: str, policy: str | None) -> IssuedKey:
    key_id = "flk_" + secrets.token_hex(8)
    secret = secrets.token_urlsafe(32)
    _add_row(session, key_id, secret, role, name, policy)
    return IssuedKey(key_id, name, role, f"{key_id}.{secret}", policy)


def _add_row(
    session: Session,
    key_id: str,
    secret: str,
    role: Role,
    name: str,
    policy: str | None,
    **columns: object,
) -> None:
    """A key's row: only the secret's SHA-256 is stored."""
    if not name.strip():
        raise InvalidParameterError("a key needs a name saying who or what holds it")
    session.add(
        ApiKeyRow(
            key_id=key_id,
            name=name,
            role=role.value,
            secret_sha256=_digest(secret),
            policy=policy,
            **columns,
        )
    )


@dataclass(frozen=True)
class AwsCredential:
    actor: Actor
    secret: str
    default_purpose: str | None
    default_case: str | None = None


def create_aws_key(
    db: Database,
    box: SecretBox,
    role: Role | str,
    name: str,
    purpose: str | None = None,
    *,
    policy: str | None = None,
    case: str | None = None,
) -> IssuedKey:
    """An AWS-style key pair for Signature V4: access key id ``FLAK...`` and a secret that is
    stored sealed (the server must recompute signatures with it), shown once."""
    role = _role(role)
    key_id = "FLAK" + "".join(
        secrets.choice(string.ascii_uppercase + string.digits) for _ in range(16)
    )
    secret = secrets.token_urlsafe(30)
    with db.write() as session:
        _add_row(
            session,
            key_id,
            secret,
            role,
            name,
            policy,
            default_purpose=purpose,
            default_case=case,
            aws_secret_encrypted=box.seal(secret, key_id),
        )
    return IssuedKey(key_id, name, role, secret, policy)


def aws_credential(db: Database, box: SecretBox, access_key_id: str) -> AwsCredential:
    with db.read() as session:
        row = session.get(ApiKeyRow, access_key_id)
    if row is None or row.revoked_at is not None or row.aws_secret_encrypted is None:
        raise AuthenticationError(f"the access key {access_key_id!r} is not known")
    return AwsCredential(
        Actor(row.key_id, Role(row.role), row.name, row.policy),
        box.open(row.aws_secret_encrypted, row.key_id),
        row.default_purpose,
        row.default_case,
    )


def authenticate(db: Database, token: str | None) -> Actor:
    if not token:
        raise AuthenticationError("an API key is required: send 'Authorization: Bearer <key>'")
    key_id, _, secret = token.partition(".")
    with db.read() as session:
        row = session.get(ApiKeyRow, key_id)
    if (
        row is None
        or row.revoked_at is not None
        or not hmac.compare_digest(row.secret_sha256, _digest(secret))
    ):
        raise AuthenticationError("the API key is not valid")
    if row.aws_secret_encrypted is not None:
        # One credential, one use: an AWS secret signs Rekognition requests (with their rate
        # limit, purpose and case); it is never a bearer token.
        raise AuthenticationError(
            "that is an AWS access key: it signs requests to the Rekognition endpoint and is "
            "not a bearer token; use a bearer API key here"
        )
    return Actor(row.key_id, Role(row.role), row.name, row.policy)


def revoke_key(db: Database, key_id: str) -> None:
    with db.write() as session:
        row = session.get(ApiKeyRow, key_id)
        if row is None:
            raise NotFoundError(f"no API key {key_id}")
        row.revoked_at = utcnow()
