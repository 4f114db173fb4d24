"""Sends outcome events to an Event Grid custom topic (CloudEvents 1.0 schema) with
``azure.eventgrid.EventGridPublisherClient``; the only module that imports it.

Auth: the topic key (``aeg-sas-key``) when one is configured, else a bearer token for
``https://eventgrid.azure.net/.default`` from the app's credential.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from shared.config import Settings
from shared.errors import Forbidden, RemediatorError, TransientError

if TYPE_CHECKING:
    from azure.core.credentials import TokenCredential

    from shared.outcome_events import OutcomeEvent

_REQUEST_OPTIONS = frozenset({"retry_total", "retry_backoff_factor", "connection_verify"})
# azure-eventgrid 4.x also hands per-request options to its CloudEvent model, which logs
# "<option> is not a known attribute of class ... and will be ignored" once per event.
_SDK_SERIALIZER_LOGGER = "azure.eventgrid._legacy._generated._serialization"


class _IgnoredRequestOptions(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        return not (
            "is not a known attribute" in message and message.split(" ", 1)[0] in _REQUEST_OPTIONS
        )


class EventGridSender:
    def __init__(
        self,
        endpoint: str,
        settings: Settings,
        *,
        key: str | None = None,
        credential: TokenCredential | None = None,
    ) -> None:
        if key is None and credential is None:
            raise ValueError("an Event Grid topic needs a key or a credential")
        self._endpoint = endpoint
        self._host = urlsplit(endpoint).netloc
        self._settings = settings
        self._key = key
        self._credential = credential
        self._client: Any = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"EventGridSender(host={self._host!r})"

    def _publisher(self) -> Any:
        from azure.core.credentials import AzureKeyCredential
        from azure.eventgrid import EventGridPublisherClient

        with self._lock:
            if self._client is None:
                credential: Any = (
                    AzureKeyCredential(self._key) if self._key is not None else self._credential
                )
                self._client = EventGridPublisherClient(self._endpoint, credential)
                sdk_logger = logging.getLogger(_SDK_SERIALIZER_LOGGER)
                if not any(isinstance(f, _IgnoredRequestOptions) for f in sdk_logger.filters):
                    sdk_logger.addFilter(_IgnoredRequestOptions())
            return self._client

    def send(self, events: Sequence[OutcomeEvent]) -> None:
        """Publish ``events`` in one request; raises a product error naming the topic host only."""
        from azure.core.exceptions import (
            ClientAuthenticationError,
            HttpResponseError,
            ServiceRequestError,
        )
        from azure.core.messaging import CloudEvent

        cloud_events = [
            CloudEvent(
                source=e.source,
                type=e.type,
                data=dict(e.data),
                subject=e.subject,
                id=e.id,
                time=e.time,
                datacontenttype="application/json",
                extensions={"correlationid": e.correlation_id},
            )
            for e in events
        ]
        try:
            # azure-eventgrid 4.x drops transport options given to the basic-tier client's
            # constructor; per-request options reach the pipeline (CA bundle, retry policy).
            self._publisher().send(cloud_events, **self._request_options())
        except ClientAuthenticationError as exc:
            if exc.status_code is None:  # no token: the app's identity could not sign in
                raise Forbidden(f"could not get a token for Event Grid topic {self._host}") from exc
            raise Forbidden(
                f"Event Grid topic {self._host} rejected the credential ({exc.status_code})"
            ) from exc
        except HttpResponseError as exc:
            status = exc.status_code or 0
            if status == 403:
                raise Forbidden(f"Event Grid topic {self._host} refused to publish (403)") from exc
            if status == 429 or status >= 500:
                raise TransientError(
                    f"Event Grid topic {self._host} failed after retries ({status})"
                ) from exc
            raise RemediatorError(
                f"Event Grid topic {self._host} rejected events ({status})"
            ) from exc
        except ServiceRequestError as exc:
            raise TransientError(f"could not reach Event Grid topic {self._host}") from exc

    def _request_options(self) -> dict[str, Any]:
        options: dict[str, Any] = {
            "retry_total": self._settings.retry_total,
            "retry_backoff_factor": self._settings.retry_backoff,
        }
        if self._settings.ca_bundle:
            options["connection_verify"] = self._settings.ca_bundle
        return options

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()
