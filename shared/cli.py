"""Command line: ``acr-pull-doctor classify|diagnose`` (stable interface, see README).

Also runs as ``python -m shared.cli``. Read-only: it diagnoses and reports, it never remediates.
Exit codes: 0 = nothing failed, 1 = a check failed, 2 = bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import TextIO

from shared.checks import Finding, Status, Target
from shared.classify import classify
from shared.errors import ConfigurationError, ReadError
from shared.fleet import PairReport
from shared.resource_id import ResourceId

PROG = "acr-pull-doctor"
OUTPUTS = ("table", "json", "html")
DEFAULT_REPORT = "fleet-report.html"


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog=PROG, description=__doc__)
    commands = top.add_subparsers(dest="command", required=True)
    classify_cmd = commands.add_parser("classify", help="classify a kubelet pull error message")
    classify_cmd.add_argument("message", help="the Failed event or container status message")
    classify_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    diagnose_cmd = commands.add_parser(
        "diagnose",
        help="run every check for a cluster/registry pair, or for every pair in scope",
        description="With --cluster and --registry: one pair. Without them: every (cluster, "
        "registry) pair in SCOPE_SUBSCRIPTION_IDS, with progress on stderr.",
    )
    diagnose_cmd.add_argument("--cluster", help="managed cluster resource id")
    diagnose_cmd.add_argument("--registry", help="registry name, login server or resource id")
    diagnose_cmd.add_argument("--image", help="image reference, e.g. myacr.azurecr.io/app:v1")
    _output_options(diagnose_cmd)
    report_cmd = commands.add_parser(
        "report",
        help="write the fleet report: one self-contained HTML file",
        description="A summary per cluster, each finding with its evidence and commands, the "
        "expiry timeline of secrets and token passwords, and the actions the audit log recorded.",
    )
    report_cmd.add_argument(
        "--from",
        dest="source",
        choices=("diagnosis", "store"),
        default="diagnosis",
        help="diagnose every pair in scope now (default), or read the state store's audit log",
    )
    report_cmd.add_argument(
        "--days", type=int, default=7, help="audit log period for the actions (default 7)"
    )
    report_cmd.add_argument(
        "--out", default=DEFAULT_REPORT, help=f"file (default {DEFAULT_REPORT})"
    )
    report_cmd.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")
    return top


def _output_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--output", "-o", choices=OUTPUTS, default=None, help="output format")
    command.add_argument("--json", action="store_true", help="same as --output json")
    command.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    args = parser().parse_args(argv)
    if args.command == "classify":
        return _classify(args.message, as_json=args.json, out=out)
    if args.command == "report":
        return _guarded(lambda: _report(args.source, args.days, args.out, quiet=args.quiet))
    return _guarded(lambda: _diagnose_command(args, out))


def _guarded(run: Callable[[], int]) -> int:
    """Bad input and configuration, and estate that cannot be read, exit 2 with the reason."""
    try:
        return run()
    except (ConfigurationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ReadError as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 2


def _diagnose_command(args: argparse.Namespace, out: TextIO) -> int:
    output = args.output or ("json" if args.json else "table")
    if args.cluster is None and args.registry is None:
        if args.image:
            raise ValueError("--image needs --cluster and --registry")
        return _diagnose_fleet(output, quiet=args.quiet, out=out)
    if args.cluster is None or args.registry is None:
        raise ValueError("--cluster and --registry go together (or give neither for the fleet)")
    return _diagnose(args.cluster, args.registry, args.image, output=output, out=out)


def _cli_env() -> dict[str, str]:
    """A person runs the CLI with their own rights, not the deployed dry-run identity's: read
    kubeconfigs and registry credentials if they may (CREDENTIAL_READS=off to refuse)."""
    return {"CREDENTIAL_READS": "on", **os.environ}


def _classify(message: str, *, as_json: bool, out: TextIO) -> int:
    result = classify(message)
    if as_json:
        print(json.dumps(result.to_dict()), file=out)
    else:
        candidates = ", ".join(result.candidates) or "none"
        print(f"cause: {result.cause} (candidates: {candidates})\n{result.reason}", file=out)
    return 0


def _diagnose(
    cluster_id: str, registry: str, image: str | None, *, output: str, out: TextIO
) -> int:
    from shared import runtime
    from shared.fleet import diagnose_pair

    cluster_rid = ResourceId.parse(cluster_id)
    engine = runtime.engine(_cli_env())
    estate = engine.estate
    cluster = estate.get_cluster(str(cluster_rid))
    scope = tuple(sorted(engine.settings.subscriptions)) or (cluster_rid.subscription_id,)
    registry_id = estate.find_registry(registry, subscription_ids=scope).id
    report = diagnose_pair(engine, Target(cluster, registry_id, image))
    if output == "json":
        print(json.dumps(report.to_dict(), indent=2), file=out)
    elif output == "html":
        print(_html([report]), file=out)
    else:
        print(table(report.findings), file=out)
    return _exit_code([report])


def _diagnose_fleet(output: str, *, quiet: bool, out: TextIO) -> int:
    from shared import runtime
    from shared.fleet import diagnose_fleet

    engine = runtime.engine(_cli_env())
    if not engine.settings.subscriptions:
        raise ValueError("SCOPE_SUBSCRIPTION_IDS is empty: no pair is in scope")
    if not quiet:
        print(f"{PROG}: finding the pairs in scope ...", file=sys.stderr, flush=True)
    reports = diagnose_fleet(engine, progress=None if quiet else _progress)
    if output == "json":
        print(json.dumps({"pairs": [r.to_dict() for r in reports]}, indent=2), file=out)
    elif output == "html":
        print(_html(reports), file=out)
    else:
        print(fleet_table(reports), file=out)
    return _exit_code(reports)


def _html(reports: Sequence[PairReport]) -> str:
    from shared.report.build import build_report
    from shared.report.render import render_html

    return render_html(build_report("diagnosis", days=7, reports=reports))


def _report(source: str, days: int, path: str, *, quiet: bool) -> int:
    from pathlib import Path

    from shared.report.build import build_report
    from shared.report.render import render_html

    if not 1 <= days <= 400:
        raise ValueError(f"--days {days} must be 1 to 400")
    if not quiet and source == "diagnosis":
        print(f"{PROG}: finding the pairs in scope ...", file=sys.stderr, flush=True)
    report = build_report(
        "state store" if source == "store" else "diagnosis",
        days=days,
        progress=None if quiet else _progress,
    )
    Path(path).write_text(render_html(report), encoding="utf-8")
    if not quiet:
        print(f"{PROG}: wrote {path} ({len(report.clusters)} clusters)", file=sys.stderr)
    return 0


def _progress(done: int, total: int, report: PairReport) -> None:
    registry = report.registry_id.rsplit("/", 1)[-1]
    failed, unknown = len(report.failed), len(report.unknown)
    print(
        f"{PROG}: [{done}/{total}] {report.cluster_name} -> {registry}: "
        f"{failed} failed, {unknown} unknown ({report.seconds:.1f} s)",
        file=sys.stderr,
        flush=True,
    )


def _exit_code(reports: Sequence[PairReport]) -> int:
    return 1 if any(r.failed for r in reports) else 0


def table(findings: Sequence[Finding]) -> str:
    rows = [("CAUSE", "STATUS", "ACTION", "WHY")]
    rows += [(f.cause_id, f.status.value, f.action_id or "-", f.summary) for f in findings]
    return _columns(rows)


def fleet_table(reports: Sequence[PairReport]) -> str:
    """The findings that need a look (FAIL, UNKNOWN) of every pair, and a closing count."""
    rows = [("CLUSTER", "REGISTRY", "CAUSE", "STATUS", "ACTION", "WHY")]
    for report in reports:
        registry = report.registry_id.rsplit("/", 1)[-1]
        rows += [
            (
                report.cluster_name,
                registry,
                f.cause_id,
                f.status.value,
                f.action_id or "-",
                f.summary,
            )
            for f in report.findings
            if f.status is not Status.PASS
        ]
    failing = sum(1 for r in reports if r.failed)
    closing = f"{len(reports)} pairs diagnosed, {failing} with a failed check"
    return (_columns(rows) + "\n" if len(rows) > 1 else "") + closing


def _columns(rows: Sequence[tuple[str, ...]]) -> str:
    """Aligned columns; the last one (a sentence) is left unpadded."""
    last = len(rows[0]) - 1
    widths = [max(len(row[i]) for row in rows) for i in range(last)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:last], widths, strict=True))
        + "  "
        + row[last]
        for row in rows
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
