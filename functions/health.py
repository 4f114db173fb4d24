"""Liveness for probes and deploy smoke tests: no Azure calls, no secrets."""

from __future__ import annotations

import json

import azure.functions as func

bp = func.Blueprint()


@bp.function_name(name="health")
@bp.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    return func.HttpResponse(
        json.dumps({"status": "ok"}), mimetype="application/json", status_code=200
    )
