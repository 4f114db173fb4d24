"""Waiting for ARM long-running operations without blocking a function past its budget."""

from __future__ import annotations

from typing import Any

from shared.models import OperationResult


def wait_for_operation(poller: Any, timeout: float) -> OperationResult:
    """Wait up to ``timeout`` seconds for an ARM long-running operation.

    An operation that ran and ended Failed/Canceled is an outcome (``Failed`` with its error
    code), not an error; a polling request that failed (403, 5xx...) propagates for
    :func:`~shared.azure.errors.translated` to map.
    """
    from azure.core.exceptions import HttpResponseError

    try:
        poller.wait(timeout=timeout)
        if not poller.done():
            return OperationResult("InProgress", f"still running after {timeout:.0f}s")
        poller.result()
    except HttpResponseError as exc:
        status = exc.status_code or 0
        if status and not 200 <= status < 300:
            raise
        return OperationResult("Failed", getattr(exc.error, "code", None) or "OperationFailed")
    return OperationResult("Succeeded")
