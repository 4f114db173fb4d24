"""The Kubernetes protobuf encoding of request bodies, for the kinds clients create with it.

kubectl (client-go 1.3x) sends built-in objects as ``application/vnd.kubernetes.protobuf``: the
magic ``k8s\\x00``, then a ``runtime.Unknown`` (typeMeta, raw) whose ``raw`` is the object's
message (generated.proto in k8s.io/api). The emulator answers in JSON, which clients accept too;
it decodes the messages of the kinds it lets clients create (Secret, ServiceAccount) and refuses
others with 415, as an API server does for a content type it cannot decode.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"


class ProtobufError(ValueError):
    pass


def _varint(data: bytes, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise ProtobufError("truncated varint")
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return value, at
        shift += 7


def fields(data: bytes) -> Iterator[tuple[int, int | bytes]]:
    """(field number, value) pairs: ints for varints, bytes for length-delimited fields."""
    at = 0
    while at < len(data):
        key, at = _varint(data, at)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, at = _varint(data, at)
            yield number, value
        elif wire == 2:
            length, at = _varint(data, at)
            if at + length > len(data):
                raise ProtobufError("truncated field")
            yield number, data[at : at + length]
            at += length
        elif wire == 1:
            at += 8
        elif wire == 5:
            at += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a string")
    return value.decode()


def _entry(value: int | bytes) -> tuple[str, bytes]:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a map entry")
    key, item = "", b""
    for number, part in fields(value):
        if number == 1:
            key = _text(part)
        elif number == 2 and isinstance(part, bytes):
            item = part
    return key, item


def _meta(data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    names = {1: "name", 2: "generateName", 3: "namespace", 5: "uid", 6: "resourceVersion"}
    for number, value in fields(data):
        if number in names and (text := _text(value)):  # proto2 sends empty strings too
            meta[names[number]] = text
        elif number in (11, 12):
            key, item = _entry(value)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = item.decode()
    return meta


def _secret(data: bytes) -> dict[str, Any]:
    secret: dict[str, Any] = {}
    for number, value in fields(data):
        if number == 1 and isinstance(value, bytes):
            secret["metadata"] = _meta(value)
        elif number == 2:
            key, item = _entry(value)
            secret.setdefault("data", {})[key] = base64.b64encode(item).decode()
        elif number == 3:
            secret["type"] = _text(value)
        elif number == 4:
            key, item = _entry(value)
            secret.setdefault("stringData", {})[key] = item.decode()
        elif number == 5:
            secret["immutable"] = bool(value)
    return secret


def _service_account(data: bytes) -> dict[str, Any]:
    account: dict[str, Any] = {}
    for number, value in fields(data):
        if number == 1 and isinstance(value, bytes):
            account["metadata"] = _meta(value)
        elif number == 3 and isinstance(value, bytes):
            name = next((_text(v) for n, v in fields(value) if n == 1), "")
            account.setdefault("imagePullSecrets", []).append({"name": name})
    return account


DECODERS = {("v1", "Secret"): _secret, ("v1", "ServiceAccount"): _service_account}


def decode(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded object; ProtobufError for what cannot be decoded."""
    if not body.startswith(MAGIC):
        raise ProtobufError("the body does not start with the protobuf magic number")
    api_version = kind = ""
    raw = b""
    for number, value in fields(body[len(MAGIC) :]):
        if number == 1 and isinstance(value, bytes):
            for part_number, part in fields(value):
                if part_number == 1:
                    api_version = _text(part)
                elif part_number == 2:
                    kind = _text(part)
        elif number == 2 and isinstance(value, bytes):
            raw = value
    decoder = DECODERS.get((api_version, kind))
    if decoder is None:
        raise ProtobufError(f"the protobuf encoding of {api_version} {kind} is not served")
    return {"apiVersion": api_version, "kind": kind, **decoder(raw)}
