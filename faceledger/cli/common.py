"""What every command shares: error reporting, exit codes, progress bars, JSON output."""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from enum import Enum, StrEnum
from types import ModuleType
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Column

from faceledger.errors import (
    DatasetError,
    FaceledgerError,
    InputNotFoundError,
    InvalidImageError,
    InvalidParameterError,
    InvalidVideoError,
    ModelFileError,
    NoFaceDetected,
    NotFoundError,
    PermissionDeniedError,
    RuleViolation,
)

if TYPE_CHECKING:
    from faceledger.service.results import Page

T = TypeVar("T")


def every_item(fetch: Callable[[str | None], Page[T]]) -> list[T]:
    """All pages of a listing (the CLI shows everything), fetched a page at a time."""
    items: list[T] = []
    token = None
    while True:
        page = fetch(token)
        items.extend(page.items)
        if page.next_token is None:
            return items
        token = page.next_token


class Backend(StrEnum):
    """Where the engine's networks run (see FaceEngine)."""

    onnx = "onnx"
    dlib = "dlib"


err_console = Console(stderr=True)
out_console = Console()

# Exit codes: 0 ok, 1 failed, 2 usage (typer's own), 3 bad input, 4 not found (a file, a data
# set, or a named collection, face, user, key, policy or task), 5 model file, 6 refused (a use
# policy or a governance rule).
EXIT_CODES: dict[type[FaceledgerError], int] = {
    InvalidImageError: 3,
    InvalidVideoError: 3,
    InvalidParameterError: 3,
    NoFaceDetected: 3,
    InputNotFoundError: 4,
    DatasetError: 4,
    NotFoundError: 4,
    ModelFileError: 5,
    PermissionDeniedError: 6,
    RuleViolation: 6,
}


def exit_code_for(error: FaceledgerError) -> int:
    for kind, code in EXIT_CODES.items():
        if isinstance(error, kind):
            return code
    return 1


def fail(error: FaceledgerError) -> typer.Exit:
    err_console.print(
        f"[red]error[/red] {error.code}: {error.message}", highlight=False, soft_wrap=True
    )
    return typer.Exit(exit_code_for(error))


@contextmanager
def reported_errors() -> Iterator[None]:
    """Turn faceledger's errors into a message on stderr and the matching exit code."""
    try:
        yield
    except FaceledgerError as error:
        raise fail(error) from None
    except FileNotFoundError as error:
        raise fail(InputNotFoundError(f"no such file: {error.filename}")) from None
    except OSError as error:  # unreadable: a folder, no permission, a device error
        where = f"{error.filename}: " if error.filename else ""
        raise fail(InvalidParameterError(f"{where}{error.strerror or error}")) from None


@contextmanager
def progress_bar(label: str) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """(set_total, advance) callbacks driving a progress bar on stderr."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
        disable=not sys.stderr.isatty(),
    ) as progress:
        task = progress.add_task(label, total=None)
        yield (
            lambda total: progress.update(task, total=total),
            lambda n: progress.advance(task, n),
        )


def to_plain(value: Any) -> Any:
    """Dataclasses, enums and numpy values as JSON-ready Python values."""
    if is_dataclass(value) and not isinstance(value, type):
        return {k: to_plain(v) for k, v in asdict(value).items()}
    if isinstance(value, dict):
        return {str(k): to_plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_plain(v) for v in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dt.datetime | dt.date):
        return value.isoformat()
    return value


def print_json(value: Any) -> None:
    sys.stdout.write(json.dumps(to_plain(value), indent=2) + "\n")


def lazy_module(name: str) -> ModuleType:
    """The module ``name``, loaded on first attribute access rather than now: the service layer,
    the engine and the store import SQLAlchemy, Alembic, dlib and ONNX Runtime, which
    `faceledger --help` and light commands never need (they answered in 1.6 s; now well under
    one)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.find_spec(name)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(name)
    loader = importlib.util.LazyLoader(spec.loader)
    spec.loader = loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    loader.exec_module(module)
    return module


def id_column(header: str, ids: Iterable[str]) -> Column:
    """A table column that is never narrowed or cut: the ids in it are what a user types next
    (`keys revoke`, `review decide`), so on a narrow terminal the other columns wrap instead."""
    width = max([len(header), *(len(i) for i in ids)])
    return Column(header, no_wrap=True, min_width=width)
