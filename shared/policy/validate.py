"""Schema and semantic validation, worded for people: path, line, and what is allowed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from yaml.nodes import Node

from shared.policy.errors import Problem
from shared.policy.schema import SCHEMA
from shared.policy.yaml_source import PathPart, format_path, line_of

if TYPE_CHECKING:
    from jsonschema import ValidationError

_TYPES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}


def problems(data: Any, root: Node | None) -> list[Problem]:
    """Every problem in the document: schema errors first, semantic ones only on a valid shape."""
    from jsonschema import Draft202012Validator

    found: list[Problem] = []
    for error in Draft202012Validator(SCHEMA).iter_errors(data):
        found.extend(_describe(error, root))
    if not found:
        found.extend(_semantic(data, root))
    return found


def _describe(error: ValidationError, root: Node | None) -> Iterable[Problem]:
    path: tuple[PathPart, ...] = tuple(error.absolute_path)
    kind: str = str(error.validator)
    expected: Any = error.validator_value
    instance: Any = error.instance
    schema: Mapping[str, Any] = error.schema if isinstance(error.schema, Mapping) else {}
    if kind == "additionalProperties" and isinstance(instance, Mapping):
        what, known = schema.get("x-key", "key"), schema.get("properties", {})
        for extra in instance:
            if extra not in known:
                where = (*path, str(extra))
                message = f"unknown {what} {extra!r}; valid {what}s: {', '.join(known)}"
                yield Problem(line_of(root, where, key=True), format_path(where), message)
        return
    if kind == "required" and isinstance(instance, Mapping):
        for name in expected:
            if name not in instance:
                yield Problem(line_of(root, path), format_path(path), f"missing {name!r}")
        return
    custom = schema.get("x-messages", {}).get(kind)
    if custom is not None:
        message = str(custom).format(instance=instance)
    elif kind in ("minItems", "minProperties", "minLength") and expected == 1:
        message = "must not be empty"
    elif kind in _MESSAGES:
        message = _MESSAGES[kind](expected, instance)
    else:
        message = error.message
    yield Problem(line_of(root, path), format_path(path), message)


_MESSAGES: dict[str, Callable[[Any, Any], str]] = {
    "enum": lambda allowed, value: (
        f"{_show(value)} is not one of {', '.join(repr(v) for v in allowed)}"
    ),
    "type": lambda kind, value: f"expected {_TYPES.get(str(kind), kind)}, got {_show(value)}",
    "minimum": lambda low, value: f"must be at least {low}, got {value}",
    "maximum": lambda high, value: f"must be at most {high}, got {value}",
    "maxLength": lambda most, _value: f"must be at most {most} characters long",
    "uniqueItems": lambda _unique, value: f"lists {_first_repeat(value)!r} more than once",
}


def _semantic(data: Mapping[str, Any] | None, root: Node | None) -> Iterable[Problem]:
    if not data:
        return
    settings: list[tuple[tuple[PathPart, ...], Mapping[str, Any]]] = [((), data)]
    names: dict[str, int] = {}
    for index, scope in enumerate(data.get("scopes", [])):
        settings.append((("scopes", index), scope))
        if scope["name"] in names:
            where: tuple[PathPart, ...] = ("scopes", index, "name")
            first = f"scopes[{names[scope['name']]}]"
            yield _at(root, where, f"scope name {scope['name']!r} is already used by {first}")
        names.setdefault(scope["name"], index)
    for prefix, block in settings:
        for i, window in enumerate(block.get("maintenanceWindows", [])):
            where = (*prefix, "maintenanceWindows", i)
            if window["start"] == window["end"]:
                message = (
                    f"start and end are both {window['start']}; use 00:00 to 24:00 for a whole day"
                )
                yield _at(root, (*where, "end"), message)
            zone = window.get("timezone")
            if zone is not None and not _known_zone(zone):
                message = f"{zone!r} is not an IANA time zone (e.g. 'Europe/Amsterdam', 'UTC')"
                yield _at(root, (*where, "timezone"), message)
        tickets = block.get("tickets", {})
        route = tickets.get("route", {})
        if tickets.get("provider") == "webhook" and ("url" in route) == ("urlSetting" in route):
            message = "a webhook route needs exactly one of 'url', 'urlSetting'"
            yield _at(root, (*prefix, "tickets", "route"), message)


def _at(root: Node | None, path: tuple[PathPart, ...], message: str) -> Problem:
    return Problem(line_of(root, path), format_path(path), message)


def _known_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        return False
    return True


def _show(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _first_repeat(items: list[Any]) -> Any:
    for index, item in enumerate(items):
        if item in items[:index]:
            return item
    return items[0] if items else None
