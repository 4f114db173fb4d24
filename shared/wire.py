"""Frozen dataclasses of the estate (clusters, registries, scale sets, role assignments, an
inventory) to JSON and back, checked against their type hints, for queue messages.

A queue message is input like any other: :func:`load` accepts only what :func:`dump` writes for
that type (every field present or defaulted, no unknown key, each value of its annotated type,
strings short and printable, containers bounded) and raises :class:`~shared.signals.BadSignal`
otherwise. :func:`pack` / :func:`unpack` carry the JSON compressed (a batch's slice of the
inventory is mostly repeated resource ids) within the queue's 64 KB, refusing to inflate more
than :data:`MAX_INFLATED` bytes.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import functools
import json
import types
import typing
import zlib
from collections.abc import Mapping
from typing import Any, TypeVar

from shared.signals import BadSignal

T = TypeVar("T")
MAX_TEXT = 4096
MAX_ITEMS = 20_000
MAX_INFLATED = 4 * 1024 * 1024


def dump(value: Any) -> Any:
    """JSON-ready: dataclasses as objects, tuples and sets as lists, mappings as objects."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: dump(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, frozenset | set):
        return sorted(dump(v) for v in value)
    if isinstance(value, tuple | list):
        return [dump(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): dump(v) for k, v in value.items()}
    return value


def load(kind: type[T], data: Any) -> T:
    """The value of type ``kind`` that :func:`dump` wrote as ``data``; BadSignal if it is not."""
    found: T = _load(kind, data, kind.__name__)
    return found


def pack(value: Any) -> str:
    raw = json.dumps(dump(value), separators=(",", ":")).encode()
    return base64.b64encode(zlib.compress(raw, 6)).decode("ascii")


def unpack(kind: type[T], text: Any) -> T:
    if not isinstance(text, str):
        raise BadSignal("a packed value is not a string")
    try:
        squeezed = base64.b64decode(text, validate=True)
        inflater = zlib.decompressobj()
        raw = inflater.decompress(squeezed, MAX_INFLATED)
        if inflater.unconsumed_tail:
            raise BadSignal(f"a packed value inflates beyond {MAX_INFLATED} bytes")
        data = json.loads(raw)
    except (binascii.Error, zlib.error, ValueError):
        raise BadSignal("a packed value is not compressed JSON") from None
    return load(kind, data)


def _load(kind: Any, data: Any, where: str) -> Any:
    if dataclasses.is_dataclass(kind):
        return _dataclass(kind, data, where)
    origin = typing.get_origin(kind)
    if origin in (typing.Union, types.UnionType):
        for option in typing.get_args(kind):
            try:
                return _load(option, data, where)
            except BadSignal:
                continue
        raise BadSignal(f"{where} is none of the types it may be")
    if origin in (tuple, frozenset, Mapping, dict) or kind in (Mapping, dict):
        return _container(kind, origin, data, where)
    return _scalar(kind, data, where)


def _container(kind: Any, origin: Any, data: Any, where: str) -> Any:
    args = typing.get_args(kind)
    if origin is tuple:
        items = _list(data, where)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_load(args[0], v, where) for v in items)
        if len(items) != len(args):
            raise BadSignal(f"{where} must have {len(args)} items")
        return tuple(_load(a, v, where) for a, v in zip(args, items, strict=True))
    if origin is frozenset:
        return frozenset(_load(args[0], v, where) for v in _list(data, where))
    key, value = args or (str, str)
    if not isinstance(data, Mapping) or len(data) > MAX_ITEMS:
        raise BadSignal(f"{where} is not a bounded object")
    return {_load(key, k, where): _load(value, v, where) for k, v in data.items()}


def _scalar(kind: Any, data: Any, where: str) -> Any:
    if kind is type(None):
        if data is not None:
            raise BadSignal(f"{where} must be null")
    elif kind is str:
        if not isinstance(data, str) or len(data) > MAX_TEXT or not data.isprintable():
            raise BadSignal(f"{where} is not a short plain string")
    elif kind is bool:
        if not isinstance(data, bool):
            raise BadSignal(f"{where} is not true or false")
    elif kind in (int, float):
        whole = isinstance(data, int) and not isinstance(data, bool)
        if not (whole or (kind is float and isinstance(data, float))):
            raise BadSignal(f"{where} is not a number")
        return kind(data)
    else:
        raise BadSignal(f"{where}: {kind!r} cannot be read from a message")
    return data


@functools.cache
def _shape(kind: Any) -> tuple[dict[str, Any], dict[str, dataclasses.Field[Any]]]:
    """A dataclass's resolved hints and init fields: resolving string annotations costs more
    than reading a whole batch message, so once per type."""
    fields = {f.name: f for f in dataclasses.fields(kind) if f.init}
    return typing.get_type_hints(kind), fields


def _dataclass(kind: Any, data: Any, where: str) -> Any:
    if not isinstance(data, Mapping):
        raise BadSignal(f"{where} is not an object")
    hints, fields = _shape(kind)
    unknown = set(data) - set(fields)
    if unknown:
        raise BadSignal(f"{where} has unknown fields {sorted(unknown)[:5]}")
    values = {}
    for name, field in fields.items():
        if name in data:
            values[name] = _load(hints[name], data[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise BadSignal(f"{where} lacks {name}")
    return kind(**values)


def _list(data: Any, where: str) -> list[Any]:
    if not isinstance(data, list) or len(data) > MAX_ITEMS:
        raise BadSignal(f"{where} is not a bounded list")
    return data
