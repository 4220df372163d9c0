"""Charts for the HTML reports: matplotlib figures embedded as PNG data URIs, so a report is
one self-contained file."""

from __future__ import annotations

import base64
import html
import io
from typing import Any


def _pyplot() -> Any:
    """matplotlib.pyplot, imported on first use (a third of a second), on the Agg backend: no
    display on servers."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot

    return matplotlib.pyplot


def png_img(figure: Any) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    _pyplot().close(figure)
    return (
        '<img alt="chart" src="data:image/png;base64,'
        + base64.b64encode(buffer.getvalue()).decode()
        + '">'
    )


def bar_chart(title: str, counts: dict[str, int | float]) -> str:
    """A horizontal bar chart of named counts (a note instead when there is nothing)."""
    if not counts:
        return f"<p>{html.escape(title)}: none.</p>"
    figure, axis = _pyplot().subplots(figsize=(6.5, 0.5 + 0.35 * len(counts)))
    names = list(counts)[::-1]
    axis.barh(names, [counts[n] for n in names], color="#4a6fa5")
    axis.set_title(title)
    axis.set_xlabel("count")
    return png_img(figure)
