"""Ticket failures: permanent ones (:class:`TicketError`) need a person; throttling and outages
raise :class:`~shared.errors.TransientError` and are retried later. Messages name the system, the
status and the setting to check, never a credential.
"""

from __future__ import annotations

from collections.abc import Collection

from shared.azure.http_json import JsonResponse
from shared.errors import RemediatorError, TransientError
from shared.tickets.redact import redact_text


class TicketError(RemediatorError):
    """The ticket system refused the request; retrying will not help."""

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class TicketAuthError(TicketError):
    """The ticket system rejected the credential (missing, wrong, expired or without access)."""


def raise_for(
    response: JsonResponse,
    *,
    system: str,
    doing: str,
    ok: Collection[int] = (200, 201),
    auth: Collection[int] = (401, 403),
    credential_hint: str,
) -> None:
    """Raise the error that ``response`` means, or return when its status is in ``ok``."""
    status = response.status
    if status in ok:
        return
    detail = redact_text(_message(response))[:300]
    if status in auth:
        raise TicketAuthError(
            f"{system} rejected the credential while trying to {doing} ({status}"
            f"{': ' + detail if detail else ''}); check {credential_hint}",
            status=status,
        )
    if status == 429 or status >= 500:
        raise TransientError(f"{system} failed to {doing}: {status} {detail}".rstrip())
    raise TicketError(f"{system} refused to {doing}: {status} {detail}".rstrip(), status=status)


def _message(response: JsonResponse) -> str:
    body = response.body
    if isinstance(body, dict):
        message = str(body.get("message") or body.get("error") or "")
        errors = body.get("errors")
        if isinstance(errors, list) and errors:
            message += " " + "; ".join(
                str(e.get("message") or e.get("code")) if isinstance(e, dict) else str(e)
                for e in errors
            )
        return message.strip()
    if response.text and not response.text.lstrip().startswith("<"):
        return response.text.strip()
    return ""
