"""Timer triggers: schedules come from app settings (NCRONTAB), the work from shared.sweeps.

A run that spends its budget (``SWEEP_BUDGET_SECONDS``) hands the rest over through the queue
output binding, one message per task, for ``sweep_handover``.
"""

from __future__ import annotations

import azure.functions as func

from functions.handover import HANDOVER_CONNECTION, HANDOVER_QUEUE, HandOver

bp = func.Blueprint()


@bp.function_name(name="expiry_sweep")
@bp.timer_trigger(arg_name="timer", schedule="%EXPIRY_SWEEP_SCHEDULE%", use_monitor=True)
@bp.queue_output(arg_name="handover", queue_name=HANDOVER_QUEUE, connection=HANDOVER_CONNECTION)
def expiry_sweep(timer: func.TimerRequest, handover: func.Out[HandOver]) -> None:
    _sweep("expiry", "expiry_sweep", handover)


@bp.function_name(name="drift_sweep")
@bp.timer_trigger(arg_name="timer", schedule="%DRIFT_SWEEP_SCHEDULE%", use_monitor=True)
@bp.queue_output(arg_name="handover", queue_name=HANDOVER_QUEUE, connection=HANDOVER_CONNECTION)
def drift_sweep(timer: func.TimerRequest, handover: func.Out[HandOver]) -> None:
    _sweep("drift", "drift_sweep", handover)


@bp.function_name(name="pull_failure_scan")
@bp.timer_trigger(arg_name="timer", schedule="%PULL_FAILURE_SCAN_SCHEDULE%", use_monitor=True)
@bp.queue_output(arg_name="handover", queue_name=HANDOVER_QUEUE, connection=HANDOVER_CONNECTION)
def pull_failure_scan(timer: func.TimerRequest, handover: func.Out[HandOver]) -> None:
    _sweep("pull-failures", "pull_failure_scan", handover)


def _sweep(kind: str, source: str, handover: func.Out[HandOver]) -> None:
    from shared.runtime import run_sweep

    rest = run_sweep(kind, source=source)
    if rest:
        handover.set(rest)


@bp.function_name(name="retention_sweep")
@bp.timer_trigger(arg_name="timer", schedule="%RETENTION_SCHEDULE%", use_monitor=True)
def retention_sweep(timer: func.TimerRequest) -> None:
    from shared.runtime import run_retention

    run_retention()
