"""Access tokens shaped as Entra ID issues them: JWTs (header.claims.signature, base64url).

Clients read the claims without verifying the signature: the Azure CLI takes the tenant (``tid``)
and object id (``oid``) of a managed identity from its token, kubelogin and MSAL the expiry. The
emulator signs with HMAC-SHA256 under a key of its own; services that accept a token look it up
by its exact text in the state, so a token edited by hand is never accepted.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def encode(claims: dict[str, Any], key: bytes, *, kid: str = "emulator") -> str:
    header = {"typ": "JWT", "alg": "HS256", "kid": kid}
    signing_input = ".".join(
        _b64(json.dumps(part, separators=(",", ":")).encode()) for part in (header, claims)
    )
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


def claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, unverified (as a client reads them); ValueError if it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    padded = parts[1] + "=" * (-len(parts[1]) % 4)
    decoded = json.loads(base64.urlsafe_b64decode(padded))
    if not isinstance(decoded, dict):
        raise ValueError("JWT claims are not an object")
    return decoded
