"""Loads a policy file: YAML -> schema and semantic checks -> :class:`Policy`, or PolicyError.

Nothing runs on an invalid policy: :func:`load_policy` raises :class:`PolicyError` listing every
problem with its path and line. The top level of the file is the ``default`` scope; each entry of
``scopes`` overrides what it sets (``actions`` key by key, every other key as a whole).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from shared.policy.errors import PolicyError, Problem
from shared.policy.model import KnownPair, Match, Policy, Scope, TicketRoute
from shared.policy.schema import DAYS, DEFAULT_PAIR_RETENTION_DAYS, RESERVED_SCOPE
from shared.policy.validate import problems
from shared.policy.windows import MaintenanceWindow, parse_clock
from shared.policy.yaml_source import duplicate_keys, parse

MAX_BYTES = 1_000_000
BUNDLED_DEFAULT = Path(__file__).resolve().parents[2] / "policies" / "default.yaml"


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy at ``path`` (the bundled ``policies/default.yaml`` if None or empty).

    Parsed once per file version (path, size, modification time) per process.
    """
    target = Path(path) if path else BUNDLED_DEFAULT
    try:
        stat = target.stat()
        if stat.st_size > MAX_BYTES:
            raise PolicyError(str(target), [Problem(0, "", f"larger than {MAX_BYTES} bytes")])
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise PolicyError(
            str(target), [Problem(0, "", f"cannot read the file: {reason}")]
        ) from None
    return _load(str(target.resolve()), stat.st_size, stat.st_mtime_ns)


@lru_cache(maxsize=8)
def _load(path: str, size: int, mtime_ns: int) -> Policy:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(path, [Problem(0, "", f"cannot read the file: {exc}")]) from None
    return parse_policy(text, source=path)


def parse_policy(text: str, *, source: str = "<string>") -> Policy:
    """Validate and build a policy from YAML text; an empty document is the safe default."""
    data, root = parse(text, source)
    found = list(duplicate_keys(root))
    data = {} if data is None else data
    found += problems(data, root)
    if found:
        raise PolicyError(source, found)
    default = _scope(RESERVED_SCOPE, data, None, Scope(RESERVED_SCOPE))
    scopes = tuple(
        _scope(item["name"], item, _match(item["match"]), default)
        for item in data.get("scopes", [])
    )
    pairs = data.get("pairs", {})
    return Policy(
        default=default,
        scopes=scopes,
        source=source,
        known_pairs=tuple(KnownPair(k["cluster"], k["registry"]) for k in pairs.get("known", [])),
        pair_retention=timedelta(days=pairs.get("retentionDays", DEFAULT_PAIR_RETENTION_DAYS)),
    )


def _scope(name: str, block: Mapping[str, Any], match: Match | None, base: Scope) -> Scope:
    actions = {**base.actions, **block.get("actions", {})}
    windows = block.get("maintenanceWindows")
    expiry = block.get("expiryWindows")
    return Scope(
        name=name,
        match=match,
        mode=block.get("mode", base.mode),
        actions=MappingProxyType(actions),
        rate_limit_per_hour=block.get("rateLimit", {}).get(
            "perClusterPerHour", base.rate_limit_per_hour
        ),
        cooldown=(
            timedelta(minutes=block["cooldown"]["minutes"])
            if "cooldown" in block
            else base.cooldown
        ),
        maintenance_windows=(
            tuple(_window(w) for w in windows) if windows is not None else base.maintenance_windows
        ),
        expiry_windows=tuple(sorted(expiry, reverse=True)) if expiry else base.expiry_windows,
        tickets=_tickets(block["tickets"]) if "tickets" in block else base.tickets,
        probe=block.get("probe", base.probe),
    )


def _match(block: Mapping[str, Any]) -> Match:
    return Match(
        subscriptions=frozenset(s.lower() for s in block.get("subscriptions", ())),
        resource_groups=tuple(g.lower() for g in block.get("resourceGroups", ())),
        tags=tuple((k.lower(), v) for k, v in block.get("tags", {}).items()),
    )


def _window(block: Mapping[str, Any]) -> MaintenanceWindow:
    return MaintenanceWindow(
        days=frozenset(DAYS.index(d) for d in block.get("days", DAYS)),
        start=parse_clock(block["start"]),
        end=parse_clock(block["end"]),
        timezone=block.get("timezone", "UTC"),
    )


def _tickets(block: Mapping[str, Any]) -> TicketRoute:
    return TicketRoute(
        provider=block["provider"],
        route=MappingProxyType(dict(block["route"])),
        labels=tuple(block.get("labels", ())),
    )
