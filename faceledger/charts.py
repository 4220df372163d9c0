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
    """A horizontal bar chart of named counts, each bar labelled with its count; whole-number
    axis from zero (a note instead when there is nothing to draw)."""
    if not counts or not any(counts.values()):
        return f"<p>{html.escape(title)}: none.</p>"
    from matplotlib.ticker import MaxNLocator

    figure, axis = _pyplot().subplots(figsize=(6.5, 0.6 + 0.38 * len(counts)))
    names = list(counts)[::-1]
    values = [counts[n] for n in names]
    bars = axis.barh(names, values, color="#4a6fa5")
    axis.bar_label(
        bars,
        labels=[f"{v:,.0f}" if float(v).is_integer() else f"{v:,.2f}" for v in values],
        padding=3,
    )
    axis.set_xlim(0, max(values) * 1.15 or 1)
    if all(float(v).is_integer() for v in values):
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    axis.spines[["top", "right"]].set_visible(False)
    axis.set_title(title)
    axis.set_xlabel("count")
    return png_img(figure)
