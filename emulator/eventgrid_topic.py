"""Event Grid custom topics (CloudEvents 1.0 input schema), the publishing side.

``POST /eventgrid/topics/<name>/api/events?api-version=2018-01-01`` stands for a topic's
``https://<name>.<region>-1.eventgrid.azure.net/api/events``. It accepts a CloudEvents batch
(``application/cloudevents-batch+json``) or one event (``application/cloudevents+json``),
authenticated by ``aeg-sas-key: <topic key>`` or ``Authorization: Bearer <token>`` issued by the
emulator's identity endpoint for ``https://eventgrid.azure.net`` (401 otherwise, as Event Grid
answers). Each event must have specversion "1.0", id, source and type (400 otherwise); a request
over 1 MB is 413. Accepted events are kept in ``state.eventgrid_topics[name]["events"]`` in
arrival order. Faults: ``emu.inject(r"/eventgrid/topics/", status=500)``.
"""

from __future__ import annotations

import hmac
import json
import re
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from emulator.state import Json, State
from emulator.tickets import routed

if TYPE_CHECKING:
    from emulator.server import Emulator

API_VERSIONS = ("2018-01-01",)
AUDIENCE = "https://eventgrid.azure.net"
MAX_REQUEST_BYTES = 1024 * 1024
_EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
_CONTEXT = frozenset(
    {
        "specversion",
        "id",
        "source",
        "type",
        "subject",
        "time",
        "datacontenttype",
        "dataschema",
        "data",
        "data_base64",
    }
)


def register(emulator: Emulator) -> None:
    topics = Topics(emulator.state)
    rule = "/eventgrid/topics/<name>/api/events"
    emulator.mount(rule, "eventgrid", routed(rule, topics.publish), ["POST"])


def add_topic(state: State, name: str) -> str:
    """Create the topic (idempotent) and return its access key."""
    with state.lock:
        topic = state.eventgrid_topics.setdefault(
            name.lower(), {"name": name, "key": secrets.token_urlsafe(32), "events": []}
        )
        return str(topic["key"])


def topic_endpoint(base_url: str, name: str) -> str:
    return f"{base_url}/eventgrid/topics/{name}/api/events"


def topic_environment(
    emulator: Emulator, name: str = "outcomes", *, auth: str = "key"
) -> dict[str, str]:
    """App settings that publish outcome events to the topic ``name`` (``auth``: key or entra)."""
    key = add_topic(emulator.state, name)
    env = {"OUTCOME_TOPIC_ENDPOINT": topic_endpoint(emulator.base_url, name)}
    if auth == "key":
        env["OUTCOME_TOPIC_KEY"] = key
    return env


def topic_events(state: State, name: str = "outcomes") -> list[Json]:
    with state.lock:
        events: list[Json] = json.loads(json.dumps(state.eventgrid_topics[name.lower()]["events"]))
        return events


def _error(status: int, code: str, message: str, detail: str = "") -> Response:
    error: Json = {"code": code, "message": message}
    if detail:
        error["details"] = [{"code": detail, "message": message}]
    return Response(
        json.dumps({"error": error}), status=status, content_type="application/json; charset=utf-8"
    )


class Topics:
    def __init__(self, state: State) -> None:
        self.state = state

    def publish(self, request: Request, name: str) -> Response:
        with self.state.lock:
            topic = self.state.eventgrid_topics.get(name.lower())
        host = f"{name}.westeurope-1.eventgrid.azure.net"
        if topic is None:
            return _error(404, "NotFound", f"The topic {host} was not found.")
        if not self._authorized(request, topic):
            return _error(
                401,
                "Unauthorized",
                f"The request authorization key is not authorized for {host.upper()}. This is due to "
                "the reason: The specified key does not match the topic key or the token is not valid.",
            )
        version = request.args.get("api-version")
        if version not in API_VERSIONS:
            return _error(
                400,
                "BadRequest",
                f"The api-version '{version}' is invalid. The supported versions are "
                f"'{', '.join(API_VERSIONS)}'.",
                "InvalidApiVersion",
            )
        raw = request.get_data()
        if len(raw) > MAX_REQUEST_BYTES:
            return _error(
                413,
                "RequestEntityTooLarge",
                f"The maximum size ({MAX_REQUEST_BYTES}) has been exceeded.",
            )
        content_type = request.headers.get("Content-Type", "").split(";")[0].strip().lower()
        if content_type not in (
            "application/cloudevents-batch+json",
            "application/cloudevents+json",
        ):
            return _error(
                400,
                "BadRequest",
                f"Invalid content type '{content_type}'. A CloudEvents topic accepts "
                "application/cloudevents+json or application/cloudevents-batch+json.",
                "InputJsonInvalid",
            )
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError):
            return _error(
                400, "BadRequest", "The request body is not valid JSON.", "InputJsonInvalid"
            )
        batch = content_type == "application/cloudevents-batch+json"
        events = body if batch else [body]
        if batch and not isinstance(body, list):
            return _error(
                400, "BadRequest", "A CloudEvents batch must be a JSON array.", "InputJsonInvalid"
            )
        for index, event in enumerate(events):
            problem = _problem(event)
            if problem:
                return _error(
                    400, "BadRequest", f"Event at index {index}: {problem}", "InputJsonInvalid"
                )
        with self.state.lock:
            topic["events"].extend(events)
        return Response(status=200)

    def _authorized(self, request: Request, topic: Json) -> bool:
        key = request.headers.get("aeg-sas-key")
        if key is not None:
            return hmac.compare_digest(key, topic["key"])
        auth = request.headers.get("Authorization", "")
        if not auth.startswith("Bearer "):
            return False
        with self.state.lock:
            audience = self.state.tokens.get(auth[7:])
        return audience is not None and audience.rstrip("/") == AUDIENCE


def _problem(event: Any) -> str:
    if not isinstance(event, dict):
        return "an event must be a JSON object."
    for attribute in ("id", "source", "type"):
        value = event.get(attribute)
        if not isinstance(value, str) or not value:
            return f"Required property '{attribute}' was not set."
    if event.get("specversion") != "1.0":
        return f"specversion must be '1.0', got {event.get('specversion')!r}."
    if "data" in event and "data_base64" in event:
        return "An event cannot have both data and data_base64."
    time = event.get("time")
    if time is not None:
        try:
            datetime.fromisoformat(str(time).replace("Z", "+00:00"))
        except ValueError:
            return f"time {time!r} is not an RFC 3339 timestamp."
    for name in event:
        if name not in _CONTEXT and not _EXTENSION_NAME.match(name):
            return f"Extension attribute name {name!r} must be 1-20 lowercase letters or digits."
    return ""
