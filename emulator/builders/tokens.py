"""Scenario builders for ACR repository-scoped tokens, their scope maps and pull secrets.

Registry spec keys (all optional)::

    registries:
      - name: acrdemoweu
        scopeMaps:      # user-defined; the system maps (_repositories_pull, ...) always exist
          - {name: shop-pull, actions: [repositories/app/content/read, repositories/app/metadata/read]}
        tokens:
          - name: shop-puller
            scopeMap: shop-pull        # default _repositories_pull
            status: enabled            # or disabled
            passwords: [password1, password2]   # the slots generated (default both)
            expiryDays: 90             # days until the passwords expire (default: never)

A pull secret ``from: token:<name>`` holds the token's ``password1`` (``token:<name>:password2``
its second slot). Break ``pull-secret-token-invalid`` (``cluster``, optional ``namespace`` /
``secret``; ``mode``): ``regenerated`` (default: the slot the secret holds gets a new value, as
``az acr token credential generate --password1`` does), ``expired`` (that slot's expiry passed
``daysAgo`` days ago, default 2), ``disabled`` (``az acr token update --status disabled``) or
``scope`` (the scope map loses ``content/read`` on the repositories the secret's pods pull).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from emulator import kubernetes as k8s
from emulator.builders.kubernetes import fail_pods_using
from emulator.providers import registry_tokens as tokens
from emulator.scenario import REGISTRY_HOOKS, breaks, find_cluster
from emulator.state import Json, State

MODES = ("regenerated", "expired", "disabled", "scope")


def registry_hook(state: State, registry: Json, spec: dict[str, Any]) -> None:
    registry_id = registry["id"]
    for scope_map in spec.get("scopeMaps") or []:
        body = {"properties": {"actions": list(scope_map["actions"])}}
        bad = [a for a in body["properties"]["actions"] if not tokens.ACTION.match(str(a))]
        if bad:
            raise ValueError(f"scope map {scope_map['name']!r}: not scope map actions: {bad}")
        resource_id = f"{registry_id}/scopeMaps/{scope_map['name']}"
        state.put(tokens._put_scope_map(state, resource_id, body, None))
    for token in spec.get("tokens") or []:
        add_token(state, registry, token)


REGISTRY_HOOKS.append(registry_hook)


def add_token(state: State, registry: Json, spec: dict[str, Any]) -> Json:
    name = str(spec["name"])
    scope_map = str(spec.get("scopeMap", "_repositories_pull"))
    if tokens.find_scope_map(state, f"{registry['id']}/scopeMaps/{scope_map}") is None:
        raise ValueError(
            f"token {name!r}: registry {registry['name']!r} has no scope map {scope_map!r}"
        )
    status = str(spec.get("status", "enabled"))
    if status not in ("enabled", "disabled"):
        raise ValueError(f"token {name!r}: status must be enabled or disabled, not {status!r}")
    token_id = f"{registry['id']}/tokens/{name}"
    body = {
        "properties": {"scopeMapId": f"{registry['id']}/scopeMaps/{scope_map}", "status": status}
    }
    state.put(tokens._put_token(state, token_id, body, None))
    now = datetime.now(UTC)
    days = spec.get("expiryDays")
    expiry = now + timedelta(days=float(days)) if days is not None else None
    for slot in spec.get("passwords") or tokens.SLOTS:
        if slot not in tokens.SLOTS:
            raise ValueError(f"token {name!r}: password slots are password1 and password2")
        tokens.set_password(state, token_id, str(slot), expiry=expiry, created=now)
    found = state.get(token_id)
    assert found is not None
    return found


def token_password(state: State, registry: Json, source: str) -> tuple[str, str]:
    """(username, password) for a pull secret ``from: token:<name>[:<slot>]``."""
    _, name, slot = [*source.split(":", 2), ""][:3]
    token = tokens.find_token(state, registry["id"], name)
    if token is None:
        raise ValueError(
            f"pull secret from {source!r}: registry {registry['name']!r} has no such token"
        )
    slot = slot or "password1"
    with state.lock:
        stored = state.token_passwords.get(token["id"].lower(), {}).get(slot)
    if stored is None:
        raise ValueError(f"pull secret from {source!r}: token {name!r} has no {slot}")
    return token["name"], str(stored["value"])


@breaks("pull-secret-token-invalid")
def invalidate_token_secret(state: State, spec: dict[str, Any]) -> None:
    mode = str(spec.get("mode", "regenerated"))
    if mode not in MODES:
        raise ValueError(f"pull-secret-token-invalid: mode must be one of {', '.join(MODES)}")
    cluster = find_cluster(state, str(spec["cluster"]))
    api = k8s.api_for(state, cluster["id"])
    registries = k8s.registries_by_host(state)
    with state.lock:
        found = []
        for secret, host, (username, password) in k8s.iter_pull_secrets(api):
            meta = secret["metadata"]
            if spec.get("namespace") not in (None, meta["namespace"]):
                continue
            if spec.get("secret") not in (None, meta["name"]):
                continue
            registry = registries.get(host)
            token = tokens.find_token(state, registry["id"], username) if registry else None
            if token is not None:
                found.append((secret, token, password))
        if not found:
            raise ValueError(f"no token pull secret in cluster {spec['cluster']!r} matches {spec}")
        for secret, token, password in found:
            _break(state, api, secret, token, password, mode=mode, spec=spec)
        fail_pods_using(state, api, [s for s, _, _ in found])


def _break(
    state: State,
    api: k8s.ClusterApi,
    secret: Json,
    token: Json,
    password: str,
    *,
    mode: str,
    spec: dict[str, Any],
) -> None:
    stored = state.token_passwords.get(token["id"].lower(), {})
    slot = next((s for s, e in stored.items() if e["value"] == password), "password1")
    if mode == "disabled":
        token["properties"]["status"] = "disabled"
        state.put(token)
    elif mode == "regenerated":
        old = stored.get(slot, {})
        expiry = tokens._parse_time(old["expiry"]) if old.get("expiry") else None
        tokens.set_password(state, token["id"], slot, expiry=expiry, created=datetime.now(UTC))
    elif mode == "expired":
        # Generated a lifetime ago (its old lifetime, else 90 days), ended daysAgo days ago.
        entry = stored[slot]
        ended = datetime.now(UTC) - timedelta(days=float(spec.get("daysAgo", 2)))
        lifetime = timedelta(days=90)
        if entry.get("expiry"):
            lifetime = tokens._parse_time(entry["expiry"]) - tokens._parse_time(
                entry["creationTime"]
            )
        entry["expiry"] = tokens.iso(ended)
        entry["creationTime"] = tokens.iso(ended - lifetime)
        tokens.refresh_token_view(state, token["id"])
    else:
        scope_map = tokens.find_scope_map(state, token["properties"]["scopeMapId"])
        assert scope_map is not None
        repositories = _repositories_pulled(api, secret)
        actions = [
            a
            for a in scope_map["properties"]["actions"]
            if not (a.endswith("/content/read") and _covers(a, repositories))
        ]
        if scope_map["properties"].get("type") == "SystemDefined":
            raise ValueError("pull-secret-token-invalid: mode scope needs a user-defined scope map")
        scope_map["properties"]["actions"] = actions or ["repositories/other/metadata/read"]
        state.put(scope_map)


def _repositories_pulled(api: k8s.ClusterApi, secret: Json) -> set[str]:
    name = secret["metadata"]["name"]
    repositories = set()
    for pod in api.store("pods").values():
        refs = {r.get("name") for r in pod["spec"].get("imagePullSecrets") or []}
        if name in refs:
            for container in pod["spec"].get("containers", []):
                image = container["image"]
                repositories.add(image.split("/", 1)[1].split("@", 1)[0].rsplit(":", 1)[0])
    return repositories


def _covers(action: str, repositories: set[str]) -> bool:
    return any("pull" in tokens.allowed([action], r) for r in repositories)
