"""Command line: ``python -m shared.cli classify|diagnose`` (stable interface, see README).

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
from shared.resource_id import ResourceId


def main(argv: Sequence[str] | None = None, *, out: TextIO = sys.stdout) -> int:
    parser = argparse.ArgumentParser(prog="python -m shared.cli", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    classify_cmd = commands.add_parser("classify", help="classify a kubelet pull error message")
    classify_cmd.add_argument("message", help="the Failed event or container status message")
    classify_cmd.add_argument("--json", action="store_true", help="print one JSON object")
    diagnose_cmd = commands.add_parser(
        "diagnose", help="run every check for a cluster/registry pair"
    )
    diagnose_cmd.add_argument("--cluster", required=True, help="managed cluster resource id")
    diagnose_cmd.add_argument(
        "--registry", required=True, help="registry name, login server or resource id"
    )
    diagnose_cmd.add_argument("--image", help="image reference, e.g. myacr.azurecr.io/app:v1")
    diagnose_cmd.add_argument("--json", action="store_true", help="print findings as JSON")
    args = parser.parse_args(argv)
    if args.command == "classify":
        return _classify(args.message, as_json=args.json, out=out)
    try:
        return _diagnose(args.cluster, args.registry, args.image, as_json=args.json, out=out)
    except (ConfigurationError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
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
    cluster_id: str, registry: str, image: str | None, *, as_json: bool, out: TextIO
) -> int:
    from shared import runtime

    cluster_rid = ResourceId.parse(cluster_id)
    engine = runtime.engine()
    estate = engine.estate
    try:
        cluster = estate.get_cluster(str(cluster_rid))
        scope = tuple(sorted(engine.settings.subscriptions)) or (cluster_rid.subscription_id,)
        registry_id = estate.find_registry(registry, subscription_ids=scope).id
    except ReadError as exc:
        print(f"error: {exc.reason}", file=sys.stderr)
        return 2
    findings = engine.diagnose(Target(cluster, registry_id, image))
    if as_json:
        report = {"cluster": cluster.id, "registry": registry_id, "image": image}
        print(
            json.dumps({**report, "findings": [f.to_dict() for f in findings]}, indent=2), file=out
        )
    else:
        print(table(findings), file=out)
    return 1 if any(f.status is Status.FAIL for f in findings) else 0


def table(findings: Sequence[Finding]) -> str:
    rows = [("CAUSE", "STATUS", "ACTION", "WHY")]
    rows += [(f.cause_id, f.status.value, f.action_id or "-", f.summary) for f in findings]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True))
        + "  "
        + row[3]
        for row in rows
    )


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
