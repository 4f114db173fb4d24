"""ACR tokens, scope maps and generateCredentials, against the 2025-11-01 examples.

The examples (TokenCreate, TokenGet, RegistryGenerateCredentials) are copied from
../shared/reference/rest-examples/containerregistry/ into tests/contract/examples/. The emulator
is driven with azure-mgmt-containerregistry, the data plane with raw token requests, and the
product's adapter parses the examples themselves.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from azure.mgmt.containerregistry import ContainerRegistryManagementClient
from azure.mgmt.containerregistry.models import (
    GenerateCredentialsParameters,
    ScopeMap,
    ScopeMapProperties,
    Token,
    TokenProperties,
    TokenUpdateParameters,
    TokenUpdateProperties,
)

from emulator import scenario
from emulator.server import Emulator
from shared.azure import registry_tokens as adapter
from shared.azure.factory import ClientFactory
from shared.config import Settings
from tests.conftest import PROD_SUB
from tests.contract.test_rbac_routes import raw

EXAMPLES = Path(__file__).parent / "examples" / "containerregistry" / "2025-11-01"
LOGIN = "acr1.azurecr.io"
REGISTRY_ID = (
    f"/subscriptions/{PROD_SUB}/resourceGroups/rg-acr/providers/Microsoft.ContainerRegistry"
    "/registries/acr1"
)


def example(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return loaded


@pytest.fixture
def client(
    emulator: Emulator, app_env: dict[str, str]
) -> Iterator[ContainerRegistryManagementClient]:
    spec = {
        "subscriptions": [
            {
                "id": PROD_SUB,
                "resourceGroups": [{"name": "rg-acr", "registries": [{"name": "acr1"}]}],
            }
        ]
    }
    scenario.load(emulator.state, spec)
    factory = ClientFactory(Settings.from_env(os.environ))
    yield factory.container_registry(PROD_SUB)
    factory.close()


def make_token(
    client: ContainerRegistryManagementClient, name: str = "puller", actions: tuple[str, ...] = ()
) -> Any:
    actions = actions or ("repositories/app/content/read", "repositories/app/metadata/read")
    client.scope_maps.begin_create(
        "rg-acr",
        "acr1",
        f"{name}-map",
        ScopeMap(properties=ScopeMapProperties(actions=list(actions))),
    ).result()
    scope_map_id = f"{REGISTRY_ID}/scopeMaps/{name}-map"
    poller = client.tokens.begin_create(
        "rg-acr",
        "acr1",
        name,
        Token(properties=TokenProperties(scope_map_id=scope_map_id, status="enabled")),
    )
    return poller.result()


def token_request(
    emu: Emulator, username: str, password: str, repository: str = "app"
) -> requests.Response:
    return requests.get(
        f"{emu.base_url}/acr/{LOGIN}/oauth2/token",
        params={"service": LOGIN, "scope": f"repository:{repository}:pull"},
        auth=(username, password),
        verify=emu.ca_path,
        timeout=10,
    )


def access(emu: Emulator, response: requests.Response) -> list[Any]:
    with emu.state.lock:
        claims = emu.state.acr_tokens[response.json()["access_token"]]
    return list(claims["access"])


def test_token_put_and_get_answer_as_the_examples(
    client: ContainerRegistryManagementClient, emulator: Emulator
) -> None:
    created = make_token(client)
    body = client.tokens.get("rg-acr", "acr1", "puller", cls=raw)
    wanted = example("TokenGet.json")["responses"]["200"]["body"]
    assert set(wanted) <= set(body)
    assert set(wanted["properties"]) <= set(body["properties"])
    assert body["type"] == wanted["type"] == "Microsoft.ContainerRegistry/registries/tokens"
    assert body["properties"]["status"] == "enabled"  # lowercase, as the example
    assert body["properties"]["scopeMapId"] == f"{REGISTRY_ID}/scopeMaps/puller-map"
    assert body["properties"]["provisioningState"] == "Succeeded"
    assert created.name == "puller"
    # Create's example: 201 with Azure-AsyncOperation, and the certificate's PEM is not echoed.
    create = example("TokenCreate.json")["responses"]["201"]
    assert "Azure-AsyncOperation" in create["headers"]
    assert "encodedPemCertificate" not in json.dumps(create["body"])
    assert "encodedPemCertificate" not in json.dumps(body)


def test_a_token_needs_a_scope_map_of_its_registry(
    client: ContainerRegistryManagementClient,
) -> None:
    other = REGISTRY_ID.replace("/acr1", "/acr2") + "/scopeMaps/x"
    for scope_map_id in (other, f"{REGISTRY_ID}/scopeMaps/nope"):
        with pytest.raises(HttpResponseError) as raised:
            client.tokens.begin_create(
                "rg-acr", "acr1", "t", Token(properties=TokenProperties(scope_map_id=scope_map_id))
            ).result()
        assert raised.value.status_code in (400, 404)
    # The system scope maps every registry has.
    names = {m.name for m in client.scope_maps.list("rg-acr", "acr1")}
    assert {"_repositories_pull", "_repositories_admin"} <= names


def test_generate_credentials_is_a_long_running_post_as_the_example(
    client: ContainerRegistryManagementClient, emulator: Emulator
) -> None:
    token = make_token(client)
    expiry = datetime.now(UTC) + timedelta(days=30)
    poller = client.registries.begin_generate_credentials(
        "rg-acr", "acr1", GenerateCredentialsParameters(token_id=token.id, expiry=expiry)
    )
    result = poller.result()
    wanted = example("RegistryGenerateCredentials.json")["responses"]
    assert "Location" in wanted["202"]["headers"]
    assert result.username == wanted["200"]["body"]["username"].replace("myToken", "puller")
    assert [p.name for p in result.passwords] == ["password1", "password2"]
    assert all(p.value and abs((p.expiry - expiry).total_seconds()) < 1 for p in result.passwords)
    # The journal shows the 202 and the Location polls the SDK followed.
    posts = [e for e in emulator.state.journal if "generateCredentials" in e.path]
    assert posts and posts[0].status == 202
    assert any("/operationStatuses/registries-" in e.path for e in emulator.state.journal)
    # ARM shows each slot's creation time and expiry, never a value.
    body = client.tokens.get("rg-acr", "acr1", "puller", cls=raw)
    shown = body["properties"]["credentials"]["passwords"]
    assert [p["name"] for p in shown] == ["password1", "password2"]
    assert all(set(p) == {"creationTime", "expiry", "name"} for p in shown)
    # One slot only: the other keeps its value.
    [first, second] = result.passwords
    again = client.registries.begin_generate_credentials(
        "rg-acr", "acr1", GenerateCredentialsParameters(token_id=token.id, name="password1")
    ).result()
    assert [p.name for p in again.passwords] == ["password1"]
    assert token_request(emulator, "puller", first.value).status_code == 401
    assert token_request(emulator, "puller", again.passwords[0].value).status_code == 200
    assert token_request(emulator, "puller", second.value).status_code == 200


def test_data_plane_grants_what_the_scope_map_allows(
    client: ContainerRegistryManagementClient, emulator: Emulator
) -> None:
    token = make_token(client)
    result = client.registries.begin_generate_credentials(
        "rg-acr", "acr1", GenerateCredentialsParameters(token_id=token.id, name="password1")
    ).result()
    password = result.passwords[0].value
    ok = token_request(emulator, "puller", password, "app")
    assert ok.status_code == 200
    assert access(emulator, ok) == [{"type": "repository", "name": "app", "actions": ["pull"]}]
    # Signed in, but no content/read on `other`: a token with no access, as ACR answers.
    other = token_request(emulator, "puller", password, "other")
    assert other.status_code == 200 and access(emulator, other) == []
    # Disabled (az acr token update --status disabled): 401.
    client.tokens.begin_update(
        "rg-acr",
        "acr1",
        "puller",
        TokenUpdateParameters(properties=TokenUpdateProperties(status="disabled")),
    ).result()
    assert token_request(emulator, "puller", password).status_code == 401


def test_an_expired_password_is_refused(
    client: ContainerRegistryManagementClient, emulator: Emulator
) -> None:
    token = make_token(client)
    past = datetime.now(UTC) - timedelta(minutes=1)
    result = client.registries.begin_generate_credentials(
        "rg-acr", "acr1", GenerateCredentialsParameters(token_id=token.id, expiry=past)
    ).result()
    assert token_request(emulator, "puller", result.passwords[0].value).status_code == 401


def test_generate_credentials_rejects_what_azure_rejects(
    client: ContainerRegistryManagementClient,
) -> None:
    make_token(client)
    for parameters, status in (
        ({"tokenId": f"{REGISTRY_ID}/tokens/nope"}, 404),
        ({"tokenId": f"{REGISTRY_ID}/tokens/puller", "name": "password3"}, 400),
        ({}, 400),
    ):
        with pytest.raises(HttpResponseError) as raised:
            client.registries.begin_generate_credentials("rg-acr", "acr1", parameters).result()
        assert raised.value.status_code == status


def test_the_adapter_parses_the_examples() -> None:
    for name in ("TokenGet.json", "TokenCreate.json"):
        body = example(name)["responses"]["200"]["body"]
        parsed = adapter.token(Token(body))
        assert parsed.name == "myToken"
        assert parsed.scope_map_id.endswith("/scopeMaps/myScopeMap")
        assert parsed.status in ("enabled", "disabled")
        assert parsed.passwords == ()
    with_passwords = {
        **example("TokenGet.json")["responses"]["200"]["body"],
    }
    with_passwords["properties"] = {
        **with_passwords["properties"],
        "credentials": {
            "passwords": [
                {k: v for k, v in p.items() if k != "value"}
                for p in example("RegistryGenerateCredentials.json")["responses"]["200"]["body"][
                    "passwords"
                ]
            ]
        },
    }
    parsed = adapter.token(Token(with_passwords))
    assert [p.name for p in parsed.passwords] == ["password1", "password2"]
    assert parsed.passwords[0].expiry == datetime(2020, 12, 31, 15, 59, 59, 70780, tzinfo=UTC)
