"""Azure Resource Graph in the emulator, through the real SDK client (azure-mgmt-resourcegraph).

The wire shapes are the service's REST examples (copied to ``examples/resourcegraph/``): each
example's estate is built in the emulator and the example's request is sent; the queries are
evaluated for real (emulator/resource_graph.py), so the answers follow from the state.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
from azure.core.exceptions import HttpResponseError

from emulator.server import Emulator

EXAMPLES = Path(__file__).parent / "examples" / "resourcegraph"
SUB = "cfbbd179-59d2-4052-aa06-9270a38aa9d6"
OTHER = "0b1f6471-1bf0-4dda-aec3-cb9272f09590"


def example(name: str) -> dict[str, Any]:
    (path,) = EXAMPLES.glob(f"*/{name}.json")
    found: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return found


def client(emulator: Emulator, api_version: str | None = None) -> Any:
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.resourcegraph import ResourceGraphClient

    os.environ.update(emulator.environment())
    credential = ManagedIdentityCredential(connection_verify=emulator.ca_path)
    options: dict[str, Any] = {"api_version": api_version} if api_version else {}
    return ResourceGraphClient(
        credential,
        base_url=emulator.base_url,
        credential_scopes=[f"{emulator.base_url}/.default"],
        connection_verify=emulator.ca_path,
        **options,
    )


def query(rg: Any, text: str, subscriptions: list[str] | None = None, **options: Any) -> Any:
    """(response model, raw JSON body, headers) of one query."""
    from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

    request = QueryRequest(
        subscriptions=[SUB] if subscriptions is None else subscriptions,
        query=text,
        options=QueryRequestOptions(**options) if options else None,
    )
    return rg.resources(
        request,
        cls=lambda pipeline, model, _: (
            model,
            pipeline.http_response.json(),
            pipeline.http_response.headers,
        ),
    )


def put(emulator: Emulator, sub: str, group: str, rtype: str, name: str, **body: Any) -> str:
    emulator.state.add_resource_group(sub, group, "eastus")
    rid = f"/subscriptions/{sub}/resourceGroups/{group}/providers/{rtype}/{name}"
    emulator.state.put({"id": rid, "name": name, "type": rtype, **body})
    return rid


@pytest.fixture
def rg(emulator: Emulator) -> Any:
    return client(emulator)


def test_basic_query_answers_the_example(emulator: Emulator, rg: Any) -> None:
    spec = example("ResourcesBasicQuery")
    wanted = spec["responses"]["200"]["body"]
    for row in wanted["data"]:
        rtype = "/".join(row["id"].split("/providers/")[1].split("/")[:2])
        group = row["id"].split("/")[4]
        put(emulator, SUB, group, rtype, row["name"], location=row["location"], tags=row["tags"])
    put(emulator, OTHER, "RG9", "Microsoft.Network/virtualNetworks", "notMine", location="westus")
    request = spec["parameters"]["query"]

    model, body, _ = query(rg, request["query"], request["subscriptions"])

    assert {k: v for k, v in body.items() if k != "data"} == {
        k: v for k, v in wanted.items() if k != "data"
    }
    key = lambda r: r["id"]  # noqa: E731  (no order by: Resource Graph's order is its own)
    assert sorted(body["data"], key=key) == sorted(wanted["data"], key=key)
    assert model.result_truncated == "false" and model.count == 3  # a string, not a bool


def test_first_and_next_page_follow_the_skip_token(emulator: Emulator, rg: Any) -> None:
    first, following = example("ResourcesFirstPageQuery"), example("ResourcesNextPageQuery")
    for n in range(7):
        put(emulator, SUB, "RG1", "Microsoft.Compute/disks", f"test{n}_OsDisk", location="eastus")
    put(emulator, SUB, "RG1", "Microsoft.Compute/disks", "other", location="eastus")
    request = first["parameters"]["query"]
    wanted = first["responses"]["200"]["body"]

    _, page1, _ = query(rg, request["query"], **_options(request["options"]))
    assert set(page1) == set(wanted)  # $skipToken, count, data, facets, resultTruncated, total
    assert (page1["count"], page1["totalRecords"], page1["resultTruncated"]) == (3, 7, "false")
    assert all(set(row) == set(wanted["data"][0]) for row in page1["data"])
    seen = [row["name"] for row in page1["data"]]
    token = page1["$skipToken"]
    while token:
        options = {**following["parameters"]["query"]["options"], "$skipToken": token}
        _, page, _ = query(rg, request["query"], **_options(options), top=3)
        assert set(page) <= set(following["responses"]["200"]["body"])
        seen += [row["name"] for row in page["data"]]
        token = page.get("$skipToken")
    assert seen == sorted(f"test{n}_OsDisk" for n in range(7))  # every row once, in id order


def test_a_query_without_id_is_truncated_rather_than_paged(emulator: Emulator, rg: Any) -> None:
    for n in range(5):
        put(emulator, SUB, "RG1", "Microsoft.Compute/disks", f"d{n}", location="eastus")

    model, body, _ = query(rg, "Resources | project name", top=2)

    assert body["resultTruncated"] == "true" and "$skipToken" not in body
    assert (model.count, model.total_records) == (2, 5)


def test_properties_query_summarizes_by_a_dynamic_property(emulator: Emulator, rg: Any) -> None:
    spec = example("ResourcesPropertiesQuery")
    wanted = {
        r["properties_storageProfile_osDisk_osType"]: r["count"]
        for r in spec["responses"]["200"]["body"]["data"]
    }
    for os_type, count in wanted.items():
        for n in range(count):
            put(
                emulator,
                SUB,
                "RG1",
                "Microsoft.Compute/virtualMachines",
                f"{os_type.lower()}-{n}",
                location="eastus",
                properties={"storageProfile": {"osDisk": {"osType": os_type}}},
            )
    put(emulator, SUB, "RG1", "Microsoft.Compute/disks", "not-a-vm", location="eastus")

    _, body, _ = query(rg, spec["parameters"]["query"]["query"])

    # Kusto names the column of a bare count() "count_"; the example shows it as "count".
    assert {
        r["properties_storageProfile_osDisk_osType"]: r["count_"] for r in body["data"]
    } == wanted
    assert body["totalRecords"] == body["count"] == 2


def test_every_answer_reports_the_quota_and_past_it_429(emulator: Emulator, rg: Any) -> None:
    emulator.state.graph_quota = 3
    remaining = [
        query(rg, "resources | project id")[2]["x-ms-user-quota-remaining"] for _ in range(3)
    ]
    assert remaining == ["2", "1", "0"]
    with pytest.raises(HttpResponseError) as raised:
        client_without_retries(emulator).resources(_request("resources | project id"))
    assert raised.value.status_code == 429
    assert raised.value.response.headers["x-ms-user-quota-remaining"] == "0"
    resets = raised.value.response.headers["x-ms-user-quota-resets-after"]
    hours, minutes, seconds = (int(p) for p in resets.split(":"))
    assert hours == minutes == 0 and 0 < seconds <= 5


def client_without_retries(emulator: Emulator) -> Any:
    from azure.identity import ManagedIdentityCredential
    from azure.mgmt.resourcegraph import ResourceGraphClient

    return ResourceGraphClient(
        ManagedIdentityCredential(connection_verify=emulator.ca_path),
        base_url=emulator.base_url,
        credential_scopes=[f"{emulator.base_url}/.default"],
        connection_verify=emulator.ca_path,
        retry_total=0,
    )


def _request(text: str) -> Any:
    from azure.mgmt.resourcegraph.models import QueryRequest

    return QueryRequest(subscriptions=[SUB], query=text)


def _options(raw: dict[str, Any]) -> dict[str, Any]:
    names = {"$skip": "skip", "$top": "top", "$skipToken": "skip_token"}
    return {names[k]: v for k, v in raw.items()}


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("resources | where | project id", "ParserFailure"),
        ("resources | project id,, name", "ParserFailure"),
        ("resources | where nosuchcolumn == 1", "FailedToResolveQuery"),
        ("nosuchtable | project id", "FailedToResolveQuery"),
    ],
)
def test_a_bad_query_is_400_bad_request_as_azure_answers(
    emulator: Emulator, rg: Any, text: str, detail: str
) -> None:
    with pytest.raises(HttpResponseError) as raised:
        query(rg, text)
    error = raised.value
    assert error.status_code == 400
    assert error.error.code == "BadRequest"
    assert error.error.message.startswith("Please provide below info when asking for support")
    codes = [d.code for d in error.error.details]
    assert codes[0] == "InvalidQuery" and codes[1] == detail
    if detail == "ParserFailure":
        failure = error.response.json()["error"]["details"][1]
        assert failure["line"] == 1 and failure["characterPositionInLine"] > 0


def test_an_unknown_api_version_or_a_bad_skip_token_is_refused(emulator: Emulator) -> None:
    with pytest.raises(HttpResponseError) as raised:
        query(client(emulator, api_version="2099-01-01"), "resources | project id")
    assert raised.value.status_code == 400
    assert raised.value.error.code == "NoRegisteredProviderFound"
    forged = base64.b64encode(json.dumps({"$skip": 1, "query": "x"}).encode()).decode()
    with pytest.raises(HttpResponseError) as raised:
        query(client(emulator), "resources | project id", skip_token=forged)
    assert raised.value.status_code == 400


def test_table_format_and_facets(emulator: Emulator, rg: Any) -> None:
    from azure.mgmt.resourcegraph.models import FacetRequest, QueryRequest, QueryRequestOptions

    for n, location in enumerate(["eastus", "eastus", "westus"]):
        put(emulator, SUB, "RG1", "Microsoft.Compute/disks", f"d{n}", location=location)
    request = QueryRequest(
        subscriptions=[SUB],
        query="resources | project id, location",
        options=QueryRequestOptions(result_format="table"),
        facets=[FacetRequest(expression="location"), FacetRequest(expression="nosuch")],
    )
    body = rg.resources(request, cls=lambda p, *_: p.http_response.json())

    assert [c["name"] for c in body["data"]["columns"]] == ["id", "location"]
    assert [r[1] for r in body["data"]["rows"]] == ["eastus", "eastus", "westus"]
    located, bad = body["facets"]
    assert located["resultType"] == "FacetResult"
    assert located["data"] == [
        {"location": "eastus", "count": 2},
        {"location": "westus", "count": 1},
    ]
    assert bad["resultType"] == "FacetError" and bad["errors"]


def test_rows_are_scoped_to_the_subscriptions_asked_and_readable(
    emulator: Emulator, rg: Any
) -> None:
    mine = put(emulator, SUB, "RG1", "Microsoft.Compute/disks", "mine", location="eastus")
    theirs = put(emulator, OTHER, "RG2", "Microsoft.Compute/disks", "theirs", location="eastus")

    ids = lambda subs: [r["id"] for r in query(rg, "resources | project id", subs)[1]["data"]]  # noqa: E731
    assert ids([SUB]) == [mine]
    assert ids([SUB, OTHER]) == sorted([mine, theirs])
    emulator.deny(f"/subscriptions/{OTHER}")
    assert ids([SUB, OTHER]) == [mine]  # Resource Graph shows only what the caller may read


def test_the_index_follows_the_state_unless_frozen(emulator: Emulator, rg: Any) -> None:
    put(emulator, SUB, "RG1", "Microsoft.Compute/disks", "first", location="eastus")
    names = lambda: [r["name"] for r in query(rg, "resources | project id, name")[1]["data"]]  # noqa: E731
    assert names() == ["first"]
    put(emulator, SUB, "RG1", "Microsoft.Compute/disks", "second", location="eastus")
    assert names() == ["first", "second"]
    emulator.state.graph_frozen = True  # Resource Graph lagging behind ARM
    put(emulator, SUB, "RG1", "Microsoft.Compute/disks", "third", location="eastus")
    assert names() == ["first", "second"]
