"""On-demand diagnosis over HTTP (function key): the JSON report for a cluster/registry pair."""

from __future__ import annotations

import json

import azure.functions as func

bp = func.Blueprint()


@bp.function_name(name="diagnose")
@bp.route(route="diagnose", methods=["GET", "POST"], auth_level=func.AuthLevel.FUNCTION)
def diagnose(req: func.HttpRequest) -> func.HttpResponse:
    from shared.runtime import diagnose_request

    status, body = diagnose_request(dict(req.params), req.get_body())
    return func.HttpResponse(json.dumps(body), status_code=status, mimetype="application/json")
