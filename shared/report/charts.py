"""The report's charts as inline SVG (pygal), with no script: the file must open offline.

pygal, not leather or plotly: pygal draws a date axis against labelled rows correctly and
styles itself, leather's date scale clipped points before its first tick, and plotly embeds
about 4 MB of JavaScript in every file. pygal's default config loads its tooltip script from
a CDN; ``js=[]`` turns that off, and the inline config script it still writes is removed from
the tree (labels such as a secret's display name are not ours to trust inside a script).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from shared.report.model import Credential

EXPIRED, SOON, LATER = "#c62828", "#ef6c00", "#2e7d32"


def _style() -> object:
    from pygal.style import Style

    return Style(
        background="white",
        plot_background="white",
        font_family="system-ui, sans-serif",
        colors=(EXPIRED, SOON, LATER, "#546e7a"),
        label_font_size=12,
        major_label_font_size=12,
        legend_font_size=13,
        title_font_size=15,
    )


def expiry_timeline(
    credentials: Sequence[Credential], now: datetime, *, soon_days: int = 30
) -> str:
    """One row per credential, a dot at its end date, coloured by how soon; a line at today."""
    import pygal

    dated = [c for c in credentials if c.expires is not None][:40]  # the 40 that end first
    labels = [f"{c.owner[:18]} {c.name[:18]}".strip() for c in dated]
    height = 140 + 28 * max(len(dated), 1)
    chart = pygal.DateTimeLine(
        js=[],
        style=_style(),
        width=960,
        height=height,
        stroke=False,
        dots_size=6,
        show_y_guides=False,
        disable_xml_declaration=True,
        explicit_size=True,
        x_value_formatter=lambda d: d.strftime("%Y-%m-%d"),
        truncate_label=-1,
        show_minor_x_labels=False,
        x_labels_major_count=6,
        xrange=_padded([c.expires for c in dated if c.expires] + [now]),
        # The first to end on top, as in the table below.
        y_labels=[{"label": label, "value": len(labels) - 1 - i} for i, label in enumerate(labels)]
        or [{"label": "", "value": 0}],
        range=(-0.5, max(len(dated), 1) - 0.5),
        legend_at_bottom=True,
        title="Credential expiry timeline",
        no_data_text="no credential with an end date",
    )
    series: dict[str, list[tuple[datetime, int]]] = {
        "expired": [],
        "within 30 days": [],
        "later": [],
    }
    for row, credential in enumerate(dated):
        assert credential.expires is not None
        left = (credential.expires - now).total_seconds() / 86400
        key = "expired" if left < 0 else ("within 30 days" if left <= soon_days else "later")
        series[key].append((credential.expires, len(dated) - 1 - row))
    for name, points in series.items():
        chart.add(name, points)
    if dated:
        top = len(dated) - 0.5
        chart.add(
            "today",
            [(now, -0.5), (now + timedelta(seconds=1), top)],
            stroke=True,
            show_dots=False,
            stroke_style={"width": 2, "dasharray": "6,4"},
        )
    return _svg(chart)


def problems_by_cause(counts: Mapping[str, int]) -> str:
    """Failed checks per cause across the fleet."""
    import pygal

    chart = pygal.HorizontalBar(
        js=[],
        style=_style(),
        width=960,
        height=120 + 30 * max(len(counts), 1),
        show_legend=False,
        disable_xml_declaration=True,
        explicit_size=True,
        print_values=True,
        y_labels=_whole_numbers(max(counts.values(), default=1)),
        title="Failed checks by cause",
        no_data_text="no failed check",
    )
    chart.x_labels = list(counts)
    chart.add("failed checks", list(counts.values()))
    return _svg(chart)


def _padded(moments: list[datetime]) -> tuple[datetime, datetime]:
    """The date range of the points with a week either side (a lone point is not an edge)."""
    return min(moments) - timedelta(days=7), max(moments) + timedelta(days=7)


def _whole_numbers(top: int) -> list[int]:
    """Counts are whole: about five ticks from 0 to ``top``."""
    step = max(1, -(-top // 5))
    return list(range(0, top + step, step))


def _svg(chart: Any) -> str:
    """The chart's SVG without any <script>: text in the tree is escaped when serialized."""
    tree = chart.render_tree()
    for parent in list(tree.iter()):
        for child in list(parent):
            if isinstance(child.tag, str) and child.tag.rsplit("}", 1)[-1] == "script":
                parent.remove(child)
    if type(tree).__module__.startswith("lxml"):
        from lxml import etree

        return str(etree.tostring(tree, encoding="unicode"))
    import xml.etree.ElementTree as ET

    return ET.tostring(tree, encoding="unicode")
