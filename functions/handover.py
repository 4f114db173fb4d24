"""Queue triggers: the fleet sweeps' batches, and the work a run handed over.

``sweep_batch`` checks one batch of clusters a planner (drift or expiry timer) wrote; what it
could not finish goes back to ``sweep-batches`` (a cluster whose pairs could not be found yet,
an inventory still to take) or to ``sweep-handover`` (one pair or app per message).
``sweep_handover`` processes one task from scratch. A transient failure raises, so the queue
retries the message (then moves it to ``<queue>-poison``).
"""

from __future__ import annotations

from typing import List  # noqa: UP035

import azure.functions as func

# Where timers and the alert webhook put what they could not finish (queue output bindings).
HANDOVER_QUEUE = "sweep-handover"
# Where the drift and expiry planners put their batches of clusters.
BATCH_QUEUE = "sweep-batches"
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


@bp.function_name(name="sweep_batch")
@bp.queue_trigger(arg_name="message", queue_name=BATCH_QUEUE, connection=HANDOVER_CONNECTION)
@bp.queue_output(arg_name="batches", queue_name=BATCH_QUEUE, connection=HANDOVER_CONNECTION)
@bp.queue_output(arg_name="handover", queue_name=HANDOVER_QUEUE, connection=HANDOVER_CONNECTION)
def sweep_batch(
    message: func.QueueMessage, batches: func.Out[HandOver], handover: func.Out[HandOver]
) -> None:
    from shared.runtime import handle_batch

    again, rest = handle_batch(message.get_body())
    if again:
        batches.set(again)
    if rest:
        handover.set(rest)
