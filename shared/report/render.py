"""Render a :class:`FleetReport` to one self-contained HTML file (Jinja2, inline CSS and SVG).

No script, no font, no stylesheet from anywhere: the file opens from a mail attachment, offline.
Jinja2 autoescapes every value; only the charts (SVG made by pygal from our numbers) are marked
safe.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from shared.checks import CHECKS, Status
from shared.report.model import FleetReport

TEMPLATES = Path(__file__).resolve().parent / "templates"
SOON_DAYS = 30


def render_html(report: FleetReport) -> str:
    from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape
    from markupsafe import Markup

    from shared.report import charts

    env = Environment(
        loader=FileSystemLoader(TEMPLATES),
        autoescape=select_autoescape(["html", "j2"]),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["when"] = _when
    env.filters["pretty"] = lambda value: json.dumps(value, indent=2, sort_keys=True, default=str)
    now = report.generated_at
    return env.get_template("fleet.html.j2").render(
        report=report,
        now=now,
        Status=Status,
        titles={cause: check.meta.title for cause, check in CHECKS.items()},
        totals=_totals(report),
        soon_days=SOON_DAYS,
        days_left=lambda credential: credential.days_left(now),
        by_cause_svg=Markup(charts.problems_by_cause(report.by_cause())),  # noqa: S704 - our SVG
        timeline_svg=Markup(  # noqa: S704 - SVG drawn by pygal from our own numbers
            charts.expiry_timeline(report.credentials, now, soon_days=SOON_DAYS)
        ),
    )


def _totals(report: FleetReport) -> dict[str, Any]:
    states = [c.state for c in report.clusters]
    now = report.generated_at
    lefts = [c.days_left(now) for c in report.credentials]
    return {
        "clusters": len(states),
        "healthy": states.count("healthy"),
        "failing": states.count("failing"),
        "unknown": states.count("unknown"),
        "pairs": sum(len(c.pairs) for c in report.clusters),
        "failed": sum(c.count(Status.FAIL) for c in report.clusters),
        "expired": sum(1 for d in lefts if d is not None and d < 0),
        "soon": sum(1 for d in lefts if d is not None and 0 <= d <= SOON_DAYS),
        "actions": len(report.actions),
    }


def _when(moment: datetime | None) -> str:
    return "never" if moment is None else moment.strftime("%Y-%m-%d %H:%M UTC")
