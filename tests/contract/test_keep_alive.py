"""The emulator keeps HTTPS connections alive across requests, as Azure's front doors do.

Werkzeug's development server closed every connection after one response, so each request paid
a TCP and TLS handshake on both sides: most of a fleet sweep's CPU, and a world in which a
client never reuses a connection the server has closed.
"""

from __future__ import annotations

import requests
from werkzeug.wrappers import Request, Response

from emulator.server import Emulator

SUBSCRIPTIONS = "/subscriptions?api-version=2022-12-01"


def test_one_connection_serves_a_clients_requests(emulator: Emulator) -> None:
    session = requests.Session()
    session.verify = emulator.ca_path
    session.trust_env = False  # the machine's CA bundle must not replace the emulator's
    url = emulator.base_url + SUBSCRIPTIONS
    answers = [session.get(url, timeout=5) for _ in range(3)]

    assert [a.status_code for a in answers] == [401, 401, 401]  # no token: ARM's answer
    assert all(a.headers.get("Connection", "").lower() != "close" for a in answers)
    pool = session.get_adapter(url).get_connection_with_tls_context(
        requests.Request("GET", url).prepare(), verify=emulator.ca_path
    )
    assert pool.num_connections == 1


def test_the_client_address_and_scheme_reach_the_services(emulator: Emulator) -> None:
    seen: dict[str, str] = {}

    def echo(request: Request) -> Response:
        seen.update(remote_addr=str(request.remote_addr), scheme=request.scheme)
        return Response(status=204)

    emulator.mount("/probe-environ", "test", echo, ["GET"])
    response = requests.get(
        emulator.base_url + "/probe-environ", verify=emulator.ca_path, timeout=5
    )

    assert response.status_code == 204
    assert seen == {"remote_addr": "127.0.0.1", "scheme": "https"}
