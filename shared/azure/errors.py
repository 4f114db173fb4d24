"""Translates azure-core exceptions into the product's own (never leaking response bodies)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from shared.errors import Busy, Forbidden, NotFound, Throttled, TransientError, Unreachable

# 409 codes that mean "another operation is running", not "this conflicts": retry later.
BUSY_CODES = frozenset(
    {"operationnotallowed", "anotheroperationinprogress", "conflictingoperationinprogress"}
)

# ARM's 401 for a token issued for another resource (Graph, Key Vault, another cloud's ARM).
WRONG_AUDIENCE = "InvalidAuthenticationTokenAudience"


@contextmanager
def translated(resource_id: str, *, doing: str) -> Iterator[None]:
    """Map SDK errors raised while ``doing`` something to ``resource_id``."""
    from azure.core.exceptions import (
        ClientAuthenticationError,
        HttpResponseError,
        ResourceNotFoundError,
        ServiceRequestError,
    )

    try:
        yield
    except ResourceNotFoundError as exc:
        raise NotFound(f"{resource_id} was not found", resource_id=resource_id) from exc
    except ClientAuthenticationError as exc:
        code = getattr(exc.error, "code", None) or ""
        if code.lower() == WRONG_AUDIENCE.lower():
            # Not a missing role: the token was minted for another service or cloud.
            raise Forbidden(
                f"Azure refused the app's token to {doing} {resource_id} ({WRONG_AUDIENCE}): "
                "it was issued for another audience; AZURE_CLOUD (or ARM_ENDPOINT and "
                "GRAPH_ENDPOINT for a custom cloud) must name the cloud the app runs in",
                resource_id=resource_id,
            ) from exc
        raise Forbidden(
            f"the app's identity is not authorized for {doing} on {resource_id}"
            + (f" ({code})" if code else ""),
            resource_id=resource_id,
        ) from exc
    except HttpResponseError as exc:
        status = exc.status_code or 0
        code = getattr(exc.error, "code", None) or exc.reason or str(status)
        if status == 403:
            raise Forbidden(
                f"the app's identity may not {doing} {resource_id} ({code})",
                resource_id=resource_id,
            ) from exc
        if status == 404:
            raise NotFound(
                f"{resource_id} was not found ({code})", resource_id=resource_id
            ) from exc
        if status == 429:
            raise Throttled(f"{doing} {resource_id} was throttled ({code})") from exc
        if status >= 500:
            raise TransientError(f"{doing} {resource_id} failed with {status} {code}") from exc
        if (status == 409 and code.lower() in BUSY_CODES) or status == 412:
            raise Busy(
                f"{resource_id} is busy with another operation, so we could not {doing} it "
                f"({status} {code})",
                resource_id=resource_id,
                code=code,
            ) from exc
        raise
    except ServiceRequestError as exc:
        raise Unreachable(
            f"could not reach Azure to {doing} {resource_id}", resource_id=resource_id
        ) from exc
