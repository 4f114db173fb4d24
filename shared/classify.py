"""Classify a kubelet image-pull error message into a cause family of the troubleshooting guide.

The guide ("can't pull images from ACR to AKS") groups causes into families that can be told
apart from the message text alone: 1a (401, incorrect authorization), 1b (incompatible CPU
architecture), 2 (image not found), 3 (403 Forbidden: firewall, private DNS, storage), 4 (i/o
timeout: peering, hub firewall), 5 (OS mismatch) and 6 (pulls throttled: the kubelet's pull QPS,
or the registry's own limit answered with 429 ``toomanyrequests``, beyond the guide). The checks
then find the exact cause inside the family; this module only ranks the families.

How it decides:

* First the message is unwrapped (:mod:`shared.pullerror.unwrap`): logrus / klog / JSON escapes,
  ``\\u0027``, HTML and XML error pages, CSV quoting, line wrapping. Then it is taken apart
  (:mod:`shared.pullerror.anatomy`): image, runtime (containerd, Docker, CRI-O, Windows), transport
  failure, HTTP statuses, registry error codes and the platform the runtime looked for.
* The message is split into errors (``rpc error:``, ``failed to pull and unpack image``, Docker's
  ``Error response from daemon:``). Kubelet lists several attempts in ``[..., ...]``; the FIRST
  error that carries a signal decides the cause, later errors only add candidates.
* Inside one error, rules are tried in table order (most specific first). A piece of text is
  explained by one rule only, so a generic ``401 Unauthorized`` rule does not re-count the
  status line that a specific ``failed to fetch oauth token`` rule already claimed.
* Combinations that mean something else than their parts (the guide's 1b message: no platform
  match AND a 401) are checked first, over the whole message; a platform miss for a named Linux
  platform on another CPU (``linux/arm64``) is an architecture problem, not an OS one.
* Generic network / HTTP words (``i/o timeout``, ``no such host``, ``EOF``, ``403 Forbidden``)
  count only when the message is about an image pull, so probe failures or CNI errors stay
  ``unknown``. Pull context is the kubelet's words, a runtime's, or a registry URL.

Pure: stdlib only, no I/O, never raises, linear time.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from shared.pullerror import Anatomy, read, unwrap

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
    anatomy: Anatomy | None = field(default=None, compare=False)  # structure read from the text

    @property
    def runtime(self) -> str | None:
        """windows, cri-o, containerd, docker or kubelet: who wrote the message, if it shows."""
        return self.anatomy.runtime if self.anatomy else None

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (the `shared.cli classify --json` contract)."""
        return {
            "cause": self.cause,
            "candidates": list(self.candidates),
            "reason": self.reason,
            "image": self.image,
            "registry_host": self.registry_host,
            **(self.anatomy.to_dict() if self.anatomy else {}),
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
    # The registry's own limit (ACR ReadOps per minute by SKU, Docker Hub's pull rate limit):
    # the registry error code is unambiguous wherever it appears.
    _Rule(
        "registry-toomanyrequests",
        "6",
        _rx(r"toomanyrequests"),
        "the registry throttled the pulls (429 toomanyrequests): its request limit, for ACR the "
        "SKU's ReadOps per minute, was exceeded by a burst of pulls",
    ),
    _Rule(
        "http-429",
        "6",
        _rx(r"Too Many Requests|(?:HTTP |Status |StatusCode: )429\b"),
        "the registry answered 429 Too Many Requests: a burst of pulls exceeded its request limit",
        needs_pull_context=True,
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
    # CRI-O / containers/image name the platform they looked for.
    _Rule(
        "platform-crio",
        "1b",
        _rx(r"no image found in manifest list for architecture"),
        "the image's manifest list has no entry for the node's CPU architecture",
        also=("5",),
    ),
    _Rule(
        "platform-docker-unsupported",
        "1b",
        _rx(r"no supported platform found in manifest list"),
        "the image's manifest list has no entry for the node's platform, most often its CPU",
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
    # containerd on Windows cannot unpack Linux layers into a Windows snapshot.
    _Rule(
        "windows-layer",
        "5",
        # The snapshot path is Windows-style (C:\\ProgramData\\...): unwrapping may have read its
        # backslashes as escapes, so any short text may stand between the two phrases.
        _rx(r"hcsshim::ProcessBaseLayer .{1,512}?The system cannot find the path specified"),
        "the Windows node could not unpack the image's layers: a Linux image on a Windows node",
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
        _rx(r"client with IP '?[0-9a-fx.:*]{2,45}'? is not allowed access"),
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
    # Docker's credential helpers found nothing to present for this registry.
    _Rule(
        "no-credentials",
        "1a",
        _rx(
            r"no basic auth credentials|no username present in auth config"
            r"|invalid username/password"
        ),
        "the node had no valid credentials for this registry (no pull secret or credential "
        "provider for it, or a wrong one)",
    ),
    _Rule(
        "insufficient-scope",
        "1a",
        _rx(r"insufficient_scope"),
        "the token lacks pull rights on the repository (no permission, or no such repository)",
        also=("2",),
    ),
    # Docker Hub and others say 'denied' for a repository that does not exist; ACR also says it
    # when the token has no pull right on the repository.
    _Rule(
        "access-denied",
        "2",
        _rx(r"denied: requested access to the resource is denied"),
        "the registry denied access to the repository: it does not exist, or the pull has no "
        "right on it",
        also=("1a",),
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
        "tag-not-found",
        "2",
        _rx(r"Tag \S{1,128} not found in repository"),
        "the repository has no such tag",
    ),
    _Rule(
        "name-unknown",
        "2",
        _rx(r"name[_ ]unknown|repository name not known|repository \S{1,512} not found"),
        "the registry has no such repository",
    ),
    # A registry host that does not resolve. Public DNS answers for every registry that exists,
    # also behind a private endpoint (the name CNAMEs to privatelink.azurecr.io and, without a
    # linked zone, to the public address, which gives a 403 rather than no such host). So an
    # *.azurecr.io name that does not resolve most often names no registry: mistyped or
    # deleted. A private zone linked to the VNet but without the registry's record is second.
    _Rule(
        "no-such-host-acr",
        "2",
        _rx(rf"lookup [a-z0-9.\-]{{0,253}}{_ACR_SUFFIX}\.?(?: on \S{{1,64}})?: no such host"),
        "no registry answers to this *.azurecr.io name (mistyped or deleted registry; less often "
        "a linked private DNS zone without the registry's record)",
        also=("3",),
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
        "proxy",
        "4",
        _rx(r"proxyconnect tcp"),
        "the node's egress proxy could not be reached or resolved",
        needs_pull_context=True,
    ),
    _Rule(
        "timeout",
        "4",
        _rx(
            r"i/o timeout|context deadline exceeded|connection timed out|TLS handshake timeout"
            r"|Client\.Timeout exceeded|408 Request Time-?out|HTTP 408\b"
        ),
        "the registry endpoint did not answer, typical of a private endpoint without VNet "
        "peering or behind a hub firewall",
        needs_pull_context=True,
    ),
    # The connection was cut: something on the path (firewall, proxy, NVA) dropped it.
    _Rule(
        "transport-cut",
        "4",
        _rx(r"connection reset by peer|broken pipe|connection refused|no route to host|: EOF\b"),
        "the connection to the registry was cut or refused on the way (hub firewall, proxy or "
        "network appliance), not answered by the registry",
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
    r"|pull access denied|Error response from daemon|/v2/|/oauth2/|manifest|/v1/_ping"
    r"|error pulling image configuration|error parsing HTTP \d{3} response body"
    r"|httpRead(?:er)?Seeker|error pinging docker registry"
    r"|Pulling (?:from|fs layer|repository|[a-z0-9_-]{1,64} \()"
    rf"|{_ACR_SUFFIX}|blob\.core\.windows\.net"
)
_QUERY = re.compile(r"\?[^\s\"']*")  # SAS signatures must not reach reasons / tickets


def classify(message: str) -> Classification:
    """Rank the guide's cause families for one image-pull error message."""
    text = unwrap(message[:MAX_SCAN_CHARS] if isinstance(message, str) else "")
    anatomy = read(text)
    image, host = anatomy.image, anatomy.registry_host
    hits = _hits(text, pull_context=_is_pull(text, anatomy))
    names = {hit.rule.name for hit in hits}
    for combo in _COMBOS:
        if all(names & group for group in combo.all_of):
            shown = "' and '".join(_first_snippet(hits, group) for group in combo.all_of)
            reason = f"Decided by '{shown}' together: {combo.why}."
            return Classification(combo.cause, combo.candidates, reason, image, host, anatomy)
    if not hits:
        return Classification(UNKNOWN, (), _unknown_reason(image), image, host, anatomy)
    first, rest = hits[0], hits[1:]
    family, also, why = first.rule.family, first.rule.also, first.rule.why
    if first.rule.name in _PLATFORM_RULES and _names_other_cpu(anatomy):
        # The runtime named the platform it wanted: a Linux platform on another CPU than amd64
        # (an arm64 pool) is an architecture problem, whatever the generic wording suggests.
        family, also = "1b", ("5",)
        why = f"the image has no manifest for {'/'.join(anatomy.platform or ())}, the node's CPU"
    ranked = (family, *also, *(h.rule.family for h in rest))
    candidates = tuple(dict.fromkeys((*ranked, *(f for h in rest for f in h.rule.also))))
    reason = f"Decided by '{_snippet(first.text)}': {why}."
    return Classification(family, candidates, reason, image, host, anatomy)


# Platform misses whose words alone cannot tell the OS from the CPU.
_PLATFORM_RULES = frozenset({"platform-docker", "platform-containerd"})


def _names_other_cpu(anatomy: Anatomy) -> bool:
    platform = anatomy.platform
    return platform is not None and platform[0] == "linux" and platform[1] != "amd64"


def _is_pull(text: str, anatomy: Anatomy) -> bool:
    """Generic words count only in a message about pulling an image."""
    return anatomy.image is not None or _PULL_CONTEXT.search(text) is not None


def _hits(text: str, *, pull_context: bool) -> list[_Hit]:
    """Signals in message order: by error, then by rule rank; each text span counted once."""
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
