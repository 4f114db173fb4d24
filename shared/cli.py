"""Command line: ``acr-pull-doctor classify|diagnose`` (stable interface, see README).

Also runs as ``python -m shared.cli``. Read-only: it diagnoses and reports, it never remediates.
Exit codes: 0 = nothing failed, 1 = a check failed, 2 = bad input or configuration.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import TextIO

from shared.checks import Finding, Status, Target
from shared.classify import classify
from shared.errors import ConfigurationError, ReadError
from shared.fleet import PairReport
from shared.resource_id import ResourceId

PROG = "acr-pull-doctor"
OUTPUTS = ("table", "json")


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
    return top


def _output_options(command: argparse.ArgumentParser) -> None:
    command.add_argument("--output", "-o", choices=OUTPUTS, default=None, help="output format")
    command.add_argument("--json", action="store_true", help="same as --output json")
    command.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    args = parser().parse_args(argv)
    if args.command == "classify":
        return _classify(args.message, as_json=args.json, out=out)
    output = args.output or ("json" if args.json else "table")
    try:
        if args.cluster is None and args.registry is None:
            if args.image:
                raise ValueError("--image needs --cluster and --registry")
            return _diagnose_fleet(output, quiet=args.quiet, out=out)
        if args.cluster is None or args.registry is None:
            raise ValueError("--cluster and --registry go together (or give neither for the fleet)")
        return _diagnose(args.cluster, args.registry, args.image, output=output, out=out)
    except (ConfigurationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ReadError as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 2


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
    engine = runtime.engine()
    estate = engine.estate
    cluster = estate.get_cluster(str(cluster_rid))
    scope = tuple(sorted(engine.settings.subscriptions)) or (cluster_rid.subscription_id,)
    registry_id = estate.find_registry(registry, subscription_ids=scope).id
    report = diagnose_pair(engine, Target(cluster, registry_id, image))
    if output == "json":
        print(json.dumps(report.to_dict(), indent=2), file=out)
    else:
        print(table(report.findings), file=out)
    return _exit_code([report])


def _diagnose_fleet(output: str, *, quiet: bool, out: TextIO) -> int:
    from shared import runtime
    from shared.fleet import diagnose_fleet

    engine = runtime.engine()
    if not engine.settings.subscriptions:
        raise ValueError("SCOPE_SUBSCRIPTION_IDS is empty: no pair is in scope")
    if not quiet:
        print(f"{PROG}: finding the pairs in scope ...", file=sys.stderr, flush=True)
    reports = diagnose_fleet(engine, progress=None if quiet else _progress)
    if output == "json":
        print(json.dumps({"pairs": [r.to_dict() for r in reports]}, indent=2), file=out)
    else:
        print(fleet_table(reports), file=out)
    return _exit_code(reports)


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
