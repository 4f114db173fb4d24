"""The registry data plane over azure-core: ACR's token exchange, then Docker Registry v2 reads.

The app authenticates as its managed identity, as ``az acr login`` does: an AAD token for ARM
goes to ``/oauth2/exchange`` for an ACR refresh token, which ``/oauth2/token`` turns into an
access token with one repository's ``pull`` scope. Requests go only to login servers under the
cloud's ACR suffix (``*.azurecr.io``): an image reference from a workload must never make the
app hand its tokens to another host. Tokens and passwords never reach a log or an exception.

Where a registry is served comes from ``ACR_DATA_ENDPOINT_TEMPLATE`` (``https://{login_server}``
in Azure). A ``Link`` header's path (``/v2/...``) is resolved against that root, as ACR means it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import TYPE_CHECKING, Any, NoReturn
from urllib.parse import quote, urlencode

from shared.azure.cache import RunCache, cached
from shared.azure.factory import ClientFactory
from shared.errors import Forbidden, NotFound, ReadError, TransientError, Unreachable
from shared.images import is_host, is_reference, is_repository
from shared.ports.registry_data import (
    INDEX_MEDIA_TYPES,
    ManifestInfo,
    ManifestUnknown,
    Platform,
    RepositoryUnknown,
    TagList,
)

if TYPE_CHECKING:
    from azure.core.rest import HttpRequest, HttpResponse

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
SCHEMA1_TYPES = frozenset(
    {
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
        "application/vnd.docker.distribution.manifest.v1+json",
    }
)
IMAGE_CONFIG_TYPES = frozenset(
    {"application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"}
)
MANIFEST_ACCEPT = ", ".join(
    (*sorted(INDEX_MEDIA_TYPES), OCI_MANIFEST, DOCKER_MANIFEST, *sorted(SCHEMA1_TYPES))
)
TAGS_PAGE = 100
MAX_TAG_PAGES = 50
_NEXT_LINK = re.compile(r'<(?P<path>/v2/[^>]+)>\s*;\s*rel="?next"?')


class RegistryDataReader:
    factory: ClientFactory
    cache: RunCache

    def get_manifest_platforms(
        self, login_server: str, repository: str, reference: str
    ) -> ManifestInfo:
        login = self._login(login_server)
        _check_names(repository, reference)
        # Tags are case-sensitive, so the key must not be folded as @cached folds strings.
        key = ("get_manifest_platforms", login, repository, reference)
        return self.cache.get_or_load(key, lambda: self._manifest(login, repository, reference))

    @cached
    def list_tags(self, login_server: str, repository: str) -> tuple[str, ...]:
        login = self._login(login_server)
        _check_names(repository, "latest")
        resource = f"{login}/{repository}"
        root = self._root(login)
        path: str | None = f"/v2/{repository}/tags/list?{urlencode({'n': TAGS_PAGE})}"
        tags: list[str] = []
        for _ in range(MAX_TAG_PAGES):
            if path is None:
                break
            response = self._pull(
                login,
                repository,
                f"{root}{path}",
                headers={},
                resource=resource,
                doing="list tags of",
            )
            page = _tag_page(response, repository)
            tags.extend(page.tags)
            path = page.next_link
        return tuple(tags)

    def registry_token_ok(
        self, login_server: str, username: str, password: str, repository: str
    ) -> bool:
        """Not cached: the answer is about credentials, which must not become cache keys."""
        from azure.core.rest import HttpRequest

        login = self._login(login_server)
        _check_names(repository, "latest")
        basic = base64.b64encode(f"{username}:{password}".encode()).decode()
        query = urlencode({"service": login, "scope": f"repository:{repository}:pull"})
        request = HttpRequest(
            "GET",
            f"{self._root(login)}/oauth2/token?{query}",
            headers={"Authorization": f"Basic {basic}"},
        )
        response = self._send(request, login, doing="request a token from")
        if response.status_code == 200:
            return True
        if response.status_code == 401:
            return False
        _raise_for(response, login, doing="request a token from")

    # -- reads ---------------------------------------------------------------------------------

    def _manifest(self, login: str, repository: str, reference: str) -> ManifestInfo:
        separator = "@" if ":" in reference else ":"
        resource = f"{login}/{repository}{separator}{reference}"
        url = f"{self._root(login)}/v2/{repository}/manifests/{quote(reference, safe=':')}"
        response = self._pull(
            login,
            repository,
            url,
            headers={"Accept": MANIFEST_ACCEPT},
            resource=resource,
            doing="read the manifest of",
        )
        body = response.read()
        document = _json(body, resource)
        media_type = (response.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        media_type = media_type or str(document.get("mediaType", ""))
        digest = "sha256:" + hashlib.sha256(body).hexdigest()
        children: tuple[str, ...] = ()
        if media_type in INDEX_MEDIA_TYPES:
            platforms = tuple(_index_platforms(document))
            children = tuple(
                str(e["digest"])
                for e in document.get("manifests") or []
                if isinstance(e, dict) and isinstance(e.get("digest"), str)
            )
        elif media_type in (OCI_MANIFEST, DOCKER_MANIFEST):
            platforms = self._config_platform(login, repository, document, resource)
        elif media_type in SCHEMA1_TYPES:
            platforms = (Platform(os="linux", architecture=str(document.get("architecture", ""))),)
        else:
            raise ReadError(f"{resource} has a manifest of unknown type {media_type[:80]!r}")
        return ManifestInfo(
            digest=digest, media_type=media_type, platforms=platforms, children=children
        )

    def _config_platform(
        self, login: str, repository: str, manifest: dict[str, Any], resource: str
    ) -> tuple[Platform, ...]:
        config = manifest.get("config") or {}
        if config.get("mediaType") not in IMAGE_CONFIG_TYPES:
            return ()  # an OCI artifact (a Helm chart, a signature): no platform to run
        digest = str(config.get("digest", ""))
        if not re.fullmatch(r"sha256:[a-f0-9]{64}", digest):
            raise ReadError(f"{resource} names an invalid config digest")
        url = f"{self._root(login)}/v2/{repository}/blobs/{digest}"
        response = self._pull(
            login, repository, url, headers={}, resource=resource, doing="read the image config of"
        )
        body = response.read()
        if "sha256:" + hashlib.sha256(body).hexdigest() != digest:
            raise ReadError(f"the image config of {resource} does not match its digest")
        image = _json(body, resource)
        return (_platform(image),)

    # -- transport and tokens ------------------------------------------------------------------

    def _login(self, login_server: str) -> str:
        login = login_server.strip().lower()
        suffix = "." + self.factory.settings.cloud.acr_suffix.lower()
        if not is_host(login) or not login.endswith(suffix) or ":" in login:
            raise ReadError(
                f"{login_server[:100]!r} is not an Azure Container Registry login server "
                f"(*{suffix}); the app does not send its credentials there",
                resource_id=login_server[:100],
            )
        return login

    def _root(self, login: str) -> str:
        return self.factory.settings.acr_data_endpoint_template.format(login_server=login)

    def _pull(
        self,
        login: str,
        repository: str,
        url: str,
        *,
        headers: dict[str, str],
        resource: str,
        doing: str,
    ) -> HttpResponse:
        from azure.core.rest import HttpRequest

        token = self._access_token(login, repository)
        request = HttpRequest("GET", url, headers={**headers, "Authorization": f"Bearer {token}"})
        response = self._send(request, resource, doing=doing)
        if response.status_code != 200:
            _raise_for(response, resource, doing=doing)
        return response

    @cached
    def _refresh_token(self, login: str) -> str:
        from azure.core.exceptions import ClientAuthenticationError
        from azure.core.rest import HttpRequest

        try:
            aad = self.factory.credential.get_token(self.factory.settings.cloud.arm_scope)
        except ClientAuthenticationError as exc:
            raise Forbidden(f"the app could not get an Entra ID token for {login}") from exc
        form = {"grant_type": "access_token", "service": login, "access_token": aad.token}
        if self.factory.settings.tenant_id:
            form["tenant"] = self.factory.settings.tenant_id
        request = HttpRequest("POST", f"{self._root(login)}/oauth2/exchange", data=form)
        response = self._send(request, login, doing="exchange a token with")
        if response.status_code != 200:
            _raise_for(response, login, doing="exchange a token with")
        return _token_field(response, "refresh_token", login)

    @cached
    def _access_token(self, login: str, repository: str) -> str:
        from azure.core.rest import HttpRequest

        form = {
            "grant_type": "refresh_token",
            "service": login,
            "scope": f"repository:{repository}:pull",
            "refresh_token": self._refresh_token(login),
        }
        request = HttpRequest("POST", f"{self._root(login)}/oauth2/token", data=form)
        response = self._send(request, login, doing="get a pull token from")
        if response.status_code != 200:
            _raise_for(response, login, doing="get a pull token from")
        return _token_field(response, "access_token", login)

    def _send(self, request: HttpRequest, resource: str, *, doing: str) -> HttpResponse:
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError

        try:
            response = self.factory.registry_data().send_request(request)
            response.read()
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise Unreachable(
                f"could not reach {resource} to {doing} it", resource_id=resource
            ) from exc
        return response


def _check_names(repository: str, reference: str) -> None:
    if not is_repository(repository):
        raise ReadError(f"{repository[:100]!r} is not a valid repository name")
    if not is_reference(reference):
        raise ReadError(f"{reference[:100]!r} is not a valid tag or digest")


def _registry_error(response: HttpResponse) -> tuple[str, str]:
    """The first ``errors[]`` entry's code and message (registry messages carry no secrets)."""
    try:
        first = (json.loads(response.read()).get("errors") or [{}])[0]
        return str(first.get("code", "")), str(first.get("message", ""))[:200]
    except (ValueError, AttributeError, IndexError, TypeError):
        return "", ""


def _raise_for(response: HttpResponse, resource: str, *, doing: str) -> NoReturn:
    status = response.status_code
    code, message = _registry_error(response)
    if status == 404 and code == "NAME_UNKNOWN":
        raise RepositoryUnknown(
            f"the repository of {resource} does not exist", resource_id=resource
        )
    if status == 404 and code == "MANIFEST_UNKNOWN":
        raise ManifestUnknown(f"{resource} has no such manifest ({message})", resource_id=resource)
    if status == 401:
        raise Forbidden(
            f"the app's identity is not authorized to {doing} {resource} ({code or status})",
            resource_id=resource,
        )
    if status == 403:
        raise Forbidden(
            f"{resource} refused the app to {doing} it: {message or code}", resource_id=resource
        )
    if status == 404:
        raise NotFound(f"{resource} was not found ({code or status})", resource_id=resource)
    if status == 429 or status >= 500:
        raise TransientError(f"{doing} {resource} failed with {status} {code}".rstrip())
    raise ReadError(
        f"{doing} {resource} failed with {status} {code}".rstrip(), resource_id=resource
    )


def _json(body: bytes, resource: str) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if not isinstance(document, dict):
        raise ReadError(f"{resource} answered with something that is not a JSON object")
    return document


def _token_field(response: HttpResponse, field: str, login: str) -> str:
    value = _json(response.read(), login).get(field)
    if not isinstance(value, str) or not value:
        raise ReadError(f"the token service of {login} answered without a {field}")
    return value


def _platform(data: dict[str, Any]) -> Platform:
    return Platform(
        os=str(data.get("os", "")),
        architecture=str(data.get("architecture", "")),
        variant=str(data["variant"]) if data.get("variant") else None,
        os_version=str(data["os.version"]) if data.get("os.version") else None,
    )


def _index_platforms(index: dict[str, Any]) -> list[Platform]:
    platforms = []
    for entry in index.get("manifests") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("platform"), dict):
            continue
        annotations = entry.get("annotations") or {}
        if annotations.get("vnd.docker.reference.type") == "attestation-manifest":
            continue  # buildx provenance/SBOM entries are listed as unknown/unknown
        platform = _platform(entry["platform"])
        if platform.os != "unknown":
            platforms.append(platform)
    return platforms


def _tag_page(response: HttpResponse, repository: str) -> TagList:
    document = _json(response.read(), repository)
    tags = tuple(str(t) for t in document.get("tags") or ())
    match = _NEXT_LINK.search(response.headers.get("Link") or "")
    return TagList(repository=repository, tags=tags, next_link=match["path"] if match else None)
