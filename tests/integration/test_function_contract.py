"""The indexed Function App against the README's Triggers table: function names, triggers,
schedules (app settings with documented defaults), routes, methods and auth levels. Also that the
Python worker would accept every binding's parameter type.
"""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path
from typing import Any

import pytest
from azure.functions.eventgrid import EventGridEventInConverter
from azure.functions.http import HttpRequestConverter
from azure.functions.queue import QueueMessageInConverter, QueueMessageOutConverter
from azure.functions.timer import TimerRequestConverter

from shared.app_settings import APP_SETTINGS, TRIGGER_DEFAULTS, TRIGGERS

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SETTING = re.compile(r"^%([A-Z][A-Z0-9_]*)%$")


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.S | re.M)
    assert match, f"README has no '## {title}' section"
    return match.group(1)


def tables(text: str) -> list[list[list[str]]]:
    """Markdown tables of a section: rows of cells, header and separator dropped."""
    found: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in [*text.splitlines(), ""]:
        if line.startswith("|"):
            current.append([c.strip() for c in line.strip().strip("|").split("|")])
        elif current:
            found.append([row for row in current[2:]])
            current = []
    return found


def code(cell: str) -> list[str]:
    return re.findall(r"`([^`]+)`", cell)


def documented() -> dict[str, dict[str, Any]]:
    """README function name -> what the table says about its trigger."""
    rows = tables(section("Triggers"))[0]
    table: dict[str, dict[str, Any]] = {}
    for name_cell, trigger, setting, _what in rows:
        (name,) = code(name_cell)
        entry: dict[str, Any] = {}
        if trigger.startswith("Event Grid"):
            entry["type"] = "eventGridTrigger"
        elif trigger == "timer":
            entry["type"] = "timerTrigger"
            (entry["schedule"],) = code(setting)
        elif trigger.startswith("queue"):
            entry["type"] = "queueTrigger"
            (entry["queueName"],) = code(trigger)
            (entry["connection"],) = code(setting)
        elif trigger.startswith("HTTP"):
            entry["type"] = "httpTrigger"
            (call,) = code(trigger)
            methods, path = call.rsplit(" ", 1)
            entry["methods"] = [m.strip() for m in methods.split(",")]
            assert path.startswith("/api/"), path
            entry["route"] = path.removeprefix("/api/")
            entry["authLevel"] = {"function key": "FUNCTION", "anonymous": "ANONYMOUS"}[setting]
        else:
            pytest.fail(f"unknown trigger {trigger!r} for {name}")
        table[name] = entry
    return table


def trigger_of(fn: Any) -> dict[str, Any]:
    bindings = [json.loads(b) for b in fn.get_raw_bindings()]
    (trigger,) = [b for b in bindings if b["type"].endswith("Trigger")]
    return trigger


def test_the_readme_lists_exactly_the_indexed_functions(functions: dict[str, Any]) -> None:
    assert sorted(documented()) == sorted(functions)


@pytest.mark.parametrize("name", sorted(documented()))
def test_each_function_has_the_documented_trigger(functions: dict[str, Any], name: str) -> None:
    expected = documented()[name]
    trigger = trigger_of(functions[name])
    assert {key: trigger.get(key) for key in expected} == expected


def test_timer_schedules_are_app_settings_with_documented_defaults() -> None:
    settings_table = {code(row[0])[0]: code(row[1])[0] for row in tables(section("Triggers"))[1]}
    local = json.loads((ROOT / "local.settings.example.json").read_text(encoding="utf-8"))["Values"]
    schedules = [e["schedule"] for e in documented().values() if e["type"] == "timerTrigger"]
    assert len(schedules) == 4
    for schedule in schedules:
        match = SETTING.match(schedule)
        assert match, f"{schedule} is not an app setting reference"
        setting = match.group(1)
        assert setting in TRIGGERS and setting in APP_SETTINGS
        default = TRIGGER_DEFAULTS[setting]
        assert settings_table[setting] == default == local[setting]
        fields = default.split()
        assert len(fields) == 6, f"{setting}: NCRONTAB has six fields (seconds first)"
    assert settings_table == TRIGGER_DEFAULTS
    assert {k: local[k] for k in TRIGGERS} == TRIGGER_DEFAULTS


def test_every_setting_a_binding_references_is_declared(functions: dict[str, Any]) -> None:
    referenced = {
        m.group(1)
        for fn in functions.values()
        for binding in fn.get_raw_bindings()
        for m in re.finditer(r"%([A-Z][A-Z0-9_]*)%", binding)
    }
    assert referenced == {
        "EXPIRY_SWEEP_SCHEDULE",
        "DRIFT_SWEEP_SCHEDULE",
        "PULL_FAILURE_SCAN_SCHEDULE",
        "RETENTION_SCHEDULE",
    }
    assert referenced <= set(TRIGGERS)


def test_hand_over_queue_is_written_by_sweeps_and_the_webhook(functions: dict[str, Any]) -> None:
    queue = documented()["sweep_handover"]["queueName"]
    writers = sorted(
        name
        for name, fn in functions.items()
        for b in map(json.loads, fn.get_raw_bindings())
        if b["type"] == "queue" and b["direction"] == "OUT" and b["queueName"] == queue
    )
    assert writers == ["alert_webhook", "pull_failure_scan", "sweep_batch"]


def test_batch_queue_is_written_by_the_planners_and_the_batch_worker(
    functions: dict[str, Any],
) -> None:
    queue = documented()["sweep_batch"]["queueName"]
    writers = sorted(
        name
        for name, fn in functions.items()
        for b in map(json.loads, fn.get_raw_bindings())
        if b["type"] == "queue" and b["direction"] == "OUT" and b["queueName"] == queue
    )
    assert writers == ["drift_sweep", "expiry_sweep", "sweep_batch"]


@pytest.mark.parametrize("name", sorted(documented()))
def test_the_worker_accepts_each_parameter_type(functions: dict[str, Any], name: str) -> None:
    """What the worker checks when it loads a function: each binding's annotation."""
    fn = functions[name]
    hints = typing.get_type_hints(fn.get_user_function())
    for binding in map(json.loads, fn.get_raw_bindings()):
        if binding["name"] == "$return":
            continue
        annotation = hints[binding["name"]]
        kind = binding["type"]
        if binding["direction"] == "OUT":
            (inner,) = typing.get_args(annotation)
            assert kind == "queue" and QueueMessageOutConverter.check_output_type_annotation(inner)
        elif kind == "eventGridTrigger":
            assert EventGridEventInConverter.check_input_type_annotation(annotation)
        elif kind == "timerTrigger":
            assert TimerRequestConverter.check_input_type_annotation(annotation)
        elif kind == "queueTrigger":
            assert QueueMessageInConverter.check_input_type_annotation(annotation)
        elif kind == "httpTrigger":
            assert HttpRequestConverter.check_input_type_annotation(annotation)
        else:
            pytest.fail(f"{name}: unexpected binding {kind}")
