"""POSTs that only read or mint a token are retried as GETs are; POSTs that write are not.

azure-core retries a POST only when it is answered 500, 503 or 504 (or with Retry-After), never
when its connection drops. The emulator keeps
connections alive as Azure's front doors do, and closes an idle one after a while: a connection
dropped under a request (``drop``: no answer at all) is what a client reusing a connection the
server has just closed sees.
"""

from __future__ import annotations

from typing import Any

import pytest

from emulator import scenario
from emulator.server import Emulator
from shared.checks.base import Status, Target
from shared.checks.pull_secret_admin_stale import PullSecretAdminStale
from tests.checks.test_image_not_found import estate_spec
from tests.checks.test_image_not_found import run as image_check
from tests.support.estate import fresh_estate

IMAGE = "acr1.azurecr.io/team/app:v1.2.0"


def statuses(emulator: Emulator, service: str, ending: str) -> list[int]:
    return [e.status for e in emulator.journal(service) if e.path.endswith(ending)]


@pytest.mark.parametrize(
    ("fault", "seen"), [({"drop": True}, [0, 200]), ({"status": 502}, [502, 200])]
)
def test_a_registry_token_exchange_is_retried(
    emulator: Emulator, app_env: dict[str, str], fault: dict[str, Any], seen: list[int]
) -> None:
    scenario.load(emulator.state, estate_spec())
    emulator.inject(r"/oauth2/exchange$", method="POST", times=1, **fault)

    finding = image_check(emulator, IMAGE)

    assert finding.status is Status.PASS, finding.summary
    assert statuses(emulator, "acr", "/oauth2/exchange") == seen


def test_a_pull_token_request_answered_bad_gateway_is_retried(
    emulator: Emulator, app_env: dict[str, str]
) -> None:
    scenario.load(emulator.state, estate_spec())
    emulator.inject(r"/oauth2/token$", method="POST", status=502, times=1)

    assert image_check(emulator, IMAGE).status is Status.PASS
    assert statuses(emulator, "acr", "/oauth2/token") == [502, 200]


@pytest.mark.parametrize("action", ["listClusterUserCredential", "listCredentials"])
def test_a_dropped_credential_listing_is_retried(
    emulator: Emulator, app_env: dict[str, str], action: str
) -> None:
    scenario.load(emulator.state, "kubernetes-pulls")
    emulator.inject(rf"/{action}$", method="POST", drop=True, times=1)
    estate = fresh_estate()
    cluster = estate.get_cluster(scenario.find_cluster(emulator.state, "aks-shop-weu")["id"])
    registry = scenario.find_registry(emulator.state, "acrshopweu")["id"]

    finding = PullSecretAdminStale().run(Target(cluster, registry), estate)

    assert finding.status is Status.PASS, finding.summary
    assert statuses(emulator, "arm", f"/{action}") == [0, 200]
