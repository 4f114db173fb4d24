"""Contract helpers: does an emulator response survive a round trip through the SDK's model?

Both model generations are supported: the new hybrid models (``_attr_to_rest_field``) and the
msrest models (``_attribute_map``). A key the model does not know is a key the SDK would drop or
never expose, which means the emulator invented it or misspelled it.
"""

from __future__ import annotations

from typing import Any


def unknown_fields(model_cls: type, data: Any, path: str = "$") -> list[str]:
    if not isinstance(data, dict):
        return []
    if hasattr(model_cls, "_attribute_map"):
        return _msrest_unknown(model_cls, data, path)
    instance = model_cls(data)
    fields = {rf._rest_name: (attr, rf) for attr, rf in instance._attr_to_rest_field.items()}
    problems: list[str] = []
    for key, value in data.items():
        if key not in fields:
            problems.append(f"{path}.{key}")
            continue
        attr, _ = fields[key]
        problems.extend(_nested(getattr(instance, attr), value, f"{path}.{key}"))
    return problems


def _nested(parsed: Any, value: Any, path: str) -> list[str]:
    if hasattr(parsed, "_attr_to_rest_field") and isinstance(value, dict):
        return unknown_fields(type(parsed), value, path)
    if isinstance(parsed, list) and isinstance(value, list):
        return [
            p
            for i, (a, b) in enumerate(zip(parsed, value, strict=False))
            for p in _nested(a, b, f"{path}[{i}]")
        ]
    if isinstance(parsed, dict) and isinstance(value, dict):
        return [p for k in value for p in _nested(parsed.get(k), value[k], f"{path}[{k!r}]")]
    return []


def _msrest_unknown(model_cls: Any, data: dict[str, Any], path: str) -> list[str]:
    model = model_cls.deserialize(data)
    round_trip = model.serialize(keep_readonly=True)
    return [f"{path}{p}" for p in _missing(data, round_trip, "")]


def _missing(original: Any, round_trip: Any, path: str) -> list[str]:
    if isinstance(original, dict):
        if not isinstance(round_trip, dict):
            return [path or "."]
        return [
            p
            for k, v in original.items()
            for p in (
                _missing(v, round_trip[k], f"{path}.{k}") if k in round_trip else [f"{path}.{k}"]
            )
        ]
    if isinstance(original, list) and isinstance(round_trip, list):
        return [
            p
            for i, (a, b) in enumerate(zip(original, round_trip, strict=False))
            for p in _missing(a, b, f"{path}[{i}]")
        ]
    return []


def assert_round_trips(model_cls: type, data: Any) -> None:
    lost = unknown_fields(model_cls, data)
    assert not lost, f"{model_cls.__name__} does not know {lost}"


def shape_gaps(example: Any, served: Any, where: str = "") -> list[str]:
    """Where ``served`` lacks a key the example has, or holds another kind of value there
    (lists are compared by their first item; the example's values themselves do not matter)."""
    if isinstance(example, dict):
        if not isinstance(served, dict):
            return [f"{where or '/'}: {type(served).__name__}, not an object"]
        return [
            gap
            for key, value in example.items()
            for gap in (
                shape_gaps(value, served[key], f"{where}/{key}")
                if key in served
                else [f"{where}/{key}: missing"]
            )
        ]
    if isinstance(example, list):
        if not isinstance(served, list):
            return [f"{where}: {type(served).__name__}, not a list"]
        return shape_gaps(example[0], served[0], f"{where}/0") if example and served else []
    kinds = (bool, int, float, str)
    kind = next((k for k in kinds if isinstance(example, k)), type(example))
    return [] if isinstance(served, kind) else [f"{where}: {served!r} is not a {kind.__name__}"]


def wire_get(emulator: Any, path: str, api_version: str) -> Any:
    """``GET path`` on the emulator's ARM with a token of its audience: the JSON on the wire, as
    opposed to what an SDK model makes of it (which drops and renames keys)."""
    import requests

    response = requests.get(
        f"{emulator.base_url}{path}",
        params={"api-version": api_version},
        headers={"Authorization": f"Bearer {emulator.state.issue_token(emulator.base_url)}"},
        verify=emulator.ca_path,
        timeout=10,
    )
    assert response.status_code == 200, response.text
    return response.json()
