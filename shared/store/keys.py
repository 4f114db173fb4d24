"""Table keys and safe column values.

Table keys may not contain ``/ \\ # ?`` or control characters, so resource ids become the
sha256 of their lower-cased, trimmed form (ARM ids are case-insensitive); the readable id is kept
in a column. JSON columns stay well below the 64 KiB property limit, truncated as valid JSON,
and strings under secret-looking names (password, secret, token, ...) are redacted before
anything is written: a safety net, the callers must not pass secrets in the first place.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

MAX_JSON_CHARS = 30_000  # UTF-16 code units; a Table string property holds 32 K
MAX_TEXT_CHARS = 4_000
_MAX_TICKS = 10**19  # > microseconds between year 1 and 9999: fixed width keys
_SECRET_NAME = re.compile(
    r"pass(word|wd)|secret|token|dockerconfig|credential(s)?$|accountkey|sharedaccess|apikey",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def resource_key(resource_id: str) -> str:
    return hashlib.sha256(resource_id.strip().rstrip("/").lower().encode()).hexdigest()


def text_key(value: str) -> str:
    """A key for any string (event ids, fingerprints): sha256 hex, exact (case-sensitive)."""
    return hashlib.sha256(value.encode()).hexdigest()


def inverted_key(when: datetime) -> str:
    """Sorts newest first: fixed-width (max - microseconds since epoch) plus a random suffix."""
    delta = when.astimezone(UTC) - datetime(1, 1, 1, tzinfo=UTC)
    micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{_MAX_TICKS - micros:019d}-{uuid.uuid4().hex}"


def date_partition(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%d")


def redact(value: Any) -> Any:
    """A copy where strings under secret-looking keys are replaced (nested values are walked)."""
    if isinstance(value, Mapping):
        return {
            str(k): REDACTED
            if isinstance(v, str) and v and _SECRET_NAME.search(str(k))
            else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    return value


def to_json(value: Mapping[str, Any]) -> str:
    """Redacted compact JSON; if too long, a valid JSON stub with a preview and the full size."""
    text = json.dumps(redact(value), sort_keys=True, default=str, separators=(",", ":"))
    if _utf16_len(text) <= MAX_JSON_CHARS:
        return text
    preview = text[: MAX_JSON_CHARS // 2]
    while _utf16_len(json.dumps(preview)) > MAX_JSON_CHARS - 200:
        preview = preview[: len(preview) * 3 // 4]
    return json.dumps({"_truncated": True, "_length": len(text), "preview": preview})


def from_json(text: str | None) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        return {"_unreadable": text[:200]}
    return value if isinstance(value, dict) else {"value": value}


def clip(text: str | None, limit: int = MAX_TEXT_CHARS) -> str:
    text = text or ""
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2
