"""azure-core's retry policy, also for the POSTs that only read or mint a token.

azure-core retries a POST only when it is answered 500, 503 or 504 or told Retry-After: not when
it is answered 408 or 502 and not when the connection drops under it, because a POST may have
changed something.
The POSTs below change nothing (ARM list actions, a Resource Graph query, a registry token
exchange), so they are retried as a GET is. A server closes an idle keep-alive connection as a
client reuses it often enough at a fleet's pace that one such race, unretried, left a batch's
pairs without an answer.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from azure.core.pipeline.policies import RetryPolicy

# Path endings, lower case. Never an action that writes (regenerateCredential, runCommand, ...).
_READ_ONLY_POSTS = (
    "/listclusterusercredential",
    "/listclusteradmincredential",
    "/listclustermonitoringusercredential",
    "/listcredentials",
    "/providers/microsoft.resourcegraph/resources",
    "/oauth2/exchange",
    "/oauth2/token",
)


def is_read_only_post(method: str, url: str) -> bool:
    return method.upper() == "POST" and urlsplit(url).path.lower().endswith(_READ_ONLY_POSTS)


class ReadOnlyPostRetryPolicy(RetryPolicy[Any, Any]):
    """RetryPolicy that treats the read-only POSTs above as the methods it retries."""

    def _is_method_retryable(
        self, settings: dict[str, Any], request: Any, response: Any = None
    ) -> bool:
        if is_read_only_post(request.method, request.url):
            return True
        return bool(super()._is_method_retryable(settings, request, response))
