"""Failures the engine tells apart: what a check reports as UNKNOWN vs what Event Grid retries."""

from __future__ import annotations


class RemediatorError(Exception):
    """Base of every error this product raises on purpose."""


class ConfigurationError(RemediatorError):
    """An app setting or policy file is invalid; nothing runs until it is fixed."""


class ReadError(RemediatorError):
    """A resource could not be read; checks turn this into UNKNOWN with :attr:`reason`."""

    def __init__(self, reason: str, *, resource_id: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.resource_id = resource_id


class NotFound(ReadError):
    """The resource does not exist (ARM 404)."""


class Forbidden(ReadError):
    """The app's identity lacks a permission (ARM 401/403)."""


class Unreachable(ReadError):
    """A data plane (cluster API, registry) could not be reached."""


class WriteRejected(RemediatorError):
    """Azure (or a cluster's API) refused a change as invalid or conflicting (400/409/422): a
    permanent error for this attempt, not one to retry. Its message never carries request bodies."""

    def __init__(self, reason: str, *, resource_id: str = "", code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.resource_id = resource_id
        self.code = code


class PrincipalNotFoundError(WriteRejected):
    """ARM refused a role assignment: 400 ``PrincipalNotFound``. Either the principal does not
    exist (deleted, or a client id given where the object id belongs) or Entra ID has not yet
    replicated a principal created moments ago; the caller tells which."""

    def __init__(self, reason: str, *, principal_id: str, resource_id: str = "") -> None:
        super().__init__(reason, resource_id=resource_id, code="PrincipalNotFound")
        self.principal_id = principal_id


class TransientError(RemediatorError):
    """Throttling or a server error that outlived the SDK's retries: the trigger should retry."""


class Throttled(TransientError):
    """Azure answered 429 more often than the retries allow: the unit of work is handed over
    (to the queue, or Event Grid's redelivery), never reported as a finding."""


class Busy(TransientError):
    """The resource is in the middle of another operation (AKS answers 409 OperationNotAllowed
    during an upgrade, a scale or another reconcile; 412 when it changed under our If-Match):
    nothing was changed, and the same action may succeed later."""

    def __init__(self, reason: str, *, resource_id: str = "", code: str = "") -> None:
        super().__init__(reason)
        self.reason = reason
        self.resource_id = resource_id
        self.code = code


class Replicating(Busy):
    """A principal that exists was not yet known to ARM after waiting for Entra ID's replication:
    nothing was changed, and the same action will succeed on a later delivery."""
