"""Pages rendered by a real browser, to be looked at: headless Chromium (Debian's `chromium`,
which .ci/run installs) writes a PNG; tests skip, saying why, where it is absent."""

from __future__ import annotations

import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
]


def screenshot(page: Path, png: Path, width: int = 1000, height: int = 6000) -> Path:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("Chromium is not installed (apt-get install chromium; .ci/run does)")
    profile = png.parent / f"{png.stem}-profile"
    subprocess.run(
        [
            browser,
            *FLAGS,
            f"--user-data-dir={profile}",
            f"--window-size={width},{height}",
            f"--screenshot={png}",
            page.resolve().as_uri(),
        ],
        capture_output=True,
        timeout=120,
        check=True,
    )
    return png


class _Text(HTMLParser):
    """The text a reader sees, without what is set as code (ids, names)."""

    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []
        self._hidden = 0

    def handle_starttag(self, tag: str, attrs: object) -> None:
        if tag in ("code", "style", "title", "script"):
            self._hidden += 1

    def handle_endtag(self, tag: str) -> None:
        if tag in ("code", "style", "title", "script"):
            self._hidden -= 1

    def handle_data(self, data: str) -> None:
        if not self._hidden:
            self.parts.append(data)


def visible_text(page: str) -> str:
    parser = _Text()
    parser.feed(page)
    return " ".join(" ".join(parser.parts).split())


def assert_drawn(png: Path) -> None:
    """The browser drew a page: text and charts over most of its top, not a blank or an
    error page."""
    import numpy as np
    from PIL import Image

    with Image.open(png) as image:
        pixels = np.asarray(image.convert("L"))[:3000:10]
    inked = int((pixels.min(axis=1) < 128).sum())
    assert inked > 60, f"{png}: only {inked} of {len(pixels)} sampled rows hold anything dark"


def assert_plain_words(text: str) -> None:
    """What a report's reader sees carries no program internals."""
    import re

    for leak in ("None", "LegalBasis", "{'", "['", "(not recorded)", "nan"):
        assert leak not in text, leak
    booleans = re.findall(r"\b(?:True|False)\b(?! (?:non-)?match)", text)
    assert not booleans, booleans
    snake = re.findall(r"\b[a-z]+_[a-z_]+\b", text)
    assert not snake, snake
