"""Classify a kubelet image-pull error message into a cause family of the troubleshooting guide.

The guide ("can't pull images from ACR to AKS") groups causes into families that can be told
apart from the message text alone: 1a (401, incorrect authorization), 1b (incompatible CPU
architecture), 2 (image not found), 3 (403 Forbidden: firewall, private DNS, storage), 4 (i/o
timeout: peering, hub firewall), 5 (OS mismatch) and 6 (kubelet pull QPS). The checks then find
the exact cause inside the family; this module only ranks the families.

How it decides:

* The message is split into errors (``rpc error:``, ``failed to pull and unpack image``, Docker's
  ``Error response from daemon:``). Kubelet lists several attempts in ``[..., ...]``; the FIRST
  error that carries a signal decides the cause, later errors only add candidates.
* Inside one error, rules are tried in table order (most specific first). A piece of text is
  explained by one rule only, so a generic ``401 Unauthorized`` rule does not re-count the
  status line that a specific ``failed to fetch oauth token`` rule already claimed.
* Combinations that mean something else than their parts (the guide's 1b message: no platform
  match AND a 401) are checked first, over the whole message.
* Generic network / HTTP words (``i/o timeout``, ``no such host``, ``403 Forbidden``) count only
  when the message is about an image pull, so probe failures or CNI errors stay ``unknown``.

Pure: stdlib only, no I/O, never raises, linear time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

__all__ = ["FAMILIES", "MAX_SCAN_CHARS", "UNKNOWN", "Classification", "classify"]

FAMILIES: tuple[str, ...] = ("1a", "1b", "2", "3", "4", "5", "6")
UNKNOWN = "unknown"

# Only the first 16 KiB of a message is scanned. Real kubelet pull errors are a few hundred
# characters (a list of several rpc errors stays under 4 KiB); the cap bounds the work that a
# runaway or hostile input (alert webhook bodies can be MiBs) can cause. Every pattern below is
# also written to stay linear: literal anchors, bounded quantifiers, no nested repetition.
MAX_SCAN_CHARS = 16 * 1024


@dataclass(frozen=True)
class Classification:
    """What a pull error message says about its cause."""

    cause: str  # one family id from FAMILIES, or "unknown"
    candidates: tuple[str, ...]  # family ids, most likely first; () when unknown
    reason: str  # one readable sentence: which signal in the message decided
    image: str | None  # image reference quoted in the message, if any
    registry_host: str | None  # registry host[:port] of that image (or of a registry URL)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (the `shared.cli classify --json` contract)."""
        return {
            "cause": self.cause,
            "candidates": list(self.candidates),
            "reason": self.reason,
            "image": self.image,
            "registry_host": self.registry_host,
        }


@dataclass(frozen=True)
class _Rule:
    name: str
    family: str
    pattern: re.Pattern[str]
    why: str  # completes "Decided by '<matched text>': ..."
    also: tuple[str, ...] = ()  # further candidate families this signal cannot rule out
    needs_pull_context: bool = False  # generic words: only count in an image-pull message


@dataclass(frozen=True)
class _Combo:
    """Signals that together mean another family than each alone (checked before the rules)."""

    all_of: tuple[frozenset[str], ...]  # for each set, some hit's rule name must be in it
    cause: str
    candidates: tuple[str, ...]
    why: str


@dataclass(frozen=True)
class _Hit:
    rule: _Rule
    text: str


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


# containerd 1.x: "unexpected status: 401 Unauthorized";
# containerd 2.x: "unexpected status from GET request to https://...: 401 Unauthorized".
_STATUS = r"unexpected status(?: from [a-z]{3,7} request to \S{1,2048})?: "
# Host of a Docker reference: dotted name or localhost, optional port (registry "domain").
_HOST = r"(?:localhost|[a-z0-9][a-z0-9-]{0,62}(?:\.[a-z0-9-]{1,63}){1,10})(?::\d{1,5})?"
_ACR_SUFFIX = r"\.azurecr\.(?:io|cn|us)"  # public, Azure China, Azure US Government clouds

# Table order is rank inside one error: most specific signal first.
_RULES: tuple[_Rule, ...] = (
    _Rule(
        "pull-qps",
        "6",
        _rx(r"pull QPS exceeded"),
        "kubelet refused to start the pull because its registryPullQPS limit was exceeded",
    ),
    # Docker names the node's platform: an arm request without a match is an arch problem.
    _Rule(
        "platform-docker-arm",
        "1b",
        _rx(r"no matching manifest for [a-z]{1,16}/arm"),
        "the image has no manifest for the node's ARM architecture",
        also=("5",),
    ),
    _Rule(
        "platform-wanted-same-os",
        "1b",
        _rx(r"does not match the specified platform: wanted ([a-z]{1,16})/\S{1,64}, actual: \1/"),
        "the image exists for the node's OS but for another CPU architecture",
        also=("5",),
    ),
    _Rule(
        "platform-docker",
        "5",
        _rx(r"no matching manifest for|does not match the specified platform"),
        "the image has no manifest for the node's platform, most often its OS",
        also=("1b",),
    ),
    _Rule(
        "platform-containerd",
        "5",
        _rx(r"no match for platform in manifest"),
        "the image has no manifest for the node's OS (Linux image on a Windows node or reverse)",
        also=("1b",),
    ),
    _Rule(
        "windows-os",
        "5",
        _rx(r"image operating system \"?[a-z]{1,16}\"? cannot be used on this platform"),
        "the Windows node cannot run an image built for another OS",
    ),
    _Rule(
        "exec-format",
        "1b",
        _rx(r"exec format error"),
        "a binary was built for another CPU architecture than the node (arm64 vs amd64)",
    ),
    # ACR's firewall answer, also when embedded in a JSON error body.
    _Rule(
        "acr-firewall",
        "3",
        _rx(r"client with IP '?[0-9a-f.:]{2,45}'? is not allowed access"),
        "the registry firewall does not allow the node's egress IP (or public access is off "
        "and the private DNS zone is not linked, so the public IP was used)",
    ),
    # Blob download from the registry's storage / data endpoint refused.
    _Rule(
        "storage-403",
        "3",
        _rx(r"AuthorizationFailure|This request is not authorized to perform this operation"),
        "the registry's storage refused the layer download from this network",
    ),
    _Rule(
        "token-403",
        "3",
        _rx(rf"failed to fetch (?:oauth|anonymous) token: {_STATUS}403(?: Forbidden)?"),
        "the registry's token endpoint answered 403, a network rule (firewall, private "
        "endpoint, DNS link) rather than missing rights",
    ),
    _Rule(
        "aad-secret-expired",
        "1a",
        _rx(r"AADSTS7000222"),
        "Entra ID says the service principal's client secret expired",
    ),
    _Rule(
        "aad-secret-invalid",
        "1a",
        _rx(r"AADSTS7000215"),
        "Entra ID says the service principal's client secret is wrong",
    ),
    _Rule(
        "aad-error",
        "1a",
        _rx(r"AADSTS\d{5,7}"),
        "Entra ID refused to issue a token for the cluster's identity",
    ),
    # Credentials were presented and refused: an authorization problem, not a naming one.
    _Rule(
        "oauth-401",
        "1a",
        _rx(rf"failed to fetch oauth token: {_STATUS}401(?: Unauthorized)?"),
        "kubelet presented credentials and the registry refused them (missing AcrPull, "
        "expired or wrong secret, detached kubelet identity)",
    ),
    # No credentials were presented: a wrong image name yields the same anonymous 401.
    _Rule(
        "anonymous-401",
        "1a",
        _rx(rf"failed to fetch anonymous token: {_STATUS}401(?: Unauthorized)?"),
        "kubelet pulled anonymously and was refused, so it had no usable credentials for this "
        "registry (or the image name is wrong)",
        also=("2",),
    ),
    _Rule(
        "insufficient-scope",
        "1a",
        _rx(r"insufficient_scope"),
        "the token lacks pull rights on the repository (no permission, or no such repository)",
        also=("2",),
    ),
    _Rule(
        "acr-unauthorized",
        "1a",
        _rx(r"unauthorized: authentication required"),
        "the registry required authentication that the pull did not satisfy",
        also=("2",),
    ),
    _Rule(
        "pull-access-denied",
        "2",
        _rx(r"pull access denied"),
        "the repository does not exist or needs credentials the pull did not have",
        also=("1a",),
    ),
    # containerd: '<ref>: not found'. The ref must start with a registry host, so file paths
    # ('/bin/sh: not found') and configmaps ('configmap "x" not found') do not match.
    _Rule(
        "ref-not-found",
        "2",
        _rx(rf"(?<![^\s\"'(\[,=]){_HOST}/[a-z0-9_.\-/:@+]{{1,512}}: not found"),
        "the registry has no such image (check registry host, repository and tag)",
    ),
    _Rule(
        "manifest-unknown",
        "2",
        _rx(r"manifest unknown|manifest for \S{1,512} not found"),
        "the registry has no manifest for this tag or digest",
    ),
    _Rule(
        "name-unknown",
        "2",
        _rx(r"name[_ ]unknown|repository name not known|repository \S{1,512} not found"),
        "the registry has no such repository",
    ),
    # A registry host that does not resolve: on an ACR suffix the name is probably right and
    # private DNS is broken; on anything else the login server is probably mistyped.
    _Rule(
        "no-such-host-acr",
        "3",
        _rx(rf"lookup [a-z0-9.\-]{{0,253}}{_ACR_SUFFIX}\.?(?: on \S{{1,64}})?: no such host"),
        "the ACR login server does not resolve, which points at private DNS (zone not linked)",
        also=("2",),
        needs_pull_context=True,
    ),
    _Rule(
        "no-such-host",
        "2",
        _rx(r"(?:lookup [a-z0-9.\-]{1,253}(?: on \S{1,64})?: )?no such host"),
        "the registry host does not resolve, most often a mistyped login server",
        also=("3",),
        needs_pull_context=True,
    ),
    _Rule(
        "timeout",
        "4",
        _rx(
            r"i/o timeout|context deadline exceeded|connection timed out|TLS handshake timeout"
            r"|Client\.Timeout exceeded"
        ),
        "the registry endpoint did not answer, typical of a private endpoint without VNet "
        "peering or behind a hub firewall",
        needs_pull_context=True,
    ),
    _Rule(
        "http-403",
        "3",
        _rx(r"\b(?:403 )?forbidden\b"),
        "the registry or its storage answered 403 Forbidden, a network rule rather than rights",
        needs_pull_context=True,
    ),
    _Rule(
        "http-401",
        "1a",
        _rx(r"\b(?:401 )?unauthorized\b"),
        "the registry answered 401 Unauthorized",
        also=("2",),
        needs_pull_context=True,
    ),
)

_COMBOS: tuple[_Combo, ...] = (
    # The guide's 1b message: one attempt finds no platform match, the fallback gets a 401.
    _Combo(
        all_of=(
            frozenset({"platform-containerd", "platform-docker"}),
            frozenset({r.name for r in _RULES if r.family == "1a"}),
        ),
        cause="1b",
        candidates=("1b", "1a", "5"),
        why="a missing platform match next to an authorization failure is the guide's "
        "signature of an image built for another CPU architecture",
    ),
)

# Where one error of a kubelet/containerd/Docker message starts.
_ERROR_START = _rx(r"(?=rpc error:|failed to pull and unpack image|Error response from daemon:)")
# Words that show the message is about pulling an image (needed by generic rules).
_PULL_CONTEXT = _rx(
    r"failed to pull|pulling image|failed to resolve reference|ErrImagePull|ImagePullBackOff"
    r"|pull access denied|Error response from daemon|/v2/|/oauth2/token|manifest"
    rf"|{_ACR_SUFFIX}|blob\.core\.windows\.net"
)
# Markdown / JSON escapes seen in pasted messages: \" \: \< \>
_ESCAPE = re.compile(r"\\([\":<>])")
_REF = r"[a-z0-9][a-z0-9_.\-/:@+]{0,511}"
_IMAGE = (
    _rx(
        r"(?:Failed to pull image|Back-off pulling image|Pulling image"
        r"|failed to pull and unpack image|failed to resolve reference|failed to get sandbox image)"
        rf' "(?P<ref>{_REF})"'
    ),
    # Docker daemon wording names the image without quotes.
    _rx(rf"(?:manifest for|pull access denied for|repository) (?P<ref>{_REF})(?:,| not found)"),
)
_REGISTRY_URL = _rx(r"https?://(?P<host>[a-z0-9.\-]{1,253}(?::\d{1,5})?)/(?:v2/|oauth2/)")
_QUERY = re.compile(r"\?[^\s\"']*")  # SAS signatures must not reach reasons / tickets


def classify(message: str) -> Classification:
    """Rank the guide's cause families for one image-pull error message."""
    text = _ESCAPE.sub(r"\1", message[:MAX_SCAN_CHARS] if isinstance(message, str) else "")
    image = _image(text)
    host = _registry_host(image, text)
    hits = _hits(text)
    names = {hit.rule.name for hit in hits}
    for combo in _COMBOS:
        if all(names & group for group in combo.all_of):
            shown = "' and '".join(_first_snippet(hits, group) for group in combo.all_of)
            reason = f"Decided by '{shown}' together: {combo.why}."
            return Classification(combo.cause, combo.candidates, reason, image, host)
    if not hits:
        return Classification(UNKNOWN, (), _unknown_reason(image), image, host)
    first, rest = hits[0], hits[1:]
    ranked = (first.rule.family, *first.rule.also, *(h.rule.family for h in rest))
    candidates = tuple(dict.fromkeys((*ranked, *(f for h in rest for f in h.rule.also))))
    reason = f"Decided by '{_snippet(first.text)}': {first.rule.why}."
    return Classification(first.rule.family, candidates, reason, image, host)


def _hits(text: str) -> list[_Hit]:
    """Signals in message order: by error, then by rule rank; each text span counted once."""
    pull_context = _PULL_CONTEXT.search(text) is not None
    rules = [r for r in _RULES if pull_context or not r.needs_pull_context]
    hits: list[_Hit] = []
    for error in _ERROR_START.split(text):
        claimed: list[tuple[int, int]] = []
        for rule in rules:
            for match in rule.pattern.finditer(error):
                start, end = match.span()
                if not any(start < c_end and c_start < end for c_start, c_end in claimed):
                    claimed.append((start, end))
                    hits.append(_Hit(rule, match.group(0)))
                    break
    return hits


def _image(text: str) -> str | None:
    for pattern in _IMAGE:
        match = pattern.search(text)
        if match:
            return match.group("ref")
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


def _first_snippet(hits: list[_Hit], names: frozenset[str]) -> str:
    return next(_snippet(h.text) for h in hits if h.rule.name in names)


def _snippet(matched: str, limit: int = 160) -> str:
    """Matched text made safe for one line of a report: no query strings, no control chars."""
    unquery = _QUERY.sub(lambda m: "?...:" if m.group(0).endswith(":") else "?...", matched)
    flat = "".join(c if c.isprintable() else " " for c in unquery)
    flat = " ".join(flat.split())
    return flat if len(flat) <= limit else f"{flat[: limit - 60]}...{flat[-57:]}"


def _unknown_reason(image: str | None) -> str:
    if image is not None:
        return (
            f"The message names image '{_snippet(image)}' but no pull failure signal "
            "(for example a bare Back-off event)."
        )
    return (
        "No image-pull failure signal found (generic network or HTTP errors count only next to "
        "an image-pull context such as 'Failed to pull image')."
    )
