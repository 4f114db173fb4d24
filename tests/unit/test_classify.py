"""Tests for shared.classify: kubelet image-pull error message -> guide cause family."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.classify import FAMILIES, MAX_SCAN_CHARS, UNKNOWN, Classification, classify

IMG = "myacr.azurecr.io/app:v1"
HEAD = "Failed to pull image"
C1 = f'rpc error: code = Unknown desc = failed to pull and unpack image "{IMG}"'
RESOLVE = f'failed to resolve reference "{IMG}"'
TOKEN_URL = (
    "https://myacr.azurecr.io/oauth2/token?scope=repository%3Aapp%3Apull&service=myacr.azurecr.io"
)

# One realistic message per form. (id, message, cause, candidates in exact order)
CASES: list[tuple[str, str, str, tuple[str, ...]]] = [
    # --- every message quoted in the guide, with real names instead of <acrname> ---
    (
        "guide-1a-oauth-401",
        f'{HEAD} "{IMG}": [{C1}: {RESOLVE}: failed to authorize: failed to fetch oauth token: '
        "unexpected status: 401 Unauthorized",
        "1a",
        ("1a",),
    ),
    (
        "guide-1b-platform-plus-401",
        f'{HEAD} "{IMG}": [rpc error: code = NotFound desc = failed to pull and unpack image '
        f'"{IMG}": no match for platform in manifest: not found, failed to pull and unpack image '
        f'"{IMG}": {RESOLVE}: failed to authorize: failed to fetch anonymous token: unexpected '
        f"status from GET request to {TOKEN_URL}: 401 Unauthorized]",
        "1b",
        ("1b", "1a", "5"),
    ),
    (
        "guide-1b-platform-plus-oauth-401-short",
        f'{HEAD} "{IMG}": [rpc error: code = NotFound desc = failed to pull and unpack image '
        f'"{IMG}": no match for platform in manifest: not found, failed to pull and unpack image '
        f'"{IMG}": {RESOLVE}: failed to authorize: failed to fetch oauth token: unexpected '
        "status: 401 Unauthorized]",
        "1b",
        ("1b", "1a", "5"),
    ),
    (
        "guide-1b-401-listed-before-platform",
        f'{HEAD} "{IMG}": [{C1}: {RESOLVE}: failed to authorize: failed to fetch anonymous '
        "token: unexpected status: 401 Unauthorized, rpc error: code = NotFound desc = failed to "
        f'pull and unpack image "{IMG}": no match for platform in manifest: not found]',
        "1b",
        ("1b", "1a", "5"),
    ),
    (
        "guide-1b-check-acr-exec-format",
        "exec /canipull: exec format error",
        "1b",
        ("1b",),
    ),
    (
        "guide-2-ref-not-found",
        f'{HEAD} "{IMG}": [rpc error: code = NotFound desc = failed to pull and unpack image '
        f'"{IMG}": {RESOLVE}: {IMG}: not found',
        "2",
        ("2",),
    ),
    (
        "guide-3-anonymous-403",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: failed to authorize: failed to fetch anonymous token: '
        "unexpected status: 403 Forbidden",
        "3",
        ("3",),
    ),
    (
        "guide-4-io-timeout",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: failed to do request: Head '
        '"https://myacr.azurecr.io/v2/app/manifests/v1": dial tcp 10.224.0.7:443: i/o timeout',
        "4",
        ("4",),
    ),
    (
        "guide-5-platform-alone",
        f'{HEAD} "{IMG}": [rpc error: code = NotFound desc = failed to pull and unpack image '
        f'"{IMG}": no match for platform in manifest: not found]',
        "5",
        ("5", "1b"),
    ),
    (
        "guide-5-multiline-layout",
        f'{HEAD} "{IMG}":\n[\n  rpc error:\n  code = NotFound\n  desc = failed to pull and unpack '
        f'image "{IMG}": no match for platform in manifest: not found,\n]',
        "5",
        ("5", "1b"),
    ),
    (
        "guide-6-pull-qps",
        'Failed to pull image "acrname.azurecr.io/repo/nginx:latest": pull QPS exceeded. This '
        "occurred for pod podname at 4/22/2025, 12:48:32.000 PM UTC.",
        "6",
        ("6",),
    ),
    # --- containerd 2.x wording ---
    (
        "containerd2-oauth-401-get",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: failed to authorize: failed to fetch oauth token: '
        f"unexpected status from GET request to {TOKEN_URL}: 401 Unauthorized",
        "1a",
        ("1a",),
    ),
    (
        "containerd2-oauth-401-post",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: failed to authorize: failed to fetch oauth token: '
        "unexpected status from POST request to https://myacr.azurecr.io/oauth2/token: "
        "401 Unauthorized",
        "1a",
        ("1a",),
    ),
    (
        "containerd2-anonymous-401",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: failed to authorize: failed to fetch anonymous token: '
        f"unexpected status from GET request to {TOKEN_URL}: 401 Unauthorized",
        "1a",
        ("1a", "2"),
    ),
    (
        "containerd2-head-403",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: unexpected status from HEAD request to '
        "https://myacr.azurecr.io/v2/app/manifests/v1: 403 Forbidden",
        "3",
        ("3",),
    ),
    (
        "containerd2-anonymous-403-get",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: failed to authorize: failed to fetch anonymous token: '
        f"unexpected status from GET request to {TOKEN_URL}: 403 Forbidden",
        "3",
        ("3",),
    ),
    (
        "containerd2-head-401-after-anonymous-token",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: unexpected status from HEAD request to '
        "https://myacr.azurecr.io/v2/app/manifests/v1: 401 Unauthorized",
        "1a",
        ("1a", "2"),
    ),
    # --- Docker daemon wording (dockershim / Windows nodes) ---
    (
        "docker-unauthorized",
        'Error response from daemon: Get "https://myacr.azurecr.io/v2/app/manifests/v1": '
        "unauthorized: authentication required",
        "1a",
        ("1a", "2"),
    ),
    (
        "docker-manifest-unknown",
        "Error response from daemon: manifest for myacr.azurecr.io/app:v1 not found: manifest "
        'unknown: manifest tagged by "v1" is not found',
        "2",
        ("2",),
    ),
    (
        "docker-pull-access-denied",
        f'{HEAD} "myapp:v1": rpc error: code = Unknown desc = Error response from daemon: pull '
        "access denied for myapp, repository does not exist or may require 'docker login': "
        "denied: requested access to the resource is denied",
        "2",
        ("2", "1a"),
    ),
    (
        "docker-repository-name-unknown",
        "Error response from daemon: repository myacr.azurecr.io/ap not found: name unknown: "
        "The repository with name 'ap' does not exist in the registry with id 'myacr'",
        "2",
        ("2",),
    ),
    (
        "docker-windows-os-mismatch",
        f'{HEAD} "{IMG}": rpc error: code = Unknown desc = image operating system "linux" '
        "cannot be used on this platform",
        "5",
        ("5",),
    ),
    (
        "docker-no-matching-manifest-windows",
        f'{HEAD} "{IMG}": rpc error: code = Unknown desc = Error response from daemon: no '
        "matching manifest for windows/amd64 10.0.20348 in the manifest list entries",
        "5",
        ("5", "1b"),
    ),
    (
        "docker-no-matching-manifest-arm64",
        f'{HEAD} "{IMG}": rpc error: code = Unknown desc = Error response from daemon: no '
        "matching manifest for linux/arm64/v8 in the manifest list entries",
        "1b",
        ("1b", "5"),
    ),
    # --- lists of several rpc errors: the first one decides ---
    (
        "list-timeout-then-anonymous-401",
        f'{HEAD} "{IMG}": [{C1}: {RESOLVE}: failed to do request: Head '
        '"https://myacr.azurecr.io/v2/app/manifests/v1": dial tcp 10.224.0.7:443: i/o timeout, '
        f"{C1}: {RESOLVE}: failed to authorize: failed to fetch anonymous token: unexpected "
        "status: 401 Unauthorized]",
        "4",
        ("4", "1a", "2"),
    ),
    (
        "list-anonymous-401-then-timeout",
        f'{HEAD} "{IMG}": [{C1}: {RESOLVE}: failed to authorize: failed to fetch anonymous token: '
        f"unexpected status: 401 Unauthorized, {C1}: {RESOLVE}: failed to do request: Head "
        '"https://myacr.azurecr.io/v2/app/manifests/v1": dial tcp 10.224.0.7:443: i/o timeout]',
        "1a",
        ("1a", "2", "4"),
    ),
    (
        "list-not-found-then-oauth-401",
        f'{HEAD} "{IMG}": [rpc error: code = NotFound desc = failed to pull and unpack image '
        f'"{IMG}": {RESOLVE}: {IMG}: not found, {C1}: {RESOLVE}: failed to authorize: failed to '
        "fetch oauth token: unexpected status: 401 Unauthorized]",
        "2",
        ("2", "1a"),
    ),
    # --- oauth (credentials presented) vs anonymous token ---
    (
        "anonymous-401-containerd1",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: failed to authorize: failed to fetch anonymous token: '
        "unexpected status: 401 Unauthorized",
        "1a",
        ("1a", "2"),
    ),
    (
        "oauth-403-firewall-json-body",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: failed to authorize: failed to fetch oauth token: '
        f"unexpected status from GET request to {TOKEN_URL}: 403 Forbidden: "
        '{"errors":[{"code":"DENIED","message":"client with IP \'20.1.2.3\' is not allowed '
        'access. Refer https://aka.ms/acr/firewall to grant access."}]}',
        "3",
        ("3",),
    ),
    # --- 401 with insufficient_scope ---
    (
        "insufficient-scope-containerd",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: pull access denied, repository does not exist or may '
        "require authorization: server message: insufficient_scope: authorization failed",
        "1a",
        ("1a", "2"),
    ),
    (
        "acr-authorization-visit-link",
        f'{HEAD} "{IMG}": rpc error: code = Unknown desc = Error response from daemon: Head '
        '"https://myacr.azurecr.io/v2/app/manifests/v1": unauthorized: authentication required, '
        "visit https://aka.ms/acr/authorization for more information.",
        "1a",
        ("1a", "2"),
    ),
    # --- Entra ID client secret errors ---
    (
        "aadsts-7000222-expired-secret",
        "error getting credentials from ACR myacr.azurecr.io: Failed to get token: adal: Refresh "
        'request failed. Status Code = \'401\'. Response body: {"error":"invalid_client",'
        '"error_description":"AADSTS7000222: The provided client secret keys for app '
        "'6b9f7f4c-1c2d-4e5f-8a9b-0c1d2e3f4a5b' are expired. Visit the Azure portal to create "
        'new keys for your app: https://aka.ms/NewClientSecret.\\r\\nTrace ID: 1f2e"}',
        "1a",
        ("1a",),
    ),
    (
        "aadsts-7000215-invalid-secret",
        "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the "
        "request is the client secret value, not the client secret ID, for a secret added to "
        "app '6b9f7f4c-1c2d-4e5f-8a9b-0c1d2e3f4a5b'.",
        "1a",
        ("1a",),
    ),
    # --- no such host: a name that resolves nowhere is a wrong or deleted registry first ---
    (
        "no-such-host-mistyped-login-server",
        'Failed to pull image "myacr.azureacr.io/app:v1": rpc error: code = Unknown desc = failed '
        'to pull and unpack image "myacr.azureacr.io/app:v1": failed to resolve reference '
        '"myacr.azureacr.io/app:v1": failed to do request: Head '
        '"https://myacr.azureacr.io/v2/app/manifests/v1": dial tcp: lookup myacr.azureacr.io on '
        "168.63.129.16:53: no such host",
        "2",
        ("2", "3"),
    ),
    (
        "no-such-host-acr-name-nobody-answers",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: failed to do request: Head '
        '"https://myacr.azurecr.io/v2/app/manifests/v1": dial tcp: lookup myacr.azurecr.io on '
        "10.0.0.10:53: no such host",
        "2",
        ("2", "3"),
    ),
    (
        "no-such-host-acr-china",
        'Failed to pull image "myacr.azurecr.cn/app:v1": rpc error: code = Unknown desc = failed '
        'to pull and unpack image "myacr.azurecr.cn/app:v1": failed to resolve reference '
        '"myacr.azurecr.cn/app:v1": failed to do request: Head '
        '"https://myacr.azurecr.cn/v2/app/manifests/v1": dial tcp: lookup myacr.azurecr.cn on '
        "168.63.129.16:53: no such host",
        "2",
        ("2", "3"),
    ),
    (
        "no-such-host-fragment-on-acr-host",
        "dial tcp: lookup myacr.azurecr.us on 168.63.129.16:53: no such host",
        "2",
        ("2", "3"),
    ),
    # --- family 3 variants ---
    (
        "firewall-docker-denied",
        f'{HEAD} "{IMG}": rpc error: code = Unknown desc = Error response from daemon: Get '
        "\"https://myacr.azurecr.io/v2/\": denied: client with IP '20.1.2.3' is not allowed "
        "access. Refer https://aka.ms/acr/firewall to grant access.",
        "3",
        ("3",),
    ),
    (
        "storage-data-endpoint-403",
        f'{HEAD} "{IMG}": {C1}: failed to copy: httpReadSeeker: failed open: unexpected status '
        "code https://myacr.westeurope.data.azurecr.io/a1b2c3/blobs/sha256:4f5e?se=2025-01-01"
        "&sig=SECRETSIG: 403 Forbidden",
        "3",
        ("3",),
    ),
    (
        "storage-blob-authorization-failure",
        f'{HEAD} "{IMG}": {C1}: failed to copy: httpReadSeeker: failed open: unexpected status '
        "code https://myacrweu.blob.core.windows.net/docker/registry/v2/blobs/sha256/4f/4f5e/data"
        "?sig=SECRETSIG: 403 This request is not authorized to perform this operation.",
        "3",
        ("3",),
    ),
    # --- family 4 variants ---
    (
        "context-deadline-exceeded",
        f'{HEAD} "{IMG}": rpc error: code = DeadlineExceeded desc = failed to pull and unpack '
        f'image "{IMG}": {RESOLVE}: failed to do request: Head '
        '"https://myacr.azurecr.io/v2/app/manifests/v1": context deadline exceeded',
        "4",
        ("4",),
    ),
    # --- family 2 variants ---
    (
        "manifest-unknown-containerd",
        f'{HEAD} "{IMG}": {C1}: {RESOLVE}: unexpected status from HEAD request to '
        "https://myacr.azurecr.io/v2/app/manifests/v1: 404 Not Found: manifest unknown",
        "2",
        ("2",),
    ),
    (
        "docker-hub-ref-not-found",
        'Failed to pull image "nginx:lates": rpc error: code = NotFound desc = failed to pull and '
        'unpack image "docker.io/library/nginx:lates": failed to resolve reference '
        '"docker.io/library/nginx:lates": docker.io/library/nginx:lates: not found',
        "2",
        ("2",),
    ),
    # --- JSON-escaped quotes as pasted from `kubectl get events -o json` ---
    (
        "json-escaped-quotes",
        r"Failed to pull image \"myacr.azurecr.io/app:v1\": rpc error: code = NotFound desc = "
        r"failed to pull and unpack image \"myacr.azurecr.io/app:v1\": failed to resolve "
        r"reference \"myacr.azurecr.io/app:v1\": myacr.azurecr.io/app:v1: not found",
        "2",
        ("2",),
    ),
]

NOT_PULL_ERRORS: list[tuple[str, str]] = [
    ("crash-loop", "Back-off restarting failed container app in pod app-7d9c8_default(1f2e)"),
    (
        "volume-configmap",
        'MountVolume.SetUp failed for volume "config" : configmap "app-config" not found',
    ),
    ("error-configmap", 'Error: configmap "x" not found'),
    ("error-secret", 'Error: secret "db-password" not found'),
    (
        "liveness-timeout",
        'Liveness probe failed: Get "http://10.244.1.7:8080/healthz": context deadline exceeded '
        "(Client.Timeout exceeded while awaiting headers)",
    ),
    ("readiness-io-timeout", "Readiness probe failed: dial tcp 10.244.1.7:8080: i/o timeout"),
    (
        "liveness-no-such-host",
        'Liveness probe failed: Get "http://backend:8080/healthz": dial tcp: lookup backend on '
        "10.0.0.10:53: no such host",
    ),
    (
        "sandbox-cni-timeout",
        "Failed to create pod sandbox: rpc error: code = Unknown desc = failed to setup network "
        'for sandbox "4f5e": plugin type="azure-vnet" failed (add): dial tcp 10.0.0.4:443: '
        "i/o timeout",
    ),
    ("shell-not-found", "exec: /bin/sh: not found"),
    ("scheduling", "0/3 nodes are available: 3 Insufficient cpu."),
    ("bare-401-without-pull-context", "401 Unauthorized"),
    ("err-image-pull-reason-only", "Error: ErrImagePull"),
    ("empty", ""),
    ("whitespace", " \t\r\n  "),
]

# Every family above, for the splice strategy below.
REAL_MESSAGES = [message for _, message, _, _ in CASES]


@pytest.mark.parametrize(
    ("message", "cause", "candidates"),
    [pytest.param(m, c, cands, id=case_id) for case_id, m, c, cands in CASES],
)
def test_classifies_message_form(message: str, cause: str, candidates: tuple[str, ...]) -> None:
    result = classify(message)
    assert (result.cause, result.candidates) == (cause, candidates), result.reason
    assert result.reason.startswith("Decided by '")


@pytest.mark.parametrize("message", [pytest.param(m, id=case_id) for case_id, m in NOT_PULL_ERRORS])
def test_non_pull_messages_are_unknown(message: str) -> None:
    result = classify(message)
    assert (result.cause, result.candidates) == (UNKNOWN, ())
    assert result.reason


def test_back_off_event_alone_is_unknown_but_names_the_image() -> None:
    result = classify('Back-off pulling image "myacr.azurecr.io/team/app:v1"')
    assert (result.cause, result.candidates) == (UNKNOWN, ())
    assert result.image == "myacr.azurecr.io/team/app:v1"
    assert result.registry_host == "myacr.azurecr.io"
    assert "myacr.azurecr.io/team/app:v1" in result.reason


@pytest.mark.parametrize(
    ("message", "image", "host"),
    [
        pytest.param(CASES[0][1], IMG, "myacr.azurecr.io", id="acr"),
        pytest.param(
            'Failed to pull image "MyAcr.azurecr.io/app@sha256:4f5e6a": pull QPS exceeded',
            "MyAcr.azurecr.io/app@sha256:4f5e6a",
            "myacr.azurecr.io",
            id="digest-host-lowercased",
        ),
        pytest.param(
            'Failed to pull image "localhost:5000/app:v1": pull QPS exceeded',
            "localhost:5000/app:v1",
            "localhost:5000",
            id="host-with-port",
        ),
        pytest.param(
            'Failed to pull image "nginx:latest": pull QPS exceeded',
            "nginx:latest",
            None,
            id="docker-hub-short-name",
        ),
        pytest.param(
            'Error response from daemon: Get "https://myacr.azurecr.io/v2/app/manifests/v1": '
            "unauthorized: authentication required",
            None,
            "myacr.azurecr.io",
            id="host-from-registry-url",
        ),
        pytest.param(
            "Error response from daemon: pull access denied for myacr.azurecr.io/app, repository "
            "does not exist or may require 'docker login'",
            "myacr.azurecr.io/app",
            "myacr.azurecr.io",
            id="docker-unquoted-ref",
        ),
        pytest.param(
            'Failed to pull image "<acrname>.azurecr.io/<repository:tag>": pull QPS exceeded',
            None,
            None,
            id="guide-placeholders-are-not-an-image",
        ),
    ],
)
def test_extracts_image_and_registry_host(
    message: str, image: str | None, host: str | None
) -> None:
    result = classify(message)
    assert (result.image, result.registry_host) == (image, host)


def test_guide_text_verbatim_with_markdown_escapes() -> None:
    # As pasted from the guide's source: \< \: escapes and placeholders.
    message = (
        'Failed to pull image "\\<acrname>.azurecr.io/\\<repository\\:tag>": [rpc error: code = '
        'NotFound desc = failed to pull and unpack image "\\<acrname>.azurecr.io/\\<repository'
        '\\:tag>": failed to resolve reference "\\<acrname>.azurecr.io/\\<repository\\:tag>": '
        "failed to authorize: failed to fetch oauth token: unexpected status: 401 Unauthorized"
    )
    assert classify(message).cause == "1a"


def test_reason_never_carries_query_strings() -> None:
    # SAS signatures in blob URLs must not leak into reasons (they end up in tickets).
    for case_id, message, _, _ in CASES:
        assert "SECRETSIG" not in classify(message).reason, case_id


def test_to_dict_is_json_ready() -> None:
    result = classify(CASES[1][1])
    data = result.to_dict()
    assert json.loads(json.dumps(data)) == {
        "cause": "1b",
        "candidates": ["1b", "1a", "5"],
        "reason": result.reason,
        "image": IMG,
        "registry_host": "myacr.azurecr.io",
        "runtime": "containerd",
        "transport": [],
        "http_statuses": [401],
        "registry_codes": [],
        "platform": None,
    }


def test_only_the_first_max_scan_chars_are_read() -> None:
    padding = "x" * MAX_SCAN_CHARS
    assert classify(padding + CASES[0][1]).cause == UNKNOWN
    assert classify(CASES[0][1] + padding).cause == "1a"


ADVERSARIAL = [
    "a" * 1_000_000,
    "a." * 500_000,
    "a.b/" * 250_000,
    ":" * 1_000_000,
    "a.b/c: not" * 100_000,
    "lookup " * 150_000,
    "lookup a.azurecr" * 60_000,
    "failed to fetch oauth token: unexpected status from GET request to " * 15_000,
    "failed to fetch anonymous token: unexpected status from GET request to http://a" * 13_000,
    'Failed to pull image "' * 50_000,
    'Failed to pull image "' + "a:" * 500_000,
    "rpc error: " * 100_000,
    "manifest for " + "a" * 1_000_000,
    "repository " * 100_000,
    "https://" + "a." * 500_000,
    "\x00\x01\x7f\ud800" * 250_000,
    "unauthorized forbidden " * 45_000,
    "does not match the specified platform: wanted linux/" + "a" * 1_000_000,
]


@pytest.mark.parametrize(
    "message", [pytest.param(m, id=f"adv{i}") for i, m in enumerate(ADVERSARIAL)]
)
def test_huge_hostile_inputs_are_classified(message: str) -> None:
    # How fast: `make bench` measures it; here only that they finish (pytest-timeout) and hold.
    _assert_well_formed(classify(message))


def _assert_well_formed(result: Classification) -> None:
    assert isinstance(result, Classification)
    assert result.cause in (*FAMILIES, UNKNOWN)
    assert set(result.candidates) <= set(FAMILIES)
    assert len(set(result.candidates)) == len(result.candidates)
    if result.cause == UNKNOWN:
        assert result.candidates == ()
    else:
        assert result.candidates[0] == result.cause
    assert isinstance(result.reason, str)
    assert result.reason
    assert result.image is None or not any(c.isspace() for c in result.image)
    json.dumps(result.to_dict())


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_never_raises_on_any_text(message: str) -> None:
    _assert_well_formed(classify(message))


@settings(max_examples=300, deadline=None)
@given(st.binary().map(lambda b: b.decode("utf-8", "replace")))
def test_never_raises_on_decoded_bytes(message: str) -> None:
    _assert_well_formed(classify(message))


@st.composite
def spliced_messages(draw: st.DrawFn) -> str:
    """A real pull error with random text inserted at a random place (or several)."""
    message = draw(st.sampled_from(REAL_MESSAGES))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        at = draw(st.integers(min_value=0, max_value=len(message)))
        junk = draw(st.one_of(st.text(max_size=40), st.sampled_from(REAL_MESSAGES)))
        message = message[:at] + junk + message[at:]
    return message


@settings(max_examples=400, deadline=None)
@given(spliced_messages())
def test_never_raises_on_spliced_real_messages(message: str) -> None:
    _assert_well_formed(classify(message))
