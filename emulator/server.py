"""The emulator's HTTPS server: one WSGI app on 127.0.0.1 serving every emulated service."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import ssl
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import trustme
from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from emulator.arm import Arm, ArmError, json_response
from emulator.https_server import SOCKET_KEY, HttpsServer
from emulator.registry_proxy import RegistryProxy
from emulator.state import Fault, JournalEntry, State
from emulator.throttling import kind_of

log = logging.getLogger(__name__)

Handler = Callable[[Request], Response]
REGISTRY_DOMAINS = ("*.azurecr.io", "*.azurecr.cn", "*.azurecr.us")
_LOOPBACK_HOSTS = ("127.0.0.1", "localhost")


class Emulator:
    """A local Azure: start it, point the SDKs at :attr:`base_url`, trust :attr:`ca_path`."""

    def __init__(self) -> None:
        self.state = State()
        self.arm = Arm(self.state, lambda: self.base_url)
        self._routes = Map(
            [
                Rule("/msi/token", endpoint="identity", methods=["GET"]),
                Rule("/subscriptions", endpoint="arm"),
                Rule("/tenants", endpoint="arm"),
                Rule("/subscriptions/<path:rest>", endpoint="arm"),
                # Tenant, root and management-group scopes (role definitions and assignments).
                Rule("/providers/<path:rest>", endpoint="arm"),
            ]
        )
        self._handlers: dict[str, tuple[str, Handler]] = {
            "identity": ("identity", self._identity),
            "arm": ("arm", self._arm),
        }
        self._server: HttpsServer | None = None
        self._proxy: RegistryProxy | None = None
        self._tmp = tempfile.TemporaryDirectory(prefix="azure-emulator-")
        self.ca = trustme.CA()
        self.ca_path = str(Path(self._tmp.name) / "ca.pem")
        self.ca.cert_pem.write_to_path(self.ca_path)
        from emulator.providers import register_all

        register_all(self)

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the emulator is not running")
        return f"https://127.0.0.1:{self._server.port}"

    def start(self) -> Emulator:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        # Registry host names too: the registry proxy tunnels "<name>.azurecr.io" here.
        self.ca.issue_cert("127.0.0.1", "localhost", *REGISTRY_DOMAINS).configure_cert(context)
        self._server = HttpsServer(self._wsgi, context)
        self._server.start()
        return self

    def registry_proxy(self) -> str:
        """The URL of a loopback proxy that reaches this emulator by registry host names."""
        if self._proxy is None:
            if self._server is None:
                raise RuntimeError("the emulator is not running")
            self._proxy = RegistryProxy(self._server.port)
        return self._proxy.url

    def stop(self) -> None:
        if self._proxy is not None:
            self._proxy.stop()
            self._proxy = None
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._tmp.cleanup()

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def environment(self) -> dict[str, str]:
        """App settings that point the product at this emulator."""
        return {
            "AZURE_CLOUD": "Custom",
            "ARM_ENDPOINT": self.base_url,
            "GRAPH_ENDPOINT": f"{self.base_url}/graph",
            "AZURE_CA_BUNDLE": self.ca_path,
            "REQUESTS_CA_BUNDLE": self.ca_path,
            "IDENTITY_ENDPOINT": f"{self.base_url}/msi/token",
            "IDENTITY_HEADER": self.state.identity_header,
            # The emulator answers Retry-After: 0; real Azure asks for seconds between polls.
            "LRO_POLLING_INTERVAL_SECONDS": "0",
            "ARM_RETRY_BACKOFF_SECONDS": "0",
            # Each registry's data plane (/v2/, /oauth2/) is served under /acr/<loginServer>.
            "ACR_DATA_ENDPOINT_TEMPLATE": f"{self.base_url}/acr/{{login_server}}",
            # Ticket systems (emulator/tickets.py) and the credentials they accept.
            "GITHUB_API_URL": f"{self.base_url}/github",
            "GITHUB_TOKEN": sorted(self.state.github_tokens)[0],
            "AZURE_DEVOPS_URL": f"{self.base_url}/ado",
            "AZURE_DEVOPS_PAT": sorted(self.state.ado_pats)[0],
            "TICKET_WEBHOOK_URL": f"{self.base_url}/webhooks/teams/acr-pull?api-version=2016-06-01"
            f"&sig={self.state.webhook_secrets['teams']}",
        }

    # -- extension points ------------------------------------------------------------------

    def mount(
        self, rule: str, service: str, handler: Handler, methods: list[str] | None = None
    ) -> None:
        endpoint = f"{service}:{rule}"
        self._routes.add(Rule(rule, endpoint=endpoint, methods=methods))
        self._handlers[endpoint] = (service, handler)

    def inject(
        self,
        path_pattern: str,
        *,
        method: str = "*",
        status: int | None = None,
        retry_after: int = 0,
        latency: float = 0.0,
        lro_fails: bool = False,
        times: int | None = None,
        skip: int = 0,
        after_commit: bool = False,
        drop: bool = False,
        lost_response: bool = False,
    ) -> Fault:
        """Make matching requests slow or fail; ``lro_fails`` makes matching PUT operations end Failed.

        ``skip`` lets that many matching requests through first (the Nth of a repeated call);
        ``after_commit`` serves the request (a write commits) and then answers ``status`` or, with
        ``drop``, closes the connection: a lost response. ``drop`` alone closes the connection
        before serving it, as a client timeout looks from the client. ``lost_response`` is
        ``after_commit`` by its older name.
        """
        after_commit = after_commit or lost_response
        if after_commit and status is None and not drop:
            raise ValueError("after_commit needs a status or drop")
        fault = Fault(
            method="LRO" if lro_fails else method.upper(),
            path_pattern=re.compile(path_pattern, re.IGNORECASE),
            status=status,
            retry_after=retry_after,
            latency=latency,
            lro_fails=lro_fails,
            remaining=times,
            code={
                409: "OperationNotAllowed",
                412: "PreconditionFailed",
                429: "TooManyRequests",
                500: "InternalServerError",
            }.get(status or 0, "Failure"),
            skip=skip,
            after_commit=after_commit,
            drop=drop,
        )
        return self.state.inject(fault)

    def release_faults(self) -> None:
        """End every injected latency now (its client was killed; nothing waits for it)."""
        with self.state.lock:
            faults = list(self.state.faults)
        for fault in faults:
            fault.release()

    def deny(self, scope: str) -> None:
        """Answer 403 AuthorizationFailed for every ARM request at or under ``scope``."""
        with self.state.lock:
            self.state.denied_scopes.append(scope.lower().rstrip("/"))

    def journal(self, service: str | None = None) -> list[JournalEntry]:
        with self.state.lock:
            return [e for e in self.state.journal if service is None or e.service == service]

    def clear_journal(self) -> None:
        with self.state.lock:
            self.state.journal.clear()

    # -- WSGI ------------------------------------------------------------------------------

    def _wsgi(self, environ: dict[str, Any], start_response: Any) -> Any:
        host = str(environ.get("HTTP_HOST", "")).rsplit(":", 1)[0].lower()
        if host and host not in _LOOPBACK_HOSTS:
            # A registry addressed by its own name (through the registry proxy): serve it where
            # the emulator serves every registry's data plane, /acr/<loginServer>/...
            path = str(environ.get("PATH_INFO", ""))
            if not path.startswith("/acr-storage/"):
                environ["PATH_INFO"] = f"/acr/{host}{path}"
        request = Request(environ)
        service, response, fault = "unknown", None, None
        try:
            endpoint, _ = self._routes.bind_to_environ(environ).match()
            service, handler = self._handlers[str(endpoint)]
            fault = self.state.take_fault(request.method, request.path)
            response = self._before(fault, request) or handler(request)
            response = self._after(fault, response)
        except ArmError as exc:
            response = exc.response()
        except HTTPException as exc:
            response = json_response(
                {"error": {"code": exc.name.replace(" ", ""), "message": exc.description}},
                exc.code or 500,
            )
        except Exception:  # the emulator must answer, as Azure does, even when it has a bug
            log.exception("emulator error on %s %s", request.method, request.path)
            response = json_response(
                {"error": {"code": "InternalServerError", "message": "emulator error"}}, 500
            )
        self.state.record(
            JournalEntry(
                service=service,
                method=request.method,
                path=request.path,
                api_version=request.args.get("api-version"),
                body=_body(request),
                status=0 if fault is not None and fault.drop else response.status_code,
                if_match=request.headers.get("If-Match"),
            )
        )
        if fault is not None and fault.drop:
            _drop(environ)
        return response(environ, start_response)

    def _before(self, fault: Fault | None, request: Request) -> Response | None:
        """A fault that answers instead of the service (None: let the service answer)."""
        if fault is None:
            return None
        fault.wait()
        if fault.after_commit or (fault.status is None and not fault.drop):
            return None
        if fault.drop:
            return Response(status=504)  # never sent: the connection is dropped instead
        return _fault_response(fault)

    def _after(self, fault: Fault | None, response: Response) -> Response:
        """A lost response: the service did the work, the client hears something else."""
        if fault is None or not fault.after_commit or fault.status is None:
            return response
        return _fault_response(fault)

    def _identity(self, request: Request) -> Response:
        if request.headers.get("X-IDENTITY-HEADER") != self.state.identity_header:
            return json_response(
                {"statusCode": 400, "message": "X-IDENTITY-HEADER is missing or invalid."}, 400
            )
        resource = request.args.get("resource")
        if request.args.get("api-version") != "2019-08-01" or not resource:
            return json_response(
                {"statusCode": 400, "message": "api-version=2019-08-01 and resource are required."},
                400,
            )
        expires_on = int(time.time()) + 3600
        return json_response(
            {
                "access_token": self.state.issue_token(resource),
                "expires_on": str(expires_on),
                "resource": resource,
                "token_type": "Bearer",
                "client_id": self.state.app_principal_id,
            }
        )

    def _arm(self, request: Request) -> Response:
        auth = request.headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        audience = self.state.token_audience(token)
        if audience is None:
            raise ArmError(
                401,
                "AuthenticationFailed",
                "Authentication failed. The 'Authorization' header is missing or invalid.",
            )
        # This ARM is the resource manager of a custom cloud: its audience is its own URL. A
        # token for Graph, Key Vault or the public cloud's ARM is refused, as Azure does.
        if audience.rstrip("/").lower() != self.base_url.lower():
            raise ArmError(
                401,
                "InvalidAuthenticationTokenAudience",
                "The access token has been obtained for wrong audience or resource "
                f"'{audience}'. It should exactly match with one of the allowed audiences "
                f"'{self.base_url}/'.",
            )
        limited = self._arm_limit(request)
        if limited is not None and not limited[0]:
            raise ArmError(
                429,
                "TooManyRequests",
                f"The request is throttled: the {limited[1]} limit of this principal in "
                f"subscription '{limited[2]}' is reached. Retry after the 'Retry-After' seconds.",
            ).throttled(limited[1], limited[3])
        response = self.arm.handle(request)
        if limited is not None:
            response.headers[f"x-ms-ratelimit-remaining-subscription-{limited[1]}"] = str(
                limited[4]
            )
        return response

    def _arm_limit(self, request: Request) -> tuple[bool, str, str, float, int] | None:
        """(allowed, kind, subscription, seconds to wait, remaining) when ARM's limits apply."""
        buckets = self.state.arm_buckets
        match = _SUBSCRIPTION.match(request.path)
        if buckets is None or match is None:
            return None
        kind = kind_of(request.method)
        allowed, remaining, wait = buckets.take(self.state.app_principal_id, match.group(1), kind)
        return allowed, kind, match.group(1), wait, remaining


_SUBSCRIPTION = re.compile(r"^/subscriptions/([^/]+)/", re.IGNORECASE)


def _fault_response(fault: Fault) -> Response:
    assert fault.status is not None
    headers = {"Retry-After": str(fault.retry_after)} if fault.status == 429 else {}
    return ArmError(fault.status, fault.code, "Injected fault.").response(headers)


def _drop(environ: dict[str, Any]) -> None:
    """Close the connection with no response; the server treats the error as a dropped client."""
    connection = environ.get(SOCKET_KEY)
    if connection is not None:
        with contextlib.suppress(OSError):  # already gone
            connection.shutdown(socket.SHUT_RDWR)
    raise ConnectionResetError("injected fault: connection dropped")


def _body(request: Request) -> Any:
    raw = request.get_data(cache=True, as_text=True)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        return raw
