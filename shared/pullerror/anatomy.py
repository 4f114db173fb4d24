"""Take an unwrapped pull error apart: image, runtime, transport failure, HTTP status, error code.

These are facts read from the structure of the message, not conclusions: the classifier decides
the family from them and from its phrase rules. Each reader is a bounded pattern on text that the
caller already capped and unwrapped (:func:`shared.pullerror.unwrap.unwrap`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["Anatomy", "read"]

_REF = r"[a-z0-9][a-z0-9_.\-/:@+]{0,511}"
_IMAGE = (
    re.compile(
        r"(?:Failed to pull image|Back-off pulling image|Pulling image|failed to pull image"
        r"|failed to pull and unpack image|failed to resolve reference|failed to get sandbox image"
        r'|failed to get docker image) "(?:docker://)?(?P<ref>' + _REF + ')"',
        re.IGNORECASE,
    ),
    # Docker daemon / compose / CRI-O wordings name the image without quotes.
    re.compile(
        r"(?:manifest for|pull access denied for|repository|Pulling [a-z0-9_-]{1,64} \("
        r"|Error reading manifest \S{1,128} in) (?P<ref>" + _REF + r")(?:,| not found|\)|:)",
        re.IGNORECASE,
    ),
)
_REGISTRY_URL = re.compile(
    r"https?://(?P<host>[a-z0-9.\-]{1,253}(?::\d{1,5})?)/(?:v2/|v1/_ping|oauth2/)", re.IGNORECASE
)

# Who wrote the message, most specific first (a Windows node runs containerd or Docker).
_RUNTIMES: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "windows",
        re.compile(
            r"hcsshim|image operating system \"?[a-z]{1,16}\"? cannot be used"
            r"|windows/amd64|windowsfilter",
            re.IGNORECASE,
        ),
    ),
    (
        "cri-o",
        re.compile(
            r"choosing image instance|Error reading manifest|error pinging docker registry"
            r"|initializing source docker://|copying system image",
            re.IGNORECASE,
        ),
    ),
    (
        "containerd",
        re.compile(
            r"failed to pull and unpack image|failed to resolve reference|httpRead(?:er)?Seeker"
            r"|failed to fetch (?:oauth|anonymous) token|unexpected status from [A-Z]{3,7} request"
            r"|ctr: ",
        ),
    ),
    (
        "docker",
        re.compile(
            r"Error response from daemon|error pulling image configuration|no basic auth credentials"
            r"|Status \d{3} trying to pull repository|received unexpected HTTP status"
            r"|no matching manifest for|no supported platform found in manifest list"
            r"|image pull failed for|error parsing HTTP \d{3} response body|DockerApiException",
            re.IGNORECASE,
        ),
    ),
    ("kubelet", re.compile(r"pull QPS exceeded|Back-off pulling image", re.IGNORECASE)),
)

# Transport failures, by the words Go's net and net/http packages use.
_TRANSPORT: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("dns", re.compile(r"no such host|server misbehaving|Temporary failure in name resolution")),
    ("proxy", re.compile(r"proxyconnect tcp")),
    ("tls", re.compile(r"TLS handshake timeout|x509: |tls: ")),
    (
        "timeout",
        re.compile(
            r"i/o timeout|context deadline exceeded|connection timed out|Client\.Timeout exceeded"
            r"|code = DeadlineExceeded|code = 4 desc = context deadline"
        ),
    ),
    ("reset", re.compile(r"connection reset by peer|broken pipe")),
    ("refused", re.compile(r"connection refused|no route to host|network is unreachable")),
    ("eof", re.compile(r"(?:unexpected |: )EOF\b")),
)

# HTTP statuses as containerd, Docker, CRI-O and SDK clients print them.
_STATUS = re.compile(
    r"(?:unexpected status(?: code)?(?: from [A-Z]{3,7} request to)?:? (?:\S{1,2048}: )?"
    r"|received unexpected HTTP status: |error parsing HTTP |\bStatus |status=|status code="
    r"|StatusCode: |Status Code = '|response code: )(?P<code>[1-5]\d\d)\b",
    re.IGNORECASE,
)
# Registry error codes (OCI distribution spec) in JSON bodies or Docker's "code: message" form.
_CODES = (
    "TOOMANYREQUESTS",
    "UNAUTHORIZED",
    "DENIED",
    "MANIFEST_UNKNOWN",
    "NAME_UNKNOWN",
    "BLOB_UNKNOWN",
    "NAME_INVALID",
)
_CODE = re.compile(
    r"\"code\": ?\"(?P<json>[A-Z_]{4,32})\""
    r"|(?<![a-z_])(?P<plain>toomanyrequests|unauthorized|denied|manifest unknown|name unknown"
    r"|blob unknown): ",
    re.IGNORECASE,
)
# The platform a runtime says it looked for: "linux/arm64", or CRI-O's "architecture X, ... OS Y".
_PLATFORM = re.compile(
    r"\b(?P<os>linux|windows)/(?P<arch>amd64|arm64|arm|386|ppc64le|s390x|riscv64)\b"
    r"|architecture (?P<arch2>[a-z0-9]{2,16}) ?,.{0,40}?OS (?P<os2>[a-z]{3,16})",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Anatomy:
    """Structure found in one unwrapped pull error message."""

    image: str | None  # image reference quoted in the message
    registry_host: str | None  # host[:port] of that image, or of a registry URL in the message
    runtime: str | None  # windows, cri-o, containerd, docker or kubelet
    transport: tuple[str, ...]  # dns, proxy, tls, timeout, reset, refused, eof (message order)
    http_statuses: tuple[int, ...]  # HTTP statuses the registry answered, in message order
    registry_codes: tuple[str, ...]  # registry error codes, upper case, in message order
    platform: tuple[str, str] | None  # (os, arch) the runtime looked for, if it says

    def to_dict(self) -> dict[str, object]:
        return {
            "runtime": self.runtime,
            "transport": list(self.transport),
            "http_statuses": list(self.http_statuses),
            "registry_codes": list(self.registry_codes),
            "platform": "/".join(self.platform) if self.platform else None,
        }


def read(text: str) -> Anatomy:
    """Structure of one message that :func:`shared.pullerror.unwrap.unwrap` already unwrapped."""
    image = _image(text)
    return Anatomy(
        image=image,
        registry_host=_registry_host(image, text),
        runtime=next((name for name, rx in _RUNTIMES if rx.search(text)), None),
        transport=tuple(name for name, rx in _TRANSPORT if rx.search(text)),
        http_statuses=tuple(dict.fromkeys(int(m.group("code")) for m in _STATUS.finditer(text))),
        registry_codes=tuple(dict.fromkeys(_codes(text))),
        platform=_platform(text),
    )


def _image(text: str) -> str | None:
    for pattern in _IMAGE:
        match = pattern.search(text)
        if match:
            return match.group("ref").rstrip(":")
    return None


def _registry_host(image: str | None, text: str) -> str | None:
    """Host[:port] of the image; Docker Hub short names ('nginx', 'library/nginx') have none."""
    if image is not None:
        first, slash, _ = image.partition("/")
        is_host = "." in first or ":" in first or first.lower() == "localhost"
        return first.lower() if slash and is_host else None
    # Docker wording often names only the URL: Get "https://myacr.azurecr.io/v2/...".
    match = _REGISTRY_URL.search(text)
    return match.group("host").lower() if match else None


def _codes(text: str) -> list[str]:
    found = []
    for match in _CODE.finditer(text):
        code = (match.group("json") or match.group("plain")).upper().replace(" ", "_")
        if code in _CODES:
            found.append(code)
    return found


def _platform(text: str) -> tuple[str, str] | None:
    match = _PLATFORM.search(text)
    if match is None:
        return None
    os_name = match.group("os") or match.group("os2")
    arch = match.group("arch") or match.group("arch2")
    return os_name.lower(), arch.lower()
