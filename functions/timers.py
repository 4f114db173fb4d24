"""Timer triggers: schedules come from app settings (NCRONTAB), the work from shared.sweeps.

The drift and expiry timers are planners (shared.sweep_batches): they write one message per batch of
clusters to the ``sweep-batches`` queue and return; ``sweep_batch`` checks the batches, as many
instances as the queue's length calls for. The pull-failure scan still runs in the timer and
hands what its budget (``SWEEP_BUDGET_SECONDS``) did not reach to ``sweep_handover``.
"""

from __future__ import annotations

import azure.functions as func

from functions.handover import BATCH_QUEUE, HANDOVER_CONNECTION, HANDOVER_QUEUE, HandOver

bp = func.Blueprint()


@bp.function_name(name="expiry_sweep")
@bp.timer_trigger(arg_name="timer", schedule="%EXPIRY_SWEEP_SCHEDULE%", use_monitor=True)
@bp.queue_output(arg_name="batches", queue_name=BATCH_QUEUE, connection=HANDOVER_CONNECTION)
def expiry_sweep(timer: func.TimerRequest, batches: func.Out[HandOver]) -> None:
    _plan("expiry", "expiry_sweep", batches)


@bp.function_name(name="drift_sweep")
@bp.timer_trigger(arg_name="timer", schedule="%DRIFT_SWEEP_SCHEDULE%", use_monitor=True)
@bp.queue_output(arg_name="batches", queue_name=BATCH_QUEUE, connection=HANDOVER_CONNECTION)
def drift_sweep(timer: func.TimerRequest, batches: func.Out[HandOver]) -> None:
    _plan("drift", "drift_sweep", batches)


@bp.function_name(name="pull_failure_scan")
@bp.timer_trigger(arg_name="timer", schedule="%PULL_FAILURE_SCAN_SCHEDULE%", use_monitor=True)
@bp.queue_output(arg_name="handover", queue_name=HANDOVER_QUEUE, connection=HANDOVER_CONNECTION)
def pull_failure_scan(timer: func.TimerRequest, handover: func.Out[HandOver]) -> None:
    from shared.runtime import run_sweep

    rest = run_sweep("pull-failures", source="pull_failure_scan")
    if rest:
        handover.set(rest)


def _plan(kind: str, source: str, batches: func.Out[HandOver]) -> None:
    from shared.runtime import host_queue_sender, plan_sweep

    # Each batch straight to the queue as soon as it is planned (workers start while the planner
    # goes on, and a planner that dies has handed over what it planned); the output binding,
    # which writes when the function returns, only where the app does not know the host's
    # storage.
    send = host_queue_sender(BATCH_QUEUE)
    planned: list[str] = []
    plan_sweep(kind, source=source, emit=send or planned.append)
    if planned:
        batches.set(planned)


@bp.function_name(name="retention_sweep")
@bp.timer_trigger(arg_name="timer", schedule="%RETENTION_SCHEDULE%", use_monitor=True)
def retention_sweep(timer: func.TimerRequest) -> None:
    from shared.runtime import run_retention

    run_retention()
