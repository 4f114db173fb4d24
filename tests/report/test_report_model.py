"""The fleet report from findings and audit records: grouping, credentials, redaction, HTML."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from shared.checks import Finding, Status
from shared.fleet import PairReport
from shared.report.collect import SP_SECRET, TOKEN_PASSWORD, from_diagnosis, from_store
from shared.report.render import render_html
from shared.store import AuditRecord

NOW = datetime(2026, 12, 3, 8, 0, tzinfo=UTC)
SUB = "/subscriptions/9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c"
CLUSTER = f"{SUB}/resourceGroups/rg-aks/providers/Microsoft.ContainerService/managedClusters/aks-a"
REGISTRY = f"{SUB}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry/registries/acra"
APP = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
SECRET = "Xy78Q~" + "aBcD3fGh1jKlMn0pQrStUvWxYz0123456789"[:34]  # an Entra ID client secret's shape


def finding(cause: str, status: Status, **evidence: object) -> Finding:
    return Finding(cause, status, f"{cause} says so", CLUSTER, None, evidence, (f"az {cause}",))


def pair(*findings: Finding, cluster: str = CLUSTER, name: str = "aks-a") -> PairReport:
    return PairReport(cluster, name, REGISTRY, "acra.azurecr.io/app:v1", findings)


def test_credentials_come_from_the_checks_evidence() -> None:
    expired = (NOW - timedelta(days=3)).isoformat()
    later = (NOW + timedelta(days=90)).isoformat()
    report = from_diagnosis(
        [
            pair(
                finding(
                    "sp-secret-expired",
                    Status.FAIL,
                    appId=APP,
                    credentials=[{"keyId": "k1", "displayName": "rbac", "endDateTime": expired}],
                ),
                finding(
                    "pull-secret-token-invalid",
                    Status.PASS,
                    secrets=[
                        {"token": "ci-pull", "passwords": [{"name": "password1", "expiry": later}]}
                    ],
                ),
            ),
            pair(
                finding(
                    "sp-secret-expired",
                    Status.FAIL,
                    appId=APP,
                    credentials=[{"keyId": "k1", "displayName": "rbac", "endDateTime": expired}],
                ),
                cluster=CLUSTER.replace("aks-a", "aks-b"),
                name="aks-b",
            ),
        ],
        now=NOW,
    )
    sp, token = report.credentials
    assert (sp.kind, sp.owner, sp.name, sp.clusters) == (SP_SECRET, APP, "rbac", ("aks-a", "aks-b"))
    assert round(sp.days_left(NOW) or 0) == -3
    assert (token.kind, token.owner, token.name) == (TOKEN_PASSWORD, "ci-pull", "password1")
    assert [c.name for c in report.clusters] == ["aks-a", "aks-b"]
    assert report.by_cause() == {"sp-secret-expired": 2}


def test_the_html_is_self_contained_escaped_and_redacted() -> None:
    hostile = '<img src=x onerror="alert(1)">'
    report = from_diagnosis(
        [
            pair(
                Finding(
                    "pull-secret-sp-invalid",
                    Status.FAIL,
                    f"the secret {SECRET} is refused {hostile}",
                    CLUSTER,
                    "refresh-pull-secret",
                    {
                        "password": SECRET,
                        "note": hostile,
                        "appId": APP,
                        "credentials": [
                            {"displayName": "</script><b>x", "endDateTime": "2027-01-01T00:00:00Z"}
                        ],
                    },
                    (f"kubectl create secret docker-registry x --docker-password={SECRET}",),
                )
            )
        ],
        now=NOW,
    )
    page = render_html(report)
    assert SECRET not in page
    assert hostile not in page and "&lt;img src=x" in page
    assert "<script" not in page.lower()
    # Nothing to fetch: no src/href to another document, no CSS import, no url(http...).
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)
    assert "@import" not in page and "url(http" not in page
    assert page.count("<svg") == 2  # failed checks by cause; expiry timeline


def test_from_store_keeps_the_last_word_per_cluster_and_cause() -> None:
    def record(minutes: int, cause: str, decision: str, result: str, status: str) -> AuditRecord:
        return AuditRecord(
            when=NOW - timedelta(minutes=minutes),
            correlation_id="c0ffee00-0000-4000-8000-000000000000",
            signal_id="drift:1",
            cluster_id=CLUSTER,
            cause_id=cause,
            action_id="attach-acr" if cause == "acrpull-missing" else None,
            decision=decision,
            reason=f"{cause} {decision}",
            before={
                "cause": cause,
                "status": status,
                "summary": f"{cause} failed",
                "resource": REGISTRY,
                "evidence": {},
                "commands": ["az x"],
            },
            result=result,
        )

    report = from_store(
        [
            record(30, "acrpull-missing", "auto", "failed", "FAIL"),
            record(10, "acrpull-missing", "auto", "applied; verification PASS", "FAIL"),
            record(20, "image-not-found", "ticket", "ticketed", "FAIL"),
        ],
        now=NOW,
    )
    (cluster,) = report.clusters
    assert cluster.state == "failing"
    assert [f.cause_id for p in cluster.pairs for f in p.problems] == ["image-not-found"]
    assert [a.result for a in report.actions] == [
        "applied; verification PASS",
        "ticketed",
        "failed",
    ]
