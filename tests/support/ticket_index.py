"""An in-memory ticket index (the Table store implements the same protocol in production), and the
findings the ticket tests feed: one carrying secrets that must never reach a ticket."""

from __future__ import annotations

import base64
import json

from shared.checks.base import Finding, Status
from shared.tickets.model import TicketRef

CLUSTER_ID = (
    "/subscriptions/9a3c1b2e-5d4f-4e6a-8b7c-1d2e3f4a5b6c/resourceGroups/rg-aks-prod"
    "/providers/Microsoft.ContainerService/managedClusters/aks-prod-weu"
)
PASSWORD = "Hunter2-Very-Secret-Pa55word!"
JWT = (
    "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhcHAiLCJhdWQiOiJodHRwczovL21hbmFnZW1lbnQu"
    "YXp1cmUuY29tIn0.c2lnbmF0dXJlLXRoYXQtbXVzdC1uZXZlci1sZWFr"
)
BLOB = "q3Xk9Lm2Pz7Rt4Vb8Nw1Yc6Hd5Jf0Gs3Ka9Qe2Tu"  # a registry password's shape


def dockerconfigjson(password: str = PASSWORD) -> str:
    auth = base64.b64encode(f"contosoacr:{password}".encode()).decode()
    config = {"auths": {"contosoacr.azurecr.io": {"username": "contosoacr", "auth": auth}}}
    return base64.b64encode(json.dumps(config).encode()).decode()


def secret_values() -> list[str]:
    """Every secret the hostile finding carries, raw and encoded."""
    auth = base64.b64encode(f"contosoacr:{PASSWORD}".encode()).decode()
    return [PASSWORD, JWT, BLOB, auth, dockerconfigjson()]


class MemoryIndex:
    def __init__(self) -> None:
        self.refs: dict[str, TicketRef] = {}

    def get_ticket(self, fingerprint: str) -> TicketRef | None:
        return self.refs.get(fingerprint)

    def put_ticket(self, fingerprint: str, ref: TicketRef) -> None:
        self.refs[fingerprint] = ref

    def close_ticket(self, fingerprint: str) -> None:
        ref = self.refs.get(fingerprint)
        if ref is not None:
            self.refs[fingerprint] = ref.closed()


def finding(
    *, cause: str = "acrpull-missing", resource_id: str = CLUSTER_ID, hostile: bool = False
) -> Finding:
    evidence: dict[str, object] = {
        "kubelet_identity": "aks-prod-weu-agentpool",
        "registry": "contosoacr.azurecr.io",
        "role_assignments": 0,
        "checked_at": "2024-05-01T12:00:00Z",
    }
    if hostile:
        evidence.update(
            {
                "password": PASSWORD,
                "dockerconfigjson": dockerconfigjson(),
                "pull_secret": {".dockerconfigjson": dockerconfigjson()},
                "last_error": f"401 Unauthorized for bearer {JWT}",
                "detail": f"admin user enabled, current value {BLOB}",
            }
        )
    return Finding(
        cause_id=cause,
        status=Status.FAIL,
        summary="The kubelet identity aks-prod-weu-agentpool has no AcrPull role on contosoacr.",
        resource_id=resource_id,
        action_id="attach-acr",
        evidence=evidence,
        commands=(
            "az aks update -g rg-aks-prod -n aks-prod-weu --attach-acr contosoacr",
            *(
                (f"docker login contosoacr.azurecr.io -u contosoacr --password {PASSWORD}",)
                if hostile
                else ()
            ),
        ),
    )
