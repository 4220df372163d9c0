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


def settings_for(data_dir: Path | None) -> Settings:
    settings = get_settings()
    return settings.model_copy(update={"data_dir": data_dir}) if data_dir else settings


@contextmanager
def local_services(
    data_dir: Path | None,
    purpose: str | None = None,
    *,
    policy: str | None = None,
    case: str | None = None,
    legal_basis: str | None = None,
) -> Iterator[tuple[Services, Request]]:
    """Services on the data directory and a request by the local user (role ``local``), under
    ``policy`` (the server's default policy when None): the CLI is held to policies too."""
    from faceledger.service.auth import Actor, Role
    from faceledger.service.common import Request
    from faceledger.service.context import Services

    with reported_errors():
        services = Services.open(settings_for(data_dir))
        try:
            actor = Actor(f"cli:{getpass.getuser()}", Role.LOCAL, policy=policy)
            yield services, Request(actor, purpose, case, legal_basis)
        finally:
            services.close()
