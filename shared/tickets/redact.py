"""Keeps secrets out of tickets, chat messages and outcome events.

Two nets, applied to every string and mapping that leaves the process:

- by key: the value of a key that names a credential (password, secret, token, auth,
  dockerconfigjson, ...) becomes ``[redacted]`` unless it is plainly not a secret (a boolean, a
  number, a date, a GUID key id);
- by shape: inside any string, JWTs, Entra ID client secrets (``xxx8Q~...``), PEM private keys,
  ``--password VALUE``-style arguments and random-looking blobs (base64/urlsafe runs mixing upper
  case, lower case and digits) become ``[redacted]``. Resource ids, digests, GUIDs, image
  references and dates have none of these shapes and are kept.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from itertools import pairwise
from typing import Any

REDACTED = "[redacted]"

_SENSITIVE_KEY = re.compile(
    r"pass(word|wd)?|pwd|secret|token|auth|credential|dockerconfig|dockercfg|private.?key"
    r"|api.?key|access.?key|account.?key|shared.?key|primary.?key|secondary.?key|sas\b|sig\b"
    r"|signature|connection.?string|cookie|(^|[_\-.])pat$|webhook.?url",
    re.IGNORECASE,
)
_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.IGNORECASE)
_JWT = re.compile(r"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]*")
_ENTRA_SECRET = re.compile(r"[A-Za-z0-9_\-.~]{3}\dQ~[A-Za-z0-9_\-.~]{20,}")
_PEM = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|$)", re.S
)
_FLAG = re.compile(
    r"(?P<flag>(?<![\w-])--?(password|passwd|client-secret|secret|token|sas-token|account-key|pat"
    r"|docker-password)(=|\s+))(?P<value>(\"[^\"]*\"|'[^']*'|[^\s\"']+))",
    re.IGNORECASE,
)
_ASSIGNMENT = re.compile(
    r"(?P<key>\b(password|passwd|secret|token|access_token|refresh_token|sig|accountkey|sharedaccesskey)"
    r"\s*[=:]\s*)(?P<value>\"[^\"]*\"|'[^']*'|[^\s;&,\"']+)",
    re.IGNORECASE,
)
_BLOB = re.compile(r"[A-Za-z0-9+/=_~.\-]{20,}")
_RUN = re.compile(r"[A-Za-z0-9]{6,}")


def is_sensitive_key(key: object) -> bool:
    return isinstance(key, str) and bool(_SENSITIVE_KEY.search(key))


def redact(value: Any) -> Any:
    """A copy of ``value`` (mappings, sequences, strings) with every secret replaced."""
    if isinstance(value, Mapping):
        return {
            str(k): _redact_sensitive(v) if is_sensitive_key(k) else redact(v)
            for k, v in value.items()
        }
    if isinstance(value, (list, tuple, set, frozenset)):
        return [redact(v) for v in value]
    if isinstance(value, str):
        return redact_text(value)
    return value


def redact_text(text: str) -> str:
    """``text`` with credential-shaped substrings replaced by ``[redacted]``."""
    text = _PEM.sub(REDACTED, text)
    text = _JWT.sub(REDACTED, text)
    text = _ENTRA_SECRET.sub(REDACTED, text)
    text = _FLAG.sub(lambda m: _keep_placeholder(m, "flag"), text)
    text = _ASSIGNMENT.sub(lambda m: _keep_placeholder(m, "key"), text)
    return _BLOB.sub(lambda m: REDACTED if _looks_random(m.group(0)) else m.group(0), text)


def _redact_sensitive(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, datetime)):
        return value
    if isinstance(value, str) and (not value or _GUID.match(value) or _is_date(value)):
        return value
    return REDACTED


def _keep_placeholder(match: re.Match[str], prefix_group: str) -> str:
    value = match.group("value")
    # "<new-password>", "$SECRET" and "***" are what a person types in; they are not secrets.
    if value.strip("\"'").startswith(("<", "$", "*", "[")):
        return match.group(0)
    return match.group(prefix_group) + REDACTED


def _looks_random(blob: str) -> bool:
    """True when an alphanumeric run mixes all three classes and switches class often.

    Random base64 switches between upper case, lower case and digits on about 60% of its
    characters; names such as ``AKSUbuntu2204gen2containerd`` switch on fewer than 20%.
    """
    for run in _RUN.findall(blob):
        classes = [_char_class(c) for c in run]
        switches = sum(1 for a, b in pairwise(classes) if a != b)
        if len(set(classes)) == 3 and switches >= 0.35 * len(run):
            return True
    return False


def _char_class(char: str) -> int:
    return 0 if char.isdigit() else 1 if char.isupper() else 2


def _is_date(value: str) -> bool:
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True
