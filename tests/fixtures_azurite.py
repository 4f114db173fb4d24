"""The ``azurite`` fixture: one Azurite Table process per session, fresh table names per test.

Azurite missing is a failure (run ``make deps``), never a skip: the state store is untested
without it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from emulator.azurite import Azurite, AzuriteNotInstalled


@dataclass(frozen=True)
class AzuriteTables:
    """The running server plus a table prefix no other test uses."""

    server: Azurite
    table_prefix: str

    @property
    def connection_string(self) -> str:
        return self.server.connection_string

    def environment(self) -> dict[str, str]:
        return self.server.environment(table_prefix=self.table_prefix)


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[Azurite]:
    try:
        server = Azurite().start()
    except AzuriteNotInstalled as exc:
        pytest.fail(str(exc), pytrace=False)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def azurite(azurite_server: Azurite) -> AzuriteTables:
    if not azurite_server.running:
        pytest.fail("the session's Azurite process has exited", pytrace=False)
    return AzuriteTables(azurite_server, f"t{uuid.uuid4().hex[:16]}")
