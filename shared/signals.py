"""Typed signals parsed from wire payloads (Event Grid schema or CloudEvents 1.0).

Event Grid delivers at least once and unordered, and real payloads mix ``resourcegroups`` and
``resourceGroups``: parsing keeps ids as sent and every comparison is case-insensitive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import RemediatorError

MAX_FIELD_LENGTH = 2048


class BadSignal(RemediatorError):
    """A payload that cannot be acted on; the trigger logs it and drops it."""


@dataclass(frozen=True)
class ResourceEvent:
    """An Azure Resource Manager operation event from a subscription system topic."""

    id: str
    event_type: str
    operation_name: str
    resource_id: str
    subscription_id: str
    tenant_id: str
    status: str
    subject: str

    def is_operation(self, name: str) -> bool:
        return self.operation_name.lower() == name.lower()


def parse_resource_event(payload: Mapping[str, Any]) -> ResourceEvent:
    """Parse one event in either schema; raise :class:`BadSignal` saying what is wrong."""
    if not isinstance(payload, Mapping):
        raise BadSignal("the event is not a JSON object")
    cloud_event = "specversion" in payload
    data = event_data(payload)
    fields = {
        "id": payload.get("id"),
        "event_type": payload.get("type" if cloud_event else "eventType"),
        "subject": payload.get("subject"),
        "operation_name": data.get("operationName"),
        "resource_id": data.get("resourceUri"),
        "subscription_id": data.get("subscriptionId"),
        "tenant_id": data.get("tenantId", ""),
        "status": data.get("status", ""),
    }
    for name, value in fields.items():
        if not isinstance(value, str):
            raise BadSignal(f"the event field {name} is missing or not a string")
        if len(value) > MAX_FIELD_LENGTH:
            raise BadSignal(f"the event field {name} is longer than {MAX_FIELD_LENGTH} characters")
    return ResourceEvent(**{k: str(v) for k, v in fields.items()})


def event_data(payload: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event's ``data`` object. Captured ACR deliveries carry it as a JSON *string* holding
    the object (rest-examples/eventgrid/captures/): that is decoded, anything else is refused."""
    import json

    data = payload.get("data")
    if isinstance(data, str) and len(data) <= MAX_EVENT_BYTES:
        try:
            data = json.loads(data)
        except ValueError:
            raise BadSignal("the event's data is a string that is not JSON") from None
    if not isinstance(data, Mapping):
        raise BadSignal("the event has no data object")
    return data


# -- registry system topic (ImagePushed / ImageDeleted) -------------------------------------------

# Event Grid refuses events larger than 1 MB; anything bigger did not come from Event Grid.
MAX_EVENT_BYTES = 1024 * 1024
_REGISTRY_TYPE = "microsoft.containerregistry/registries"


@dataclass(frozen=True)
class RegistryImageEvent:
    """An image pushed to or deleted from a container registry (its system topic)."""

    id: str
    event_type: str
    registry_id: str  # the topic (Event Grid schema) or source (CloudEvents): the registry
    subscription_id: str
    action: str  # "push" / "delete"
    repository: str
    tag: str | None
    digest: str | None
    host: str  # data.request.host: the login server the client talked to

    @property
    def reference(self) -> str:
        """``repository:tag`` or ``repository@digest``, as the event names the image."""
        if self.tag:
            return f"{self.repository}:{self.tag}"
        return f"{self.repository}@{self.digest}"

    def image(self, login_server: str) -> str:
        """The pushed image as a pod would name it, on the registry's login server."""
        return f"{login_server.lower()}/{self.reference}"


def check_size(payload: Mapping[str, Any]) -> None:
    """Raise :class:`BadSignal` for a payload larger than Event Grid ever delivers."""
    import json

    try:
        size = len(json.dumps(payload, separators=(",", ":"), default=str).encode())
    except (TypeError, ValueError) as exc:
        raise BadSignal(f"the event cannot be serialized ({exc})") from None
    if size > MAX_EVENT_BYTES:
        raise BadSignal(f"the event is {size} bytes, larger than Event Grid's {MAX_EVENT_BYTES}")


def parse_registry_event(
    payload: Mapping[str, Any], *, handled_types: frozenset[str]
) -> RegistryImageEvent:
    """Parse a registry image event in either schema; raise :class:`BadSignal` saying why not.

    Every string that later reaches a URL, a log line or a ticket is checked here: repository,
    tag, digest and host against the Docker reference grammar, ids against control characters
    and :data:`MAX_FIELD_LENGTH`.
    """
    from shared.images import InvalidImageReference, is_host, is_reference, is_repository
    from shared.resource_id import ResourceId

    if not isinstance(payload, Mapping):
        raise BadSignal("the event is not a JSON object")
    check_size(payload)
    cloud_event = "specversion" in payload
    event_id = _text(payload, "id")
    event_type = _text(payload, "type" if cloud_event else "eventType")
    if event_type not in handled_types:
        raise BadSignal(f"event type {_shown(event_type)} is not handled")
    topic = _text(payload, "source" if cloud_event else "topic")
    data = event_data(payload)
    target, request = data.get("target"), data.get("request")
    if not isinstance(target, Mapping) or not isinstance(request, Mapping):
        raise BadSignal("the event has no data.target or data.request object")
    try:
        registry = ResourceId.parse(topic)
    except ValueError:
        raise BadSignal("the event's topic is not a registry resource id") from None
    if registry.full_type.lower() != _REGISTRY_TYPE or registry.child:
        raise BadSignal(f"the event's topic is a {_shown(registry.full_type)}, not a registry")
    repository = _text(target, "repository")
    tag = _optional_text(target, "tag")
    digest = _optional_text(target, "digest")
    host = _text(request, "host").lower()
    action = _optional_text(data, "action") or ""
    try:
        if not is_repository(repository):
            raise InvalidImageReference(f"invalid repository {_shown(repository)}")
        if tag is not None and (":" in tag or not is_reference(tag)):
            raise InvalidImageReference(f"invalid tag {_shown(tag)}")
        if digest is not None and (":" not in digest or not is_reference(digest)):
            raise InvalidImageReference(f"invalid digest {_shown(digest)}")
        if not is_host(host):
            raise InvalidImageReference(f"invalid registry host {_shown(host)}")
    except InvalidImageReference as exc:
        raise BadSignal(str(exc)) from None
    if tag is None and digest is None:
        raise BadSignal("the event names neither a tag nor a digest")
    return RegistryImageEvent(
        id=event_id,
        event_type=event_type,
        registry_id=str(registry),
        subscription_id=registry.subscription_id,
        action=action,
        repository=repository,
        tag=tag,
        digest=digest,
        host=host,
    )


def _text(fields: Mapping[str, Any], name: str) -> str:
    value = fields.get(name)
    if not isinstance(value, str) or not value:
        raise BadSignal(f"the event field {name} is missing or not a string")
    return _clean(name, value)


def _optional_text(fields: Mapping[str, Any], name: str) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise BadSignal(f"the event field {name} is not a string")
    return _clean(name, value)


def _clean(name: str, value: str) -> str:
    if len(value) > MAX_FIELD_LENGTH:
        raise BadSignal(f"the event field {name} is longer than {MAX_FIELD_LENGTH} characters")
    if not value.isprintable():
        raise BadSignal(f"the event field {name} holds control characters")
    return value


def _shown(value: str, limit: int = 80) -> str:
    """A value safe to put in a log line: printable ASCII, clipped."""
    text = value.encode("ascii", "backslashreplace").decode()
    return repr(text if len(text) <= limit else text[:limit] + "...")
