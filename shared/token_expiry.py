"""The expiry sweep for repository-scoped tokens: a warning at each policy window.

A token password (``password1``/``password2``) can carry an expiry; ARM shows it, never the value,
and never which slot a pull secret holds. The sweep warns about the slot of each token in use that
expires first among those still valid: a pull secret may hold it. A slot that already expired is
the check's business (``pull-secret-token-invalid`` FAILs the secrets that held it; secrets that
still sign in held the other slot). One ticket per token (resource: the token's id), a comment
at each window crossing, closed when the slot is renewed beyond every window. The warning is a
ticket: rotating a password that still works is a person's decision (generate the other slot,
move the secrets to it), so it proposes no action.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.checks.base import Finding, Status
from shared.checks.pull_secret_token_invalid import CAUSE
from shared.models import Cluster
from shared.ports.registries import Registry
from shared.ports.registry_tokens import RegistryToken, TokenPassword

HANDOVER_VERSION = 1
MAX_LISTED = 100


@dataclass(frozen=True)
class TokenUse:
    """A registry's token and the pull secrets built from it."""

    registry: Registry
    token_id: str
    token_name: str
    pull_secrets: tuple[tuple[Cluster, str], ...]  # (cluster, "namespace/name")

    @property
    def sweep(self) -> str:
        return "expiry"

    @property
    def home(self) -> Cluster:
        """The cluster the policy scope and the ticket are decided for."""
        return self.pull_secrets[0][0]

    def message(self, signal_id: str) -> dict[str, Any]:
        return {
            "v": HANDOVER_VERSION,
            "sweep": "expiry",
            "signal": signal_id,
            "token": self.token_id,
            "pullSecrets": [{"cluster": c.id, "ref": ref} for c, ref in self.pull_secrets][
                :MAX_LISTED
            ],
        }


def first_to_expire(token: RegistryToken, now: datetime) -> TokenPassword | None:
    """The valid slot that expires first (None when no valid slot has an expiry)."""
    dated = [p for p in token.passwords if p.expiry is not None and not p.expired(now)]
    return min(dated, key=lambda p: p.expiry or now, default=None)


def all_expired(token: RegistryToken, now: datetime) -> bool:
    return bool(token.passwords) and all(p.expired(now) for p in token.passwords)


def expiry_finding(
    use: TokenUse,
    token: RegistryToken,
    *,
    now: datetime,
    window: int | None,
    windows: tuple[int, ...],
    label: str,
) -> Finding:
    slot = first_to_expire(token, now)
    days = slot.days_left(now) if slot else None
    users = [f"pull secret {ref} in {c.name}" for c, ref in use.pull_secrets]
    used = f"; used by {', '.join(users[:10])}" + (" and more" if len(users) > 10 else "")
    name = f"token {token.name} of {use.registry.name}"
    evidence: dict[str, Any] = {
        "registry": use.registry.id,
        "token": token.name,
        "tokenId": token.id,
        "status": token.status,
        "window": label,
        "slot": slot.name if slot else None,
        "daysLeft": None if days is None else round(days, 1),
        "expiryWindows": list(windows),
        "passwords": [
            {
                "name": p.name,
                "expiry": p.expiry.isoformat() if p.expiry else None,
                "daysLeft": None if (left := p.days_left(now)) is None else round(left, 1),
            }
            for p in token.passwords
        ],
        "pullSecrets": [f"{c.name}/{ref}" for c, ref in use.pull_secrets],
    }
    if window is None:
        status = Status.PASS
        summary = (
            f"No password of {name} expires inside a warning window"
            + (f" ({slot.name} has {days:.0f} days left)" if slot and days is not None else "")
            + f"{used}."
        )
    elif window == 0:
        status = Status.FAIL
        summary = (
            f"Every password of {name} has expired: the expired window{used}. Pulls with it "
            "get 401 Unauthorized."
        )
    else:
        status = Status.FAIL
        assert slot is not None and days is not None
        summary = (
            f"{slot.name} of {name} expires in {days:.0f} days, inside the {label} window "
            f"(ARM does not say which slot a pull secret holds: one may hold it){used}."
        )
    return Finding(
        cause_id=CAUSE,
        status=status,
        summary=summary,
        resource_id=token.id,
        action_id=None,
        evidence=evidence,
        commands=expiry_commands(use, slot.name if slot else "password1"),
    )


def expiry_commands(use: TokenUse, expiring: str) -> tuple[str, ...]:
    """The safe rotation: a new value in the OTHER slot, the secrets moved to it."""
    acr, token = use.registry.name, use.token_name
    other = "password2" if expiring == "password1" else "password1"
    commands = [
        f'az acr token show -n {token} -r {acr} --query "credentials.passwords" -o table',
        f"TOKEN_PASSWORD=$(az acr token credential generate -n {token} -r {acr} --{other} "
        '--expiration-in-days 90 --query "passwords[0].value" -o tsv)',
    ]
    for cluster, ref in use.pull_secrets[:10]:
        namespace, _, name = ref.partition("/")
        commands.append(
            f"kubectl create secret docker-registry {name} -n {namespace} "
            f"--docker-server={use.registry.login_server} --docker-username={token} "
            '--docker-password="$TOKEN_PASSWORD" --dry-run=client -o yaml | kubectl apply -f -'
            f"  # in {cluster.name}"
        )
    return tuple(commands)
