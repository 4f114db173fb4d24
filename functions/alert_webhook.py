"""Azure Monitor action group webhook (common alert schema, function key): diagnose the pods
an alert names, e.g. a log alert on KubeEvents "Failed to pull image"."""

from __future__ import annotations

import json

import azure.functions as func

from functions.handover import HANDOVER_CONNECTION, HANDOVER_QUEUE, HandOver

bp = func.Blueprint()


@bp.function_name(name="alert_webhook")
@bp.route(route="alert_webhook", methods=["POST"], auth_level=func.AuthLevel.FUNCTION)
@bp.queue_output(arg_name="handover", queue_name=HANDOVER_QUEUE, connection=HANDOVER_CONNECTION)
def alert_webhook(req: func.HttpRequest, handover: func.Out[HandOver]) -> func.HttpResponse:
    from shared.runtime import alert_request

    status, body, rest = alert_request(req.get_body())
    if rest:
        handover.set(rest)
    # 503: another delivery of this firing is still running; the action group retries.
    headers = {"Retry-After": "30"} if status == 503 else None
    return func.HttpResponse(
        json.dumps(body), status_code=status, mimetype="application/json", headers=headers
    )
