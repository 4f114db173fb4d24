"""The ACR data plane: the Docker Registry HTTP API v2 and ACR's token service.

A real registry answers at ``https://<loginServer>/...``; the emulator serves each registry at
``https://127.0.0.1:<port>/acr/<loginServer>/...`` (the product finds it through the app setting
``ACR_DATA_ENDPOINT_TEMPLATE``). Routes, below that prefix:

- ``GET /v2/``: 401 with the bearer challenge, or 200 ``{}`` with a valid ACR access token.
- ``GET|HEAD /v2/<name>/manifests/<reference>``: content negotiation on ``Accept``;
  ``Docker-Content-Digest`` is the sha256 of the exact bytes.
- ``GET|HEAD /v2/<name>/blobs/<digest>``: ``GET`` answers 307 to a signed storage URL (served
  at ``/acr-storage/<loginServer>/<digest>``), as ACR redirects blob reads to its storage.
- ``GET /v2/<name>/tags/list?n=&last=``: ``{"name", "tags"}``, paged with a ``Link`` header whose
  path starts at ``/v2/`` exactly as ACR sends it (clients resolve it against the registry root).
- ``GET /oauth2/token?service=&scope=``: a docker login: Basic with the admin user and one of its
  passwords, a repository-scoped token and one of its passwords (granted what its scope map
  allows on each repository), a service principal's appId and secret, or ``00000000-0000-0000-0000-000000000000``
  and an ACR refresh token; anonymous only when the registry has ``anonymousPullEnabled``.
- ``POST /oauth2/exchange``: an emulator-issued AAD access token (ARM audience) for an ACR refresh
  token; ``POST /oauth2/token``: a refresh token (or username/password) for an access token.

Errors use the registry envelope ``{"errors": [{"code", "message", "detail"}]}``. Network rules
apply here as in ACR: with ``publicNetworkAccess: Disabled``, or ``defaultAction: Deny`` and no
matching ``ipRules``, every route answers 403 ``DENIED``. The client IP is the connection's
(127.0.0.1) unless a test sends the header ``X-Emulator-Client-IP`` (the product never sends it).
``emu.deny(registry_id)`` also removes the app identity's (AAD) pull rights on the data plane.

The challenge ``realm`` names the token endpoint where this emulator serves it (a real registry
names ``https://<loginServer>/oauth2/token``: the same place under this addressing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import re
import secrets
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from werkzeug.wrappers import Request, Response

from emulator.providers.containerregistry import REGISTRY, new_password
from emulator.providers.registry_tokens import find_token, token_allows, token_principal
from emulator.state import Json, State

if TYPE_CHECKING:
    from emulator.server import Emulator

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
CLIENT_IP_HEADER = "X-Emulator-Client-IP"
NULL_GUID = "00000000-0000-0000-0000-000000000000"
AUTH_MESSAGE = (
    "authentication required, visit https://aka.ms/acr/authorization for more information."
)
REFRESH_TTL, ACCESS_TTL = 3 * 3600, 75 * 60
# Audiences ACR accepts for the AAD token it exchanges (ARM, or the ACR resource itself).
AAD_AUDIENCES = (
    "https://management.azure.com",
    "https://management.core.windows.net",
    "https://containerregistry.azure.net",
)
DEFAULT_PAGE = 100
_ADMIN_ACTIONS = frozenset({"pull", "push", "delete", "metadata_read", "metadata_write", "*"})
_READER_ACTIONS = frozenset({"pull", "metadata_read"})


def register(emulator: Emulator) -> None:
    plane = AcrDataPlane(emulator.state, lambda: emulator.base_url)
    prefix = "/acr/<login_server>"
    emulator.mount(f"{prefix}/v2/", "acr", plane.base, ["GET"])
    emulator.mount(f"{prefix}/acr/v1/<path:rest>", "acr", plane.acr_v1, ["GET"])
    emulator.mount(f"{prefix}/v2/<path:rest>", "acr", plane.v2, ["GET"])
    emulator.mount(f"{prefix}/oauth2/token", "acr", plane.token, ["GET", "POST"])
    emulator.mount(f"{prefix}/oauth2/exchange", "acr", plane.exchange, ["POST"])
    emulator.mount("/acr-storage/<login_server>/<digest>", "acr-storage", plane.storage, ["GET"])


THROTTLED_MESSAGE = (
    "Too many requests. Please visit https://aka.ms/acr/skus#sku-feature-matrix to view limits "
    "of all service tiers."
)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def errors(
    status: int, code: str, message: str, detail: Any = None, headers: dict[str, str] | None = None
) -> Response:
    body = json.dumps({"errors": [{"code": code, "message": message, "detail": detail}]})
    response = Response(body, status=status, content_type="application/json; charset=utf-8")
    response.headers["Docker-Distribution-Api-Version"] = "registry/2.0"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    response = Response(
        json.dumps(body), status=status, content_type="application/json; charset=utf-8"
    )
    response.headers["Docker-Distribution-Api-Version"] = "registry/2.0"
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def _b64(data: Json) -> str:
    return (
        base64.urlsafe_b64encode(json.dumps(data, separators=(",", ":")).encode())
        .rstrip(b"=")
        .decode()
    )


def _scopes(values: list[str]) -> list[tuple[str, str, frozenset[str]]]:
    """``repository:<name>:<actions>`` (several, or space-separated in one) -> (type, name, actions)."""
    parsed = []
    for value in values:
        for scope in value.split():
            kind, _, rest = scope.partition(":")
            name, _, actions = rest.rpartition(":")
            if kind and name:
                parsed.append((kind, name, frozenset(a for a in actions.split(",") if a)))
    return parsed


class AcrDataPlane:
    def __init__(self, state: State, base_url: Callable[[], str]) -> None:
        self.state = state
        self.base_url = base_url
        self._storage_key = secrets.token_bytes(32)

    # -- plumbing ----------------------------------------------------------------------------

    @staticmethod
    def _login_server(request: Request) -> str:
        return request.path.split("/", 3)[2].lower()

    def _registry(self, login_server: str) -> Json | None:
        for resource in self.state.typed(REGISTRY):
            if resource["properties"].get("loginServer", "").lower() == login_server:
                return resource
        return None

    def _guarded(self, request: Request, serve: Callable[[Json, str], Response]) -> Response:
        """Find the registry and apply its network rules, as ACR does before anything else."""
        request.get_data(
            cache=True
        )  # form parsing then reads the cache; the journal keeps the body
        login_server = self._login_server(request)
        registry = self._registry(login_server)
        if registry is None:
            # A real client fails DNS here ("dial tcp: lookup <name>: no such host").
            return errors(404, "NOT_FOUND", f"no registry is served at {login_server}")
        client_ip = request.headers.get(CLIENT_IP_HEADER) or request.remote_addr or "127.0.0.1"
        if not _network_allows(registry, client_ip):
            return errors(
                403,
                "DENIED",
                f"client with IP '{client_ip}' is not allowed access. "
                "Refer https://aka.ms/acr/firewall to grant access.",
            )
        if "/v2/" in request.path and self._throttled(registry["id"].lower()):
            # Read operations beyond the SKU's per-minute limit; ACR's wording.
            return errors(429, "TOOMANYREQUESTS", THROTTLED_MESSAGE)
        return serve(registry, login_server)

    def _throttled(self, registry_id: str) -> bool:
        with self.state.lock:
            if registry_id not in self.state.registry_throttled:
                return False
            seen = self.state.registry_throttled[registry_id]
            self.state.registry_throttled[registry_id] = seen + 1
            return seen % 2 == 0

    def _challenge(
        self, request: Request, login_server: str, scope: str | None, error: str | None
    ) -> str:
        if _by_host(request):
            # Addressed by its own name (through the registry proxy): the realm is the registry's
            # root, as ACR's, so clients that build /oauth2/exchange from its host find it.
            realm = f"https://{login_server}/oauth2/token"
        else:
            realm = f"{request.host_url.rstrip('/')}/acr/{login_server}/oauth2/token"
        value = f'Bearer realm="{realm}",service="{login_server}"'
        if scope:
            value += f',scope="{scope}"'
        if error:
            value += f',error="{error}"'
        return value

    def _token_claims(self, token: str, login_server: str, kind: str) -> Json | None:
        with self.state.lock:
            claims = self.state.acr_tokens.get(token)
        if claims is None or claims["aud"] != login_server or claims["_kind"] != kind:
            return None
        return claims if claims["exp"] > time.time() else None

    def _issue(self, login_server: str, kind: str, subject: Json, access: list[Json]) -> str:
        now = int(time.time())
        claims: Json = {
            "jti": str(uuid.uuid4()),
            "sub": subject["sub"],
            "nbf": now,
            "iat": now,
            "exp": now + (REFRESH_TTL if kind == "refresh" else ACCESS_TTL),
            "iss": "Azure Container Registry",
            "aud": login_server,
            "version": "1.0",
            "tenant": self.state.tenant_id,
            "grant_type": "refresh_token" if kind == "refresh" else "access_token",
            "access": access,
            "_kind": kind,
            "_principal": subject,
        }
        public = {k: v for k, v in claims.items() if not k.startswith("_")}
        token = f"{_b64({'alg': 'RS256', 'typ': 'JWT', 'kid': 'EMU1'})}.{_b64(public)}.{secrets.token_urlsafe(32)}"
        with self.state.lock:
            self.state.acr_tokens[token] = claims
        return token

    def _authorized(
        self, request: Request, login_server: str, repository: str | None, action: str = "pull"
    ) -> Response | None:
        """None when the bearer token may ``action`` on ``repository``; else the registry's 401."""
        auth = request.headers.get("Authorization", "")
        claims = (
            self._token_claims(auth[7:], login_server, "access")
            if auth.startswith("Bearer ")
            else None
        )
        scope = f"repository:{repository}:{action}" if repository else None
        if claims is None:
            detail = (
                [{"Type": "repository", "Name": repository, "Action": action}]
                if repository
                else None
            )
            header = self._challenge(request, login_server, scope, None)
            return errors(401, "UNAUTHORIZED", AUTH_MESSAGE, detail, {"WWW-Authenticate": header})
        if repository is None or _grants(claims, repository, action):
            return None
        header = self._challenge(request, login_server, scope, "insufficient_scope")
        detail = [{"Type": "repository", "Name": repository, "Action": action}]
        return errors(401, "UNAUTHORIZED", AUTH_MESSAGE, detail, {"WWW-Authenticate": header})

    # -- /v2/ --------------------------------------------------------------------------------

    def base(self, request: Request) -> Response:
        def serve(registry: Json, login_server: str) -> Response:
            return self._authorized(request, login_server, None) or _json({})

        return self._guarded(request, serve)

    def v2(self, request: Request) -> Response:
        rest = request.path.split("/v2/", 1)[1]

        def serve(registry: Json, login_server: str) -> Response:
            for marker, handler in (
                ("/manifests/", self._manifest),
                ("/blobs/", self._blob),
            ):
                if marker in rest:
                    repository, reference = rest.rsplit(marker, 1)
                    denied = self._authorized(request, login_server, repository)
                    return denied or handler(request, registry, login_server, repository, reference)
            if rest == "_catalog":
                denied = self._catalog_authorized(request, login_server)
                return denied or self._catalog(request, registry, "/v2/_catalog")
            if rest.endswith("/tags/list"):
                repository = rest[: -len("/tags/list")]
                denied = self._authorized(request, login_server, repository)
                return denied or self._tags(request, registry, repository)
            return errors(404, "NOT_FOUND", "the requested resource is not found")

        return self._guarded(request, serve)

    # -- catalog and ACR's own listing API (/acr/v1/) ------------------------------------------

    def _catalog_authorized(self, request: Request, login_server: str) -> Response | None:
        auth = request.headers.get("Authorization", "")
        claims = (
            self._token_claims(auth[7:], login_server, "access")
            if auth.startswith("Bearer ")
            else None
        )
        granted = claims is not None and any(
            e["type"] == "registry" and e["name"] == "catalog" and "*" in e["actions"]
            for e in claims.get("access", [])
        )
        if granted:
            return None
        error = "insufficient_scope" if claims is not None else None
        header = self._challenge(request, login_server, "registry:catalog:*", error)
        detail = [{"Type": "registry", "Name": "catalog", "Action": "*"}]
        return errors(401, "UNAUTHORIZED", AUTH_MESSAGE, detail, {"WWW-Authenticate": header})

    def _repositories(self, registry: Json) -> list[str]:
        with self.state.lock:
            return sorted(self.state.registry_repositories.get(registry["id"].lower(), {}))

    def _catalog(self, request: Request, registry: Json, path: str) -> Response:
        n, last = _page_args(request)
        if n is None:
            return errors(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")
        remaining = [r for r in self._repositories(registry) if r > last]
        page = remaining[:n]
        headers = {}
        if len(remaining) > n and page:
            headers["Link"] = f'<{path}?{urlencode({"last": page[-1], "n": n})}>; rel="next"'
        return _json({"repositories": page}, headers=headers)

    def acr_v1(self, request: Request) -> Response:
        """``/acr/v1/_catalog`` and ``/acr/v1/<repository>/_tags``, as ``az acr repository`` calls."""
        rest = request.path.split("/acr/v1/", 1)[1]

        def serve(registry: Json, login_server: str) -> Response:
            if rest == "_catalog":
                denied = self._catalog_authorized(request, login_server)
                return denied or self._catalog(request, registry, "/acr/v1/_catalog")
            if rest.endswith("/_tags"):
                repository = rest[: -len("/_tags")]
                denied = self._authorized(request, login_server, repository, "metadata_read")
                return denied or self._acr_tags(request, registry, login_server, repository)
            return errors(404, "NOT_FOUND", "the requested resource is not found")

        return self._guarded(request, serve)

    def _acr_tags(
        self, request: Request, registry: Json, login_server: str, repository: str
    ) -> Response:
        store = self._store(registry, repository)
        if store is None:
            return _name_unknown(repository)
        n, last = _page_args(request)
        if n is None:
            return errors(400, "PAGINATION_NUMBER_INVALID", "invalid number of results requested")
        stamp = registry.get("systemData", {}).get("createdAt") or "2024-10-01T00:00:00.0000000Z"
        tags = [
            {
                "name": tag,
                "digest": digest,
                "createdTime": stamp,
                "lastUpdateTime": stamp,
                "signed": False,
                "changeableAttributes": {
                    "deleteEnabled": True,
                    "writeEnabled": True,
                    "readEnabled": True,
                    "listEnabled": True,
                },
            }
            for tag, digest in sorted(store["tags"].items())
            if tag > last
        ]
        order = request.args.get("orderby", "")
        if order == "timedesc":
            tags.reverse()
        page = tags[:n]
        headers = {}
        if len(tags) > n and page:
            query = urlencode({"last": page[-1]["name"], "n": n})
            headers["Link"] = f'</acr/v1/{repository}/_tags?{query}>; rel="next"'
        body = {"registry": login_server, "imageName": repository, "tags": page}
        return _json(body, headers=headers)

    def _store(self, registry: Json, repository: str) -> Json | None:
        with self.state.lock:
            store = self.state.registry_repositories.get(registry["id"].lower(), {}).get(repository)
            return None if store is None else {k: dict(v) for k, v in store.items()}

    def _manifest(
        self, request: Request, registry: Json, login_server: str, repository: str, reference: str
    ) -> Response:
        store = self._store(registry, repository)
        if store is None:
            return _name_unknown(repository)
        if ":" in reference:
            digest = reference
            if not re.fullmatch(r"sha256:[a-f0-9]{64}", reference):
                return errors(
                    400,
                    "DIGEST_INVALID",
                    "provided digest did not match uploaded content",
                    {"Digest": reference},
                )
        else:
            digest = store["tags"].get(reference)
            if digest is None:
                return errors(
                    404,
                    "MANIFEST_UNKNOWN",
                    f'manifest tagged by "{reference}" is not found',
                    {"Tag": reference},
                )
        manifest = store["manifests"].get(digest)
        if manifest is None:
            return _manifest_unknown(repository, digest)
        accepted = _accepted(request.headers.get("Accept", ""))
        media_type, body = manifest["mediaType"], manifest["body"]
        if accepted is not None and media_type not in accepted:
            if media_type == OCI_INDEX:
                return errors(
                    404,
                    "MANIFEST_UNKNOWN",
                    "OCI index found, but accept header does not support OCI indexes",
                )
            if media_type == OCI_MANIFEST:
                return errors(
                    404,
                    "MANIFEST_UNKNOWN",
                    "OCI manifest found, but accept header does not support OCI manifests",
                )
            if media_type in INDEX_TYPES:
                # Clients that do not know manifest lists get the linux/amd64 image, as distribution does.
                child = _default_platform(json.loads(body))
                if child is None or child["digest"] not in store["manifests"]:
                    return errors(
                        404,
                        "MANIFEST_UNKNOWN",
                        "no matching manifest for linux/amd64 in the manifest list entries",
                    )
                media_type, body = (
                    store["manifests"][child["digest"]]["mediaType"],
                    store["manifests"][child["digest"]]["body"],
                )
        response = Response(body, status=200, content_type=media_type)
        response.headers["Docker-Content-Digest"] = digest_of(body)
        response.headers["ETag"] = f'"{digest_of(body)}"'
        response.headers["Docker-Distribution-Api-Version"] = "registry/2.0"
        return response

    def _blob(
        self, request: Request, registry: Json, login_server: str, repository: str, digest: str
    ) -> Response:
        store = self._store(registry, repository)
        if store is None:
            return _name_unknown(repository)
        blob = store["blobs"].get(digest)
        if blob is None:
            return errors(404, "BLOB_UNKNOWN", "blob unknown to registry", digest)
        if request.method == "HEAD":
            response = Response(blob, status=200, content_type="application/octet-stream")
            response.headers["Docker-Content-Digest"] = digest
            return response
        expires = str(int(time.time()) + 1200)
        query = urlencode({"se": expires, "sig": self._signature(login_server, digest, expires)})
        location = f"{request.host_url.rstrip('/')}/acr-storage/{login_server}/{digest}?{query}"
        response = Response(
            status=307,
            headers={"Location": location, "Docker-Distribution-Api-Version": "registry/2.0"},
        )
        response.headers["Docker-Content-Digest"] = digest
        return response

    def _tags(self, request: Request, registry: Json, repository: str) -> Response:
        store = self._store(registry, repository)
        if store is None:
            return _name_unknown(repository)
        raw_n = request.args.get("n")
        try:
            n = int(raw_n) if raw_n is not None else DEFAULT_PAGE
        except ValueError:
            n = -1
        if n < 0:
            return errors(
                400,
                "PAGINATION_NUMBER_INVALID",
                "invalid number of results requested",
                {"n": raw_n},
            )
        last = request.args.get("last", "")
        remaining = [t for t in sorted(store["tags"]) if t > last]
        page = remaining[:n]
        headers = {}
        if len(remaining) > n and page:
            headers["Link"] = (
                f'</v2/{repository}/tags/list?{urlencode({"last": page[-1], "n": n})}>; rel="next"'
            )
        return _json({"name": repository, "tags": page}, headers=headers)

    # -- storage -----------------------------------------------------------------------------

    def _signature(self, login_server: str, digest: str, expires: str) -> str:
        message = f"{login_server}/{digest}/{expires}".encode()
        return hmac.new(self._storage_key, message, hashlib.sha256).hexdigest()

    def storage(self, request: Request) -> Response:
        _, _, login_server, digest = request.path.split("/", 3)
        expires = request.args.get("se", "0")
        signature = request.args.get("sig", "")
        valid = hmac.compare_digest(
            signature, self._signature(login_server.lower(), digest, expires)
        )
        if not valid or not expires.isdigit() or int(expires) < time.time():
            return Response(
                '<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>'
                "<Message>Server failed to authenticate the request.</Message></Error>",
                status=403,
                content_type="application/xml",
            )
        registry = self._registry(login_server.lower())
        with self.state.lock:
            repositories = (
                self.state.registry_repositories.get(registry["id"].lower(), {}) if registry else {}
            )
            blob = next(
                (r["blobs"][digest] for r in repositories.values() if digest in r["blobs"]), None
            )
        if blob is None:
            return Response(
                '<?xml version="1.0" encoding="utf-8"?><Error><Code>BlobNotFound</Code>'
                "<Message>The specified blob does not exist.</Message></Error>",
                status=404,
                content_type="application/xml",
            )
        return Response(blob, status=200, content_type="application/octet-stream")

    # -- token service -----------------------------------------------------------------------

    def token(self, request: Request) -> Response:
        def serve(registry: Json, login_server: str) -> Response:
            params = request.args if request.method == "GET" else request.form
            if params.get("service", "").lower() != login_server:
                return errors(400, "UNSUPPORTED", f"the service parameter must be {login_server}")
            scopes = _scopes(params.getlist("scope"))
            if request.method == "GET":
                principal = self._basic_principal(registry, login_server, request)
            else:
                principal = self._form_principal(registry, login_server, params)
            if principal is None:
                return errors(401, "UNAUTHORIZED", AUTH_MESSAGE)
            access = self._grant(registry, principal, scopes)
            return _json({"access_token": self._issue(login_server, "access", principal, access)})

        return self._guarded(request, serve)

    def exchange(self, request: Request) -> Response:
        def serve(registry: Json, login_server: str) -> Response:
            form = request.form
            grant_type = form.get("grant_type", "")
            if grant_type not in ("access_token", "access_token_refresh_token", "refresh_token"):
                return errors(
                    400,
                    "UNSUPPORTED",
                    "grant_type must be access_token, refresh_token or access_token_refresh_token",
                )
            if form.get("service", "").lower() != login_server:
                return errors(400, "UNSUPPORTED", f"the service parameter must be {login_server}")
            if grant_type == "refresh_token":
                claims = self._token_claims(form.get("refresh_token", ""), login_server, "refresh")
                principal = claims["_principal"] if claims else None
            else:
                principal = self._aad_principal(request, form.get("access_token", ""))
            if principal is None:
                return errors(401, "UNAUTHORIZED", AUTH_MESSAGE)
            return _json({"refresh_token": self._issue(login_server, "refresh", principal, [])})

        return self._guarded(request, serve)

    def _aad_principal(self, request: Request, token: str) -> Json | None:
        with self.state.lock:
            resource = self.state.tokens.get(token)
        if resource is None:
            return None
        audiences = {*AAD_AUDIENCES, self.base_url().lower()}
        if resource.rstrip("/").lower() not in audiences:
            return None
        return {"kind": "aad", "sub": self.state.app_principal_id}

    def _form_principal(self, registry: Json, login_server: str, form: Any) -> Json | None:
        grant_type = form.get("grant_type", "")
        if grant_type == "refresh_token":
            claims = self._token_claims(form.get("refresh_token", ""), login_server, "refresh")
            return dict(claims["_principal"]) if claims else None
        if grant_type == "password":
            return self._credentials(
                registry, login_server, form.get("username", ""), form.get("password", "")
            )
        return None

    def _basic_principal(self, registry: Json, login_server: str, request: Request) -> Json | None:
        auth = request.authorization
        if auth is None:
            if registry["properties"].get("anonymousPullEnabled"):
                return {"kind": "anonymous", "sub": "anonymous"}
            return None
        if auth.type != "basic":
            return None
        return self._credentials(registry, login_server, auth.username or "", auth.password or "")

    def _credentials(
        self, registry: Json, login_server: str, username: str, password: str
    ) -> Json | None:
        if not username or not password:
            return None
        if username.lower() == registry["name"].lower():
            if not registry["properties"].get("adminUserEnabled"):
                return None
            with self.state.lock:
                passwords = self.state.registry_passwords.setdefault(
                    registry["id"].lower(), [new_password("password"), new_password("password2")]
                )
                values = [p["value"] for p in passwords]
            if any(hmac.compare_digest(v.encode(), password.encode()) for v in values):
                return {"kind": "admin", "sub": registry["name"]}
            return None
        if username == NULL_GUID:
            claims = self._token_claims(password, login_server, "refresh")
            return dict(claims["_principal"]) if claims else None
        if find_token(self.state, registry["id"], username) is not None:
            # A repository-scoped token: its name and a current password of an enabled token.
            return token_principal(self.state, registry, username, password)
        if _service_principal_secret_valid(self.state, username, password):
            return {"kind": "sp", "sub": username}
        return None

    def _grant(
        self, registry: Json, principal: Json, scopes: list[tuple[str, str, frozenset[str]]]
    ) -> list[Json]:
        kind = principal["kind"]
        access = []
        for scope_type, name, actions in scopes:
            if kind == "admin":
                allowed = actions & _ADMIN_ACTIONS
            elif (scope_type, name) == ("registry", "catalog") and kind == "aad":
                # Listing the catalog is an Azure RBAC right (Reader and above, or AcrPull):
                # the app identity has it unless the registry is denied to it.
                denied = self.state.is_denied(registry["id"])
                allowed = frozenset() if denied else actions & {"*"}
            elif scope_type != "repository":
                allowed = frozenset()
            elif kind == "anonymous":
                allowed = actions & {"pull"}
            elif kind == "aad" and self.state.is_denied(registry["id"]):
                allowed = frozenset()
            elif kind == "token":
                # What the token's scope map allows on this repository, and nothing else: a
                # token without content/read gets a token with an empty access list.
                allowed = actions & token_allows(self.state, principal["token"], name)
            else:
                allowed = actions & _READER_ACTIONS
            if allowed:
                access.append({"type": scope_type, "name": name, "actions": sorted(allowed)})
        return access


def _by_host(request: Request) -> bool:
    """Was the request addressed to the registry's own host name (through the registry proxy)?"""
    return request.host.split(":")[0].lower() not in ("127.0.0.1", "localhost")


def _page_args(request: Request) -> tuple[int | None, str]:
    raw = request.args.get("n")
    try:
        n = int(raw) if raw is not None else DEFAULT_PAGE
    except ValueError:
        return None, ""
    return (n if n >= 0 else None), request.args.get("last", "")


def _service_principal_secret_valid(state: State, app_id: str, secret: str) -> bool:
    # Entra ID decides (the Graph provider keeps the secrets); RBAC on the registry is not modelled.
    from emulator.providers.graph import graph_secret_valid

    return graph_secret_valid(state, app_id, secret, datetime.now(UTC))


def _grants(claims: Json, repository: str, action: str) -> bool:
    return any(
        entry["type"] == "repository" and entry["name"] == repository and action in entry["actions"]
        for entry in claims.get("access", [])
    )


def _network_allows(registry: Json, client_ip: str) -> bool:
    properties = registry["properties"]
    if properties.get("publicNetworkAccess") == "Disabled":
        return False
    rules = properties.get("networkRuleSet") or {}
    if rules.get("defaultAction", "Allow") != "Deny":
        return True
    try:
        address = ipaddress.ip_address(client_ip)
    except ValueError:
        return False
    for rule in rules.get("ipRules") or []:
        try:
            if address in ipaddress.ip_network(rule.get("value", ""), strict=False):
                return True
        except ValueError:
            continue
    return False


def _accepted(header: str) -> frozenset[str] | None:
    """Media types the client accepts, or None when it accepts anything."""
    types = frozenset(
        part.split(";", 1)[0].strip().lower() for part in header.split(",") if part.strip()
    )
    return None if not types or "*/*" in types else types


def _default_platform(index: Json) -> Json | None:
    for entry in index.get("manifests", []):
        platform = entry.get("platform", {})
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            return dict(entry)
    return None


def _name_unknown(repository: str) -> Response:
    return errors(
        404, "NAME_UNKNOWN", "repository name not known to registry", {"name": repository}
    )


def _manifest_unknown(repository: str, digest: str) -> Response:
    return errors(
        404,
        "MANIFEST_UNKNOWN",
        f"manifest {digest} is not found",
        {"Name": repository, "Revision": digest},
    )
