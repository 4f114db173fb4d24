"""ARM resource ids: parsing and case-insensitive comparison, as ARM itself compares them."""

from __future__ import annotations

import re
from dataclasses import dataclass

_RESOURCE = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)/resourcegroups/(?P<rg>[^/]+)"
    r"/providers/(?P<ns>[^/]+)/(?P<type>[^/]+)/(?P<name>[^/]+)(?P<child>(/[^/]+/[^/]+)*)$",
    re.IGNORECASE,
)
MAX_LENGTH = 2048


@dataclass(frozen=True)
class ResourceId:
    """A parsed ``/subscriptions/.../resourceGroups/.../providers/NS/type/name`` id."""

    subscription_id: str
    resource_group: str
    namespace: str
    type: str
    name: str
    child: str = ""

    @classmethod
    def parse(cls, value: str) -> ResourceId:
        if len(value) > MAX_LENGTH:
            raise ValueError(f"resource id is longer than {MAX_LENGTH} characters")
        match = _RESOURCE.match(value.strip().rstrip("/"))
        if match is None:
            raise ValueError(f"not an ARM resource id: {value[:200]!r}")
        return cls(
            subscription_id=match["sub"],
            resource_group=match["rg"],
            namespace=match["ns"],
            type=match["type"],
            name=match["name"],
            child=match["child"] or "",
        )

    @property
    def full_type(self) -> str:
        return f"{self.namespace}/{self.type}"

    @property
    def resource_group_id(self) -> str:
        return f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}"

    def __str__(self) -> str:
        return f"{self.resource_group_id}/providers/{self.namespace}/{self.type}/{self.name}{self.child}"


def same_id(left: str, right: str) -> bool:
    """ARM ids are case-insensitive (events mix ``resourcegroups`` and ``resourceGroups``)."""
    return left.strip().rstrip("/").lower() == right.strip().rstrip("/").lower()
