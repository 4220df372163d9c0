"""Labeled Faces in the Wild: the view-2 protocol (10 folds of 300 matched + 300 mismatched
pairs) read from ``protocol/pairs.txt``, and the image layout ``images/<Name>/<Name>_000N.jpg``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from faceledger.config import get_settings
from faceledger.errors import DatasetError


@dataclass(frozen=True)
class Pair:
    fold: int  # 0-based
    first: str  # image path relative to images/
    second: str
    same: bool


def resolve_lfw_dir(data: Path | str | None = None) -> Path:
    """The LFW folder: ``data`` itself, ``data/lfw``, or the configured default."""
    root = Path(data) if data is not None else get_settings().lfw_dir
    for candidate in (root, root / "lfw"):
        if (candidate / "protocol" / "pairs.txt").is_file() and (candidate / "images").is_dir():
            return candidate
    raise DatasetError(
        f"no LFW data at {root}: expected protocol/pairs.txt and images/ there or under lfw/ "
        "(set --data or FACELEDGER_EVAL_DATA)"
    )


def image_relpath(name: str, number: int) -> str:
    return f"{name}/{name}_{number:04d}.jpg"


def read_pairs(path: Path) -> list[Pair]:
    """Parse an LFW pairs file. The first line is ``folds<TAB>pairs_per_class``."""
    try:
        lines = path.read_text().splitlines()
    except OSError as exc:
        raise DatasetError(f"cannot read {path}: {exc}") from None
    try:
        folds, per_class = (int(x) for x in lines[0].split())
    except (IndexError, ValueError):
        raise DatasetError(f"{path}: the first line must be '<folds> <pairs per class>'") from None
    rows = [line.split() for line in lines[1:] if line.strip()]
    if len(rows) != folds * 2 * per_class:
        raise DatasetError(f"{path}: expected {folds * 2 * per_class} pairs, found {len(rows)}")
    pairs = []
    for index, row in enumerate(rows):
        fold = index // (2 * per_class)
        if len(row) == 3:
            pairs.append(
                Pair(
                    fold,
                    image_relpath(row[0], int(row[1])),
                    image_relpath(row[0], int(row[2])),
                    True,
                )
            )
        elif len(row) == 4:
            pairs.append(
                Pair(
                    fold,
                    image_relpath(row[0], int(row[1])),
                    image_relpath(row[2], int(row[3])),
                    False,
                )
            )
        else:
            raise DatasetError(f"{path}: line {index + 2} is not a pair: {' '.join(row)}")
    return pairs


def all_images(lfw_dir: Path) -> list[str]:
    """Every image of the dataset, as paths relative to images/, sorted."""
    images = lfw_dir / "images"
    return sorted(str(p.relative_to(images)) for p in images.glob("*/*.jpg"))


def identity_of(relpath: str) -> str:
    return relpath.split("/", 1)[0]
