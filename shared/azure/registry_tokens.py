"""Repository-scoped tokens and scope maps through azure-mgmt-containerregistry."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.azure.cache import RunCache, cached
from shared.azure.clusters import _text
from shared.azure.errors import translated
from shared.azure.factory import ClientFactory
from shared.errors import TransientError, WriteRejected
from shared.ports.registry_tokens import NewTokenPassword, RegistryToken, ScopeMap, TokenPassword
from shared.resource_id import ResourceId


class RegistryTokenReader:
    factory: ClientFactory
    cache: RunCache

    @cached
    def list_registry_tokens(self, registry_id: str) -> list[RegistryToken]:
        rid = ResourceId.parse(registry_id)
        client = self.factory.container_registry(rid.subscription_id)
        with translated(registry_id, doing="list the tokens of"):
            return [token(t) for t in client.tokens.list(rid.resource_group, rid.name)]

    @cached
    def get_scope_map(self, scope_map_id: str) -> ScopeMap:
        registry_id, _, name = scope_map_id.rpartition("/")
        registry_id = registry_id.rsplit("/", 1)[0]  # drop "/scopeMaps"
        rid = ResourceId.parse(registry_id)
        client = self.factory.container_registry(rid.subscription_id)
        with translated(scope_map_id, doing="read the scope map"):
            model = client.scope_maps.get(rid.resource_group, rid.name, name)
        return ScopeMap(
            id=model.id or scope_map_id, name=model.name or name, actions=tuple(model.actions or ())
        )

    def generate_token_password(
        self, registry_id: str, token_id: str, *, slot: str, expiry: datetime | None, timeout: float
    ) -> NewTokenPassword:
        from azure.core.exceptions import HttpResponseError
        from azure.mgmt.containerregistry.models import GenerateCredentialsParameters

        rid = ResourceId.parse(registry_id)
        client = self.factory.container_registry(rid.subscription_id)
        parameters = GenerateCredentialsParameters(token_id=token_id, name=slot, expiry=expiry)
        try:
            with translated(registry_id, doing="generate token credentials on"):
                try:
                    poller = client.registries.begin_generate_credentials(
                        rid.resource_group, rid.name, parameters
                    )
                    poller.wait(timeout=timeout)
                    if not poller.done():
                        raise TransientError(
                            f"generateCredentials for {token_id} still ran after {timeout:.0f}s"
                        )
                    result = poller.result()
                except HttpResponseError as exc:
                    if exc.status_code not in (400, 409, 422):
                        raise
                    code = getattr(exc.error, "code", None) or exc.reason or ""
                    raise WriteRejected(
                        f"ARM refused to generate credentials for {token_id} "
                        f"({exc.status_code} {code})",
                        resource_id=token_id,
                        code=code,
                    ) from None
        finally:
            self.cache.clear()
        for password in result.passwords or ():
            if _text(password.name) == slot and password.value:
                return NewTokenPassword(
                    token_name=result.username or "",
                    slot=slot,
                    value=password.value,
                    expiry=password.expiry,
                )
        raise WriteRejected(
            f"generateCredentials for {token_id} returned no {slot}", resource_id=token_id
        )


def token(model: Any) -> RegistryToken:
    credentials = model.credentials
    return RegistryToken(
        id=str(ResourceId.parse(model.id)),
        name=model.name,
        status=_text(model.status) or "enabled",
        scope_map_id=model.scope_map_id or "",
        passwords=tuple(
            TokenPassword(name=_text(p.name), created=p.creation_time, expiry=p.expiry)
            for p in (credentials.passwords or () if credentials else ())
        ),
    )
