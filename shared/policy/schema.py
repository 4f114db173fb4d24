"""The policy file's JSON Schema (draft 2020-12) and the vocabulary it is built from.

``x-messages`` ({validator: text}) overrides jsonschema's wording at a node; ``x-key`` names what an unknown key
is (``action``) so errors read "unknown action 'x'; valid actions: ...".
"""

from __future__ import annotations

from typing import Any

MODES = ("dry-run", "enforce")
SETTINGS = ("auto", "ticket", "off")
# Action ids and their safe defaults: workload changes (pull policy, node selector) and replacing a
# deleted kubelet identity (other grants may have named the old one) are off.
DEFAULT_ACTIONS: dict[str, str] = {
    "attach-acr": "ticket",
    "reconcile-cluster": "ticket",
    "replace-kubelet-identity": "off",
    "rotate-sp-secret": "ticket",
    "refresh-pull-secret": "ticket",
    "allow-egress-ip": "ticket",
    "link-private-dns-zone": "ticket",
    "set-pull-policy-if-not-present": "off",
    "set-os-node-selector": "off",
}
ACTION_IDS = tuple(DEFAULT_ACTIONS)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
PROVIDERS = ("github", "azure-devops", "webhook")
WEBHOOK_FORMATS = ("teams", "slack")

DEFAULT_RATE_LIMIT = 3
DEFAULT_COOLDOWN_MINUTES = 30
DEFAULT_EXPIRY_WINDOWS = (30, 14, 7, 1)
DEFAULT_PAIR_RETENTION_DAYS = 90
RESERVED_SCOPE = "default"

_TIME = {
    "type": "string",
    "pattern": r"^([01][0-9]|2[0-3]):[0-5][0-9]$",
    "x-messages": {"pattern": "{instance!r} is not a time of day HH:MM (00:00 to 23:59)"},
}
_END_TIME = {
    "type": "string",
    "pattern": r"^(([01][0-9]|2[0-3]):[0-5][0-9]|24:00)$",
    "x-messages": {"pattern": "{instance!r} is not a time of day HH:MM (00:00 to 24:00)"},
}
_NAME = {"type": "string", "minLength": 1, "maxLength": 128}


def _object(properties: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "additionalProperties": False, **extra}


def _route(required: list[str], properties: dict[str, Any]) -> dict[str, Any]:
    return {"properties": {"route": _object(properties, required=required)}}


_WINDOW = _object(
    {
        "days": {
            "type": "array",
            "items": {"enum": list(DAYS)},
            "minItems": 1,
            "uniqueItems": True,
        },
        "start": _TIME,
        "end": _END_TIME,
        "timezone": {"type": "string", "minLength": 1},
    },
    required=["start", "end"],
)

_TICKETS = _object(
    {
        "provider": {"enum": list(PROVIDERS)},
        "route": {"type": "object"},
        "labels": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 50},
            "uniqueItems": True,
        },
    },
    required=["provider", "route"],
    allOf=[
        {
            "if": {"properties": {"provider": {"const": "github"}}, "required": ["provider"]},
            "then": _route(
                ["repo"],
                {
                    "repo": {
                        "type": "string",
                        "pattern": r"^[A-Za-z0-9-]+/[A-Za-z0-9._-]+$",
                        "x-messages": {
                            "pattern": "{instance!r} is not a GitHub repository 'owner/name'"
                        },
                    },
                    "assignees": {"type": "array", "items": _NAME},
                },
            ),
        },
        {
            "if": {
                "properties": {"provider": {"const": "azure-devops"}},
                "required": ["provider"],
            },
            "then": _route(
                ["organization", "project"],
                {
                    "organization": _NAME,
                    "project": _NAME,
                    "workItemType": _NAME,
                    "areaPath": _NAME,
                },
            ),
        },
        {
            "if": {"properties": {"provider": {"const": "webhook"}}, "required": ["provider"]},
            "then": _route(
                ["format"],
                {
                    "url": {
                        "type": "string",
                        "pattern": r"^https://\S+$",
                        "x-messages": {"pattern": "{instance!r} is not an https:// URL"},
                    },
                    "urlSetting": {
                        "type": "string",
                        "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$",
                        "x-messages": {"pattern": "{instance!r} is not an app setting name"},
                    },
                    "format": {"enum": list(WEBHOOK_FORMATS)},
                },
            ),
        },
    ],
)

# What a scope may set; the top level sets the same keys for the default scope.
_SETTINGS: dict[str, Any] = {
    "mode": {"enum": list(MODES)},
    "actions": _object(
        {action: {"enum": list(SETTINGS)} for action in ACTION_IDS},
        **{"x-key": "action"},
    ),
    "rateLimit": _object(
        {"perClusterPerHour": {"type": "integer", "minimum": 1, "maximum": 1000}},
        required=["perClusterPerHour"],
    ),
    "cooldown": _object(
        {"minutes": {"type": "integer", "minimum": 0, "maximum": 10080}},
        required=["minutes"],
    ),
    "maintenanceWindows": {"type": "array", "items": _WINDOW},
    "expiryWindows": {
        "type": "array",
        "items": {"type": "integer", "minimum": 1, "maximum": 365},
        "minItems": 1,
        "uniqueItems": True,
    },
    "tickets": _TICKETS,
}

_MATCH = _object(
    {
        "subscriptions": {
            "type": "array",
            "items": {
                "type": "string",
                "pattern": r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$",
                "x-messages": {"pattern": "{instance!r} is not a subscription id (a GUID)"},
            },
            "minItems": 1,
        },
        "resourceGroups": {
            "type": "array",
            "items": {"type": "string", "minLength": 1, "maxLength": 90},
            "minItems": 1,
        },
        "tags": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "minProperties": 1,
        },
    },
    minProperties=1,
    **{
        "x-messages": {
            "minProperties": "a match needs at least one of subscriptions, resourceGroups, tags"
        }
    },
)

_SCOPE = _object(
    {
        "name": {
            **_NAME,
            "not": {"const": RESERVED_SCOPE},
            "x-messages": {"not": f"{RESERVED_SCOPE!r} is reserved for the top-level settings"},
        },
        "match": _MATCH,
        **_SETTINGS,
    },
    required=["name", "match"],
)

_RESOURCE_ID = {
    "type": "string",
    "pattern": r"^/subscriptions/[^/]+/resourceGroups/[^/]+/providers/.+",
    "x-messages": {"pattern": "{instance!r} is not a resource id (/subscriptions/...)"},
}
# Pairs the drift sweep always checks (clusters that pull only at deploy time), and how long a
# pair it no longer finds is remembered.
_PAIRS = _object(
    {
        "retentionDays": {"type": "integer", "minimum": 1, "maximum": 3650},
        "known": {
            "type": "array",
            "items": _object(
                {"cluster": _RESOURCE_ID, "registry": _RESOURCE_ID},
                required=["cluster", "registry"],
            ),
        },
    }
)

SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "ACR Pull Remediator policy",
    **_object({**_SETTINGS, "scopes": {"type": "array", "items": _SCOPE}, "pairs": _PAIRS}),
}
