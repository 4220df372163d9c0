"""API keys as a use case: issued, listed and revoked by admins, and on the ledger."""

from __future__ import annotations

import os
from pathlib import Path

from sqlalchemy import select

from faceledger.errors import NotFoundError
from faceledger.service.auth import (
    IssuedKey,
    Role,
    create_aws_key,
    create_first_key,
    create_key,
    revoke_key,
)
from faceledger.service.common import Request, chronological_page
from faceledger.service.context import Services
from faceledger.service.policy import check_policy_name
from faceledger.service.results import Page
from faceledger.store.schema import ApiKeyRow

ADMIN_KEY_FILE = "admin-key.txt"


def issue_key(
    services: Services,
    request: Request,
    role: Role | str,
    name: str,
    *,
    aws: bool = False,
    purpose: str | None = None,
    policy: str | None = None,
    case: str | None = None,
) -> IssuedKey:
    """A bearer key, or with ``aws`` an access key id and secret for Signature V4 (for the
    Rekognition endpoint, which takes its purpose and case from the key unless the request
    sends X-Faceledger-Purpose / X-Faceledger-Case). Bound to ``policy``, or to the server's
    default policy when none is given."""
    request.actor.require("keys:manage")
    policy = check_policy_name(services, policy or services.settings.default_policy)
    if aws:
        issued = create_aws_key(
            services.db, services.secrets, role, name, purpose, policy=policy, case=case
        )
    else:
        issued = create_key(services.db, role, name, policy)
    with services.write_lock, services.db.write() as session:
        services.ledger.append(
            session,
            request.event(
                "CreateKey",
                parameters={
                    "key_id": issued.key_id,
                    "role": issued.role.value,
                    "name": name,
                    "aws": aws,
                    "default_purpose": purpose,
                    "default_case": case,
                    "policy": policy,
                },
            ),
        )
    return issued


def keys(
    services: Services,
    request: Request,
    *,
    max_results: int = 1000,
    next_token: str | None = None,
) -> Page[ApiKeyRow]:
    """Keys, revoked ones too, oldest first."""
    request.actor.require("keys:manage")
    with services.db.read() as session:
        return chronological_page(
            session,
            select(ApiKeyRow),
            ApiKeyRow.created_at,
            ApiKeyRow.key_id,
            max_results=max_results,
            next_token=next_token,
        )


def bind_policy(services: Services, request: Request, key_id: str, policy: str) -> None:
    """Move a key to another use policy (on the ledger, with the policy it left)."""
    request.actor.require("keys:manage")
    check_policy_name(services, policy)
    with services.write_lock, services.db.write() as session:
        row = session.get(ApiKeyRow, key_id)
        if row is None or row.revoked_at is not None:
            raise NotFoundError(f"no active API key {key_id}")
        previous, row.policy = row.policy, policy
        services.ledger.append(
            session,
            request.event(
                "BindKeyPolicy",
                parameters={"key_id": key_id, "policy": policy, "previous": previous},
            ),
        )


def revoke(services: Services, request: Request, key_id: str) -> None:
    request.actor.require("keys:manage")
    revoke_key(services.db, key_id)
    with services.write_lock, services.db.write() as session:
        services.ledger.append(session, request.event("RevokeKey", parameters={"key_id": key_id}))


def ensure_admin_key(services: Services) -> Path | None:
    """On first start (no keys at all) create an admin key in a 0600 file; returns its path."""
    issued = create_first_key(services.db, Role.ADMIN, "bootstrap admin")
    if issued is None:
        return None
    path = Path(services.settings.data_dir) / ADMIN_KEY_FILE
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(issued.token + "\n")
    return path
