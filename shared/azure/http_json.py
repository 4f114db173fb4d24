"""A small JSON-over-HTTPS client on azure-core's pipeline, for services without an Azure SDK
(GitHub, Azure DevOps, chat webhooks).

It retries as the SDKs do (429/5xx, connection errors; POST/PATCH only on 500/503/504), trusts the
configured CA bundle, strips the credential on cross-host redirects, and never logs headers. Any
HTTP status comes back as a :class:`JsonResponse` for the caller to interpret; a connection that
outlives the retries raises :class:`~shared.errors.TransientError` naming the host only (a
webhook URL's path is a credential).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.config import Settings
from shared.errors import TransientError


class _ScrubSecretUrls(logging.Filter):
    """urllib3 logs each request line at DEBUG; a webhook URL's path and query are its secret."""

    def __init__(self) -> None:
        super().__init__()
        self.secrets: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secrets:
            message = record.getMessage()
            scrubbed = message
            for secret in self.secrets:
                scrubbed = scrubbed.replace(secret, "/[redacted]")
            if scrubbed != message:
                record.msg, record.args = scrubbed, None
        return True


_SCRUBBER = _ScrubSecretUrls()


def _scrub_from_logs(secret: str) -> None:
    urllib3_log = logging.getLogger("urllib3.connectionpool")
    if _SCRUBBER not in urllib3_log.filters:
        urllib3_log.addFilter(_SCRUBBER)
    _SCRUBBER.secrets.add(secret)


@dataclass(frozen=True)
class JsonResponse:
    status: int
    body: Any
    text: str
    headers: Mapping[str, str]


class JsonClient:
    """Sends JSON to ``base_url``; ``secret_headers`` (e.g. Authorization) go on every request.

    ``secret_url``: the URL itself is the credential (a chat webhook); its path and query are
    scrubbed from urllib3's debug log.
    """

    def __init__(
        self,
        base_url: str,
        settings: Settings,
        *,
        secret_headers: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        secret_url: bool = False,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        parts = urlsplit(base_url)
        self.host = parts.netloc
        if secret_url and parts.path.strip("/"):
            _scrub_from_logs(parts.path + (f"?{parts.query}" if parts.query else ""))
        self._settings = settings
        self._secret_headers = dict(secret_headers or {})
        self._headers = dict(headers or {})
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"JsonClient(host={self.host!r})"

    def _pipeline(self) -> Any:
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import (
            HeadersPolicy,
            RedirectPolicy,
            RetryPolicy,
            SensitiveHeaderCleanupPolicy,
            UserAgentPolicy,
        )

        with self._lock:
            if self._client is None:
                self._client = PipelineClient(
                    base_url=self.base_url,
                    policies=[
                        HeadersPolicy(base_headers={**self._headers, **self._secret_headers}),
                        UserAgentPolicy(sdk_moniker="acr-pull-remediator"),
                        RedirectPolicy(),
                        RetryPolicy(
                            retry_total=self._settings.retry_total,
                            retry_backoff_factor=self._settings.retry_backoff,
                        ),
                        SensitiveHeaderCleanupPolicy(
                            blocked_redirect_headers=[*self._secret_headers]
                        ),
                    ],
                    connection_verify=self._settings.ca_bundle or True,
                )
            return self._client

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
        retry: bool = True,
    ) -> JsonResponse:
        """``path`` is relative to the base URL ("" for the base URL itself).

        ``retry=False`` for a write that is not idempotent (creating a ticket): a response lost
        after the write committed must not be answered by writing again; the caller looks first.
        """
        from azure.core.exceptions import ServiceRequestError, ServiceResponseError
        from azure.core.rest import HttpRequest

        url = f"{self.base_url}/{path.lstrip('/')}" if path else self.base_url
        headers = {"Accept": self._headers.get("Accept", "application/json")}
        content: str | None = None
        if body is not None:
            headers["Content-Type"] = content_type
            content = json.dumps(body)
        request = HttpRequest(
            method, url, params=dict(params or {}), headers=headers, content=content
        )
        try:
            options = {} if retry else {"retry_total": 0}
            response = self._pipeline().send_request(request, **options)
            text = response.text()
        except (ServiceRequestError, ServiceResponseError) as exc:
            raise TransientError(f"could not reach {self.host} ({type(exc).__name__})") from None
        try:
            parsed = json.loads(text) if text else None
        except json.JSONDecodeError:
            parsed = None
        return JsonResponse(response.status_code, parsed, text, dict(response.headers))

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
