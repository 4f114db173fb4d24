"""Azurite's Table service (the state store) and Queue service (the host's queues, for the fleet
bench) for tests and the demo: the real Storage APIs on 127.0.0.1.

``make deps`` installs it into ``.azurite/`` (``npm install --prefix .azurite azurite@3.35.0``).
``AZURITE_TABLE_BIN`` / ``AZURITE_QUEUE_BIN`` override where ``azurite-table`` /
``azurite-queue`` are looked for. Data lives in memory and is gone when the process stops;
telemetry is disabled, so nothing leaves the machine. ``debug_log`` keeps Azurite's debug log
(one line names each request's method: what the fleet bench counts).
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BINARIES = ROOT / ".azurite" / "node_modules" / ".bin"
DEFAULT_BINARY = BINARIES / "azurite-table"
SERVICES = {"table": "Table", "queue": "Queue"}
ACCOUNT = "devstoreaccount1"
# The well-known development key every Azure Storage SDK and Azurite documents: public, not a secret.
ACCOUNT_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


class AzuriteNotInstalled(RuntimeError):
    """``azurite-table`` is missing; ``make deps`` installs it."""


class Azurite:
    """``with Azurite() as azurite:`` starts ``azurite-table`` on a free port; exit stops it."""

    def __init__(
        self,
        *,
        binary: str | Path | None = None,
        startup_timeout: float = 30.0,
        service: str = "table",
        debug_log: Path | None = None,
    ) -> None:
        if service not in SERVICES:
            raise ValueError(f"Azurite service {service!r} is not one of {sorted(SERVICES)}")
        self.service = service
        self.binary = Path(
            binary
            or os.environ.get(f"AZURITE_{service.upper()}_BIN")
            or BINARIES / f"azurite-{service}"
        )
        self.startup_timeout = startup_timeout
        self.debug_log = debug_log
        self.port: int | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._workdir: tempfile.TemporaryDirectory[str] | None = None

    @property
    def endpoint(self) -> str:
        if self.port is None:
            raise RuntimeError("Azurite is not running")
        return f"http://127.0.0.1:{self.port}/{ACCOUNT}"

    @property
    def connection_string(self) -> str:
        return (
            f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
            f"{SERVICES[self.service]}Endpoint={self.endpoint};"
        )

    def environment(self, *, table_prefix: str = "remediator") -> dict[str, str]:
        """App settings that point the state store at this Azurite."""
        return {
            "STATE_STORAGE_CONNECTION_STRING": self.connection_string,
            "STATE_TABLE_PREFIX": table_prefix,
        }

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> Azurite:
        if not self.binary.exists():
            raise AzuriteNotInstalled(
                f"Azurite is not installed ({self.binary} is missing): run `make deps`"
            )
        self._workdir = tempfile.TemporaryDirectory(prefix="azurite-")
        for _attempt in range(3):  # a free port can be taken between probing and binding
            self.port = _free_port()
            if self._launch():
                return self
        tail = self._log_tail()
        self.stop()
        raise RuntimeError(f"Azurite did not start: {tail}")

    def _launch(self) -> bool:
        assert self._workdir is not None
        log = Path(self._workdir.name) / "azurite.log"
        with log.open("ab") as out:
            self._process = subprocess.Popen(  # noqa: S603 (a fixed, project-local binary)
                [
                    str(self.binary),
                    f"--{self.service}Host",
                    "127.0.0.1",
                    f"--{self.service}Port",
                    str(self.port),
                    "--inMemoryPersistence",
                    "--skipApiVersionCheck",
                    "--loose",
                    "--silent",
                    "--disableTelemetry",
                    *(["--debug", str(self.debug_log)] if self.debug_log else []),
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                cwd=self._workdir.name,
                start_new_session=True,  # its own process group: stop() kills node and children
            )
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                return False
            if _answers(self.port or 0):
                return True
            time.sleep(0.05)
        self._kill()
        return False

    def stop(self) -> None:
        self._kill()
        self.port = None
        if self._workdir is not None:
            self._workdir.cleanup()
            self._workdir = None

    def _kill(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        if process.poll() is None:
            try:
                os.killpg(process.pid, signal.SIGTERM)
                process.wait(timeout=5)
            except ProcessLookupError:
                pass
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)

    def _log_tail(self) -> str:
        if self._workdir is None:
            return "(no log)"
        log = Path(self._workdir.name) / "azurite.log"
        text = log.read_text(errors="replace") if log.exists() else ""
        return text[-2000:] or "(no output)"

    def __enter__(self) -> Azurite:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
