"""(to be filled) protocol and plain data for this domain."""

from __future__ import annotations

from typing import Protocol


class RbacPort(Protocol):
    pass
