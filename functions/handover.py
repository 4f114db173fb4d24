"""Queue trigger for the work a sweep (or the alert webhook) handed over when its budget ran out.

Each message is one task (a cluster/registry pair to check, or a service principal to look at),
processed from scratch; a transient failure raises, so the queue retries the message (then moves
it to ``sweep-handover-poison``).
"""

from __future__ import annotations

from typing import List  # noqa: UP035

import azure.functions as func

# Where timers and the alert webhook put what they could not finish (queue output bindings).
HANDOVER_QUEUE = "sweep-handover"
# The host's storage account (AzureWebJobsStorage, or its identity-based __ settings).
HANDOVER_CONNECTION = "AzureWebJobsStorage"
# The queue output binding's type: the worker accepts typing.List[str], not list[str].
HandOver = List[str]  # noqa: UP006

bp = func.Blueprint()


@bp.function_name(name="sweep_handover")
@bp.queue_trigger(arg_name="message", queue_name=HANDOVER_QUEUE, connection=HANDOVER_CONNECTION)
def sweep_handover(message: func.QueueMessage) -> None:
    from shared.runtime import handle_handover

    handle_handover(message.get_body())
