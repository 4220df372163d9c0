"""Opening the service on a data directory for CLI commands, as the local actor."""

from __future__ import annotations

import getpass
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from faceledger.cli.common import reported_errors
from faceledger.config import Settings, get_settings

if TYPE_CHECKING:  # the service layer (SQLAlchemy, Alembic) is imported when a command runs
    from faceledger.service.common import Request
    from faceledger.service.context import Services

DataDirOpt = Annotated[
    Path | None,
    typer.Option(
        "--data-dir", help="The service's data directory (default ./var, or $FACELEDGER_DATA_DIR)."
    ),
]
PurposeOpt = Annotated[str | None, typer.Option(help="Why (recorded on the ledger).")]
PolicyOpt = Annotated[
    str | None,
    typer.Option(help="Use policy to act under (default: $FACELEDGER_DEFAULT_POLICY)."),
]
CaseOpt = Annotated[str | None, typer.Option(help="Case or reference number (on the ledger).")]
LegalBasisOpt = Annotated[
    str | None,
    typer.Option(help="consent, warrant, court_order, exigent_circumstances or none."),
]
RayOpt = Annotated[
    bool,
    typer.Option("--ray", help="Do the pixel work as Ray tasks (pip install 'faceledger[ray]')."),
]
RayAddressOpt = Annotated[
    str | None,
    typer.Option(
        help="A running Ray cluster (host:port, ray://..., auto); default with --ray: a Ray "
        "started for this run."
    ),
]


def ray_address_of(ray: bool, address: str | None) -> str:
    """The ``ray_address`` setting the options ask for ('' when neither is given)."""
    return address or ("local" if ray else "")


def settings_for(data_dir: Path | None, **changes: object) -> Settings:
    if data_dir:
        changes["data_dir"] = data_dir
    return get_settings().model_copy(update=changes)


@contextmanager
def local_services(
    data_dir: Path | None,
    purpose: str | None = None,
    *,
    policy: str | None = None,
    case: str | None = None,
    legal_basis: str | None = None,
    **changes: object,
) -> Iterator[tuple[Services, Request]]:
    """Services on the data directory and a request by the local user (role ``local``), under
    ``policy`` (the server's default policy when None): the CLI is held to policies too.
    ``changes``: settings this command sets for itself."""
    from faceledger.service.auth import Actor, Role
    from faceledger.service.common import Request
    from faceledger.service.context import Services

    with reported_errors():
        services = Services.open(settings_for(data_dir, **changes))
        try:
            actor = Actor(f"cli:{getpass.getuser()}", Role.LOCAL, policy=policy)
            yield services, Request(actor, purpose, case, legal_basis)
        finally:
            services.close()
