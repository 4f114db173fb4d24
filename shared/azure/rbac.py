"""(to be filled) the adapter for this domain."""

from __future__ import annotations

from shared.azure.cache import RunCache
from shared.azure.factory import ClientFactory


class RbacReader:
    factory: ClientFactory
    cache: RunCache
