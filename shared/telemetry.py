"""Metrics and traces with OpenTelemetry, exported to Application Insights by the Azure Monitor
OpenTelemetry distro.

Cold start first: nothing here imports OpenTelemetry at module import, and nothing is set up
unless ``APPLICATIONINSIGHTS_CONNECTION_STRING`` is set (the Function App has it; the command
line and most tests do not). Then the first invocation calls ``configure_azure_monitor`` once
(about 160 ms and 11 MB, measured by ``make coldstart``); until then, and without a connection
string, every call below is a no-op that costs a dictionary lookup.

Names and dimensions are :data:`METRICS` (the README's table and the workbook's queries are
checked against it). One trace per invocation (:func:`invocation`), a span per check and per
remediation, each carrying the correlation id that the outcome events and the audit log use.
"""

from __future__ import annotations

import contextvars
import functools
import logging
import os
import re
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, ParamSpec, TypeVar

if TYPE_CHECKING:
    from opentelemetry.metrics import Meter
    from opentelemetry.trace import Tracer

    from shared.outcome import Outcome

log = logging.getLogger(__name__)

NAME = "acr-pull-remediator"
CONNECTION_STRING = "APPLICATIONINSIGHTS_CONNECTION_STRING"
# "ClientId=<id>;Authorization=AAD" (infra/ sets it: the component refuses keys, local auth off).
AUTHENTICATION_STRING = "APPLICATIONINSIGHTS_AUTHENTICATION_STRING"
RESOURCE_DETECTORS = "OTEL_EXPERIMENTAL_RESOURCE_DETECTORS"
CORRELATION_ATTRIBUTE = "acrpull.correlation_id"

FINDINGS = "acrpull.findings"
ACTIONS = "acrpull.actions"
TICKETS = "acrpull.tickets"
VERDICT_LATENCY = "acrpull.signal.verdict_latency"
REMEDIATION_DURATION = "acrpull.remediation.duration"
EVENTGRID_LAG = "acrpull.eventgrid.lag"
SWEEP_PAIRS = "acrpull.sweep.pairs"
SWEEP_COVERAGE = "acrpull.sweep.coverage"
HANDOVERS = "acrpull.sweep.handovers"
SWEEP_SUBSCRIPTIONS = "acrpull.sweep.subscriptions"
ARM_REQUESTS = "acrpull.arm.requests"
ARM_THROTTLED = "acrpull.arm.throttled"
CREDENTIAL_DAYS_LEFT = "acrpull.credential.days_left"


# A gauge keeps the last value and may be negative; a histogram may not, and exports the sum
# of an interval's recordings, not the latest one.
MetricKind = Literal["counter", "histogram", "gauge"]


@dataclass(frozen=True)
class Metric:
    kind: MetricKind  # the instrument: meter.create_<kind>
    unit: str
    dimensions: tuple[str, ...]
    description: str


METRICS: dict[str, Metric] = {
    FINDINGS: Metric(
        "counter",
        "{finding}",
        ("cause", "status", "cluster", "source"),
        "check results after root-cause ordering, one per check per outcome",
    ),
    ACTIONS: Metric(
        "counter",
        "{action}",
        ("action", "outcome", "cause", "cluster", "source"),
        "remediations run (applied, failed, in-progress, deferred) and planned in dry-run",
    ),
    TICKETS: Metric(
        "counter",
        "{ticket}",
        ("state", "cause", "cluster", "source"),
        "tickets opened, updated (a recurrence) and closed",
    ),
    VERDICT_LATENCY: Metric(
        "histogram",
        "s",
        ("source", "verdict"),
        "from the signal's eventTime (or a sweep's start) to the outcome's verdict",
    ),
    REMEDIATION_DURATION: Metric(
        "histogram",
        "s",
        ("action", "outcome", "cause", "cluster"),
        "from the re-check before a fix to its verification (time to remediate)",
    ),
    EVENTGRID_LAG: Metric(
        "histogram",
        "s",
        ("source", "event_type"),
        "from an event's eventTime to the start of its delivery to the function",
    ),
    SWEEP_PAIRS: Metric(
        "counter",
        "{task}",
        ("sweep", "state"),
        "a sweep's tasks: known (planned), checked (done here), handed-over (to the queue)",
    ),
    SWEEP_COVERAGE: Metric(
        "histogram",
        "1",
        ("sweep",),
        "per sweep run or batch invocation: tasks checked / tasks known (1.0 when nothing was handed over)",
    ),
    HANDOVERS: Metric(
        "counter",
        "{message}",
        ("sweep",),
        "tasks handed to the sweep-handover queue (budget spent, deferred, transient failure)",
    ),
    SWEEP_SUBSCRIPTIONS: Metric(
        "counter",
        "{subscription}",
        ("sweep", "state", "subscription"),
        "each subscription in scope, per planner run (and per worker that plans an inventory handed over): planned, handed-over (a worker takes its inventory) or unreadable (swept by nobody)",
    ),
    ARM_REQUESTS: Metric(
        "counter",
        "{request}",
        ("service", "method", "status_class"),
        "HTTP attempts to Azure Resource Manager and Microsoft Graph, retries included",
    ),
    ARM_THROTTLED: Metric(
        "counter",
        "{request}",
        ("service",),
        "attempts answered 429 Too Many Requests",
    ),
    CREDENTIAL_DAYS_LEFT: Metric(
        "gauge",
        "d",
        ("kind", "owner", "credential"),
        "days left of each secret or token password a check or the expiry sweep read (negative: expired)",
    ),
}

T = TypeVar("T")
P = ParamSpec("P")


@dataclass
class _State:
    meter: Meter | None = None
    tracer: Tracer | None = None
    instruments: dict[str, Any] = field(default_factory=dict)
    tried: bool = False


_state = _State()
_lock = threading.Lock()


@dataclass(frozen=True)
class Invocation:
    source: str
    correlation_id: str
    started: float  # time.time()
    signal_time: datetime | None = None


_invocation: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar(
    "acrpull_invocation", default=None
)


# -- set-up --------------------------------------------------------------------------------------


def setup(env: Mapping[str, str] | None = None) -> bool:
    """Configure the Azure Monitor distro once, when a connection string is set; True if on."""
    if _state.meter is not None:
        return True
    env = os.environ if env is None else env
    connection = env.get(CONNECTION_STRING, "").strip()
    if not connection or _state.tried:
        return False
    with _lock:
        if _state.tried:
            return _state.meter is not None
        _state.tried = True
        # The distro's default resource detectors include the Azure VM one, which asks the
        # instance metadata service (169.254.169.254) unless it sees App Service or Functions:
        # only the App Service detector (environment variables) is wanted here, anywhere.
        os.environ.setdefault(RESOURCE_DETECTORS, "azure_app_service")
        try:
            from azure.monitor.opentelemetry import configure_azure_monitor
            from opentelemetry import metrics, trace

            configure_azure_monitor(
                connection_string=connection,
                **_credential(env.get(AUTHENTICATION_STRING, "")),
                # The Functions host already ships the worker's logs to Application Insights.
                disable_logging=True,
                enable_live_metrics=False,
                # Azure SDK calls become dependency spans; raw HTTP would count them twice.
                instrumentation_options={
                    name: {"enabled": False}
                    for name in (
                        "django",
                        "fastapi",
                        "flask",
                        "psycopg2",
                        "requests",
                        "urllib",
                        "urllib3",
                    )
                },
            )
        except Exception:  # telemetry never stops the work
            log.exception("telemetry is off: the Azure Monitor distro could not be configured")
            return False
        _use(metrics.get_meter(NAME), trace.get_tracer(NAME))
    return True


def _credential(authentication: str) -> dict[str, Any]:
    """Entra ID auth for the ingestion endpoint: the app's user-assigned identity, as the host
    uses it. Without the setting (locally), the connection string's key is used."""
    fields = dict(part.split("=", 1) for part in authentication.split(";") if "=" in part)
    if fields.get("Authorization", "").upper() != "AAD":
        return {}
    from azure.identity import ManagedIdentityCredential

    client_id = fields.get("ClientId") or None
    return {"credential": ManagedIdentityCredential(client_id=client_id)}


def use_providers(meter_provider: Any, tracer_provider: Any) -> None:
    """Send metrics and spans to these providers (tests: in-memory reader and exporter)."""
    with _lock:
        _use(meter_provider.get_meter(NAME), tracer_provider.get_tracer(NAME))


def reset() -> None:
    """Back to off (tests)."""
    with _lock:
        _state.meter = _state.tracer = None
        _state.instruments.clear()
        _state.tried = False


def _use(meter: Meter, tracer: Tracer) -> None:
    _state.meter, _state.tracer = meter, tracer
    _state.instruments.clear()


def enabled() -> bool:
    return _state.meter is not None


# -- recording -----------------------------------------------------------------------------------


def count(metric: str, value: int = 1, /, **dimensions: str) -> None:
    instrument = _instrument(metric)
    attributes = _attributes(metric, dimensions) if instrument is not None else None
    if attributes is not None:
        instrument.add(value, attributes)


def record(metric: str, value: float, /, **dimensions: str) -> None:
    instrument = _instrument(metric)
    attributes = _attributes(metric, dimensions) if instrument is not None else None
    if attributes is None:
        return
    if METRICS[metric].kind == "gauge":
        instrument.set(value, attributes)
    else:
        instrument.record(value, attributes)


def _instrument(name: str) -> Any:
    meter = _state.meter
    if meter is None:
        return None
    instrument = _state.instruments.get(name)
    if instrument is None:
        spec = METRICS[name]
        make = getattr(meter, f"create_{spec.kind}")
        instrument = _state.instruments.setdefault(
            name, make(name, unit=spec.unit, description=spec.description)
        )
    return instrument


def _attributes(name: str, dimensions: Mapping[str, str]) -> dict[str, str] | None:
    """The dimensions as attributes; None (nothing recorded, an error logged) when they are
    not the declared ones: the README and the workbook's queries promise those names."""
    if set(dimensions) != set(METRICS[name].dimensions):
        log.error(
            "metric %s: dimensions %s are not %s",
            name,
            sorted(dimensions),
            METRICS[name].dimensions,
        )
        return None
    return {k: str(v) for k, v in dimensions.items()}


# -- traces --------------------------------------------------------------------------------------


@contextmanager
def invocation(
    source: str, *, signal_time: datetime | None = None, event_type: str | None = None
) -> Iterator[Invocation]:
    """One function invocation: its trace's root span and its correlation id.

    Nested calls (a sweep's tasks) stay in the outer invocation. With ``signal_time`` and
    ``event_type`` the Event Grid lag is recorded.
    """
    current = _invocation.get()
    if current is not None:
        yield current
        return
    setup()
    started = time.time()
    here = Invocation(source, str(uuid.uuid4()), started, signal_time)
    token = _invocation.set(here)
    if signal_time is not None and event_type is not None:
        record(
            EVENTGRID_LAG,
            max(0.0, started - signal_time.timestamp()),
            source=source,
            event_type=event_type,
        )
    try:
        with span(f"invocation {source}", **{"faas.trigger": source}):
            yield here
    finally:
        _invocation.reset(token)


def invoked(
    default_source: str, *, event: bool = False
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Run the decorated entry point as one invocation; its ``source`` keyword names it. With
    ``event`` the first argument is the delivered event: its time gives the Event Grid lag."""

    def decorate(entry: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(entry)
        def run(*args: P.args, **kwargs: P.kwargs) -> T:
            source = str(kwargs.get("source") or default_source)
            payload = args[0] if event and args else None
            with invocation(
                source, signal_time=event_time(payload), event_type=_event_type(payload)
            ):
                return entry(*args, **kwargs)

        return run

    return decorate


def current() -> Invocation | None:
    return _invocation.get()


def correlation_id() -> str:
    """The current invocation's correlation id, or a new one outside an invocation."""
    here = _invocation.get()
    return here.correlation_id if here is not None else str(uuid.uuid4())


@contextmanager
def span(name: str, **attributes: str) -> Iterator[Any]:
    tracer = _state.tracer
    if tracer is None:
        yield None
        return
    here = _invocation.get()
    if here is not None:
        attributes = {CORRELATION_ATTRIBUTE: here.correlation_id, **attributes}
    with tracer.start_as_current_span(name, attributes=attributes) as current_span:
        yield current_span


def in_context(work: Callable[..., T]) -> Callable[..., T]:
    """``work`` bound to the caller's context (the invocation and its current span), for a
    thread pool: threads do not inherit context variables."""
    captured = contextvars.copy_context()
    return lambda *args: captured.copy().run(work, *args)


# -- what an outcome says ------------------------------------------------------------------------


def outcome(result: Outcome) -> None:
    """Findings, actions, tickets and the verdict latency of one outcome."""
    if not enabled():
        return
    here = _invocation.get()
    source = here.source if here else "unknown"
    cluster = (result.cluster_id or "").rsplit("/", 1)[-1]
    for finding in result.findings:
        count(
            FINDINGS,
            cause=finding.cause_id,
            status=finding.status.value,
            cluster=cluster,
            source=source,
        )
        _credential_days(finding.evidence)
    for handled in result.handled:
        cause = handled.finding.cause_id
        if handled.action is not None:
            count(
                ACTIONS,
                action=handled.action.action_id,
                outcome=handled.action.status,
                cause=cause,
                cluster=cluster,
                source=source,
            )
        elif handled.plan is not None:
            count(
                ACTIONS,
                action=handled.plan.action_id,
                outcome="planned",
                cause=cause,
                cluster=cluster,
                source=source,
            )
        if handled.ticket is not None:
            count(
                TICKETS,
                state=_ticket_state(handled.ticket),
                cause=cause,
                cluster=cluster,
                source=source,
            )
    if here is not None:
        since = here.signal_time.timestamp() if here.signal_time else here.started
        record(
            VERDICT_LATENCY,
            max(0.0, time.time() - since),
            source=source,
            verdict=result.verdict.value,
        )


def _credential_days(evidence: Mapping[str, Any]) -> None:
    from shared.report.collect import credentials_in

    now = datetime.now(UTC)
    for credential in credentials_in(evidence):
        left = credential.days_left(now)
        if left is not None:
            record(
                CREDENTIAL_DAYS_LEFT,
                left,
                kind=credential.kind,
                owner=credential.owner,
                credential=credential.name,
            )


def _ticket_state(ticket: Any) -> str:
    if not getattr(ticket, "is_open", True):
        return "closed"
    return "opened" if getattr(ticket, "is_new", False) else "updated"


@contextmanager
def remediation(action_id: str, cause_id: str, cluster: str) -> Iterator[Callable[[str], None]]:
    """A span around one fix and its verification; call the yielded function with the outcome
    (applied, failed, verified, ...) to record the time to remediate."""
    started = time.monotonic()
    said: list[str] = []
    with span(
        f"remediate {action_id}", **{"acrpull.action": action_id, "acrpull.cause": cause_id}
    ) as current_span:
        yield said.append
        result = said[-1] if said else "unknown"
        if current_span is not None:
            current_span.set_attribute("acrpull.outcome", result)
    record(
        REMEDIATION_DURATION,
        time.monotonic() - started,
        action=action_id,
        outcome=result,
        cause=cause_id,
        cluster=cluster,
    )


def sweep(kind: str, *, known: int, checked: int, handed_over: int) -> None:
    count(SWEEP_PAIRS, known, sweep=kind, state="known")
    count(SWEEP_PAIRS, checked, sweep=kind, state="checked")
    count(SWEEP_PAIRS, handed_over, sweep=kind, state="handed-over")
    if handed_over:
        count(HANDOVERS, handed_over, sweep=kind)
    if known:
        record(SWEEP_COVERAGE, checked / known, sweep=kind)


def swept_subscription(kind: str, *, state: str, subscription: str) -> None:
    """What a planner (or a worker planning a handed-over inventory) did with a subscription."""
    count(SWEEP_SUBSCRIPTIONS, 1, sweep=kind, state=state, subscription=subscription)


def http_response(service: str) -> Callable[[Any], None]:
    """An azure-core ``raw_response_hook``: count every attempt, and the 429s."""

    def hook(pipeline_response: Any) -> None:
        if not enabled():
            return
        status = int(getattr(pipeline_response.http_response, "status_code", 0) or 0)
        method = str(getattr(pipeline_response.http_request, "method", "")).upper()
        count(ARM_REQUESTS, service=service, method=method, status_class=f"{status // 100}xx")
        if status == 429:
            count(ARM_THROTTLED, service=service)

    return hook


EVENT_TYPE = re.compile(r"Microsoft\.[A-Za-z]+\.[A-Za-z]{1,60}")


def _event_type(payload: Any) -> str | None:
    """The event's type as a dimension: an Azure type name, else ``other`` (a dimension's
    values must stay few; a hostile payload must not mint new ones)."""
    if not isinstance(payload, Mapping):
        return None
    kind = payload.get("eventType") or payload.get("type")
    return kind if isinstance(kind, str) and EVENT_TYPE.fullmatch(kind) else "other"


def event_time(payload: Any) -> datetime | None:
    """``eventTime`` (Event Grid schema) or ``time`` (CloudEvents) of a delivered event."""
    if not isinstance(payload, Mapping):
        return None
    raw = payload.get("eventTime") or payload.get("time")
    if not isinstance(raw, str):
        return None
    try:
        moment = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
