"""infra/ against the Bicep compiler's own type definitions, without a Bicep compiler.

`bicep-types/` (beside this file) is a copy of the generated type definitions the compiler uses
(Azure/bicep-types-az and microsoftgraph/msgraph-bicep-types, see its README). For every resource
declaration this checks what `bicep build` would refuse or warn about: the type and API version
exist, every property name exists at its level (case included), read-only properties are not set,
literal values are allowed values, integers and strings keep their bounds, and required properties
are present. An `existing` declaration's type and API version must exist too, and it may say only
which resource (its name, or a Graph identifier) and where (`scope`, `parent`). Module calls are
checked too: parameter names, required parameters, and the scope a module is deployed at against
the module's `targetScope`.

pycep (the parser checkov uses) gives identifiers and string literals both as Python strings, so a
string that names a symbol of the file (parameter, variable, resource, module, loop variable) is
read as an expression and not checked as a literal.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pycep import BicepParser

TYPES = Path(__file__).parent / "bicep-types"
REQUIRED, READ_ONLY = 1, 2
# Keys Bicep handles itself: they are not properties of the resource body's type.
BICEP_KEYWORDS = {"parent", "dependsOn", "scope"}
INTERPOLATION = re.compile(r"\$\{")


@cache
def _index() -> dict[str, str]:
    index: dict[str, str] = json.loads((TYPES / "index.json").read_text())
    return {key.lower(): value for key, value in index.items()}


@cache
def _types(relative: str) -> list[dict[str, Any]]:
    types: list[dict[str, Any]] = json.loads((TYPES / relative).read_text())
    return types


@dataclass(frozen=True)
class TypeRef:
    """One entry of a types.json, by file and position (`{"$ref": "#/12"}`)."""

    file: str
    position: int

    @property
    def node(self) -> dict[str, Any]:
        return _types(self.file)[self.position]

    def follow(self, ref: dict[str, str]) -> TypeRef:
        return TypeRef(self.file, int(ref["$ref"].removeprefix("#/")))


def resource_type(type_and_version: str) -> TypeRef | None:
    """The ResourceType entry of `Type@apiVersion`, or None when the compiler does not know it."""
    relative = _index().get(type_and_version.lower())
    if relative is None:
        return None
    for position, node in enumerate(_types(relative)):
        if node["$type"] == "ResourceType" and node["name"].lower() == type_and_version.lower():
            return TypeRef(relative, position)
    return None


@cache
def _parser() -> BicepParser:
    return BicepParser()  # building the grammar takes a second: once per process


# pycep predates Bicep extensions (`extension microsoftGraphV1`): the statement only names the
# extension whose types (bicep-types/msgraph) the file's Microsoft.Graph resources use.
EXTENSION = re.compile(r"^extension\s+\w+\s*$", re.MULTILINE)


def uses_extension(path: Path) -> bool:
    return bool(EXTENSION.search(path.read_text()))


@cache
def parsed(path: Path) -> dict[str, Any]:
    text = EXTENSION.sub("", path.read_text())
    result: dict[str, Any] = _parser().parse(text=text)
    return result


def _loop_names(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        loop = node.get("loop_type")
        if isinstance(loop, dict):
            detail = loop.get("detail") or {}
            for key in ("item_name", "index_name"):
                if isinstance(detail.get(key), str):
                    yield detail[key]
        for value in node.values():
            yield from _loop_names(value)
    elif isinstance(node, list):
        for value in node:
            yield from _loop_names(value)


def symbols(doc: dict[str, Any]) -> frozenset[str]:
    names: set[str] = {"true", "false", "null"}
    for section in ("parameters", "variables", "resources", "modules", "outputs"):
        names |= set(doc.get(section) or {})
    names |= set(_loop_names(doc))
    return frozenset(names)


def unwrap(config: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """A body without its `if (...)` / `[for ...]` wrappers, and its condition."""
    condition = None
    while isinstance(config.get("config"), dict) and (
        "condition" in config or "loop_type" in config
    ):
        condition = config.get("condition") or condition
        config = config["config"]
    return config, condition


def _conditional_branches(value: Any) -> tuple[Any, Any] | None:
    operator = value.get("operator") if isinstance(value, dict) else None
    if isinstance(operator, dict) and operator.get("type") == "conditional":
        operands = operator["operands"]
        return operands["true_value"], operands["false_value"]
    return None


class _Checker:
    def __init__(self, where: str, names: frozenset[str]) -> None:
        self.where = where
        self.names = names
        self.problems: list[str] = []

    def is_expression(self, value: Any) -> bool:
        if isinstance(value, dict):
            return "function" in value or "operator" in value
        if isinstance(value, str):
            return value in self.names or bool(INTERPOLATION.search(value))
        return False

    def fail(self, path: str, message: str) -> None:
        self.problems.append(f"{self.where}: {path}: {message}")

    def check(self, value: Any, ref: TypeRef, path: str) -> None:
        branches = _conditional_branches(value)
        if branches is not None:
            # `cond ? a : b`: each literal branch must be a value the property takes.
            for branch in branches:
                self.check(branch, ref, path)
            return
        if self.is_expression(value):
            return
        kind = ref.node["$type"]
        check = getattr(self, f"_{kind}", None)
        if check is not None:
            check(value, ref, path)

    def _StringLiteralType(self, value: Any, ref: TypeRef, path: str) -> None:  # noqa: N802
        if value != ref.node["value"]:
            self.fail(path, f"{value!r} is not {ref.node['value']!r}")

    def _StringType(self, value: Any, ref: TypeRef, path: str) -> None:  # noqa: N802
        self._string(value, ref.node, path)

    def _IntegerType(self, value: Any, ref: TypeRef, path: str) -> None:  # noqa: N802
        self._integer(value, ref.node, path)

    def _BooleanType(self, value: Any, ref: TypeRef, path: str) -> None:  # noqa: N802
        if not isinstance(value, bool):
            self.fail(path, f"{value!r} is not a bool")

    def _ArrayType(self, value: Any, ref: TypeRef, path: str) -> None:  # noqa: N802
        if not isinstance(value, list):
            self.fail(path, f"{value!r} is not an array")
            return
        for number, item in enumerate(value):
            self.check(item, ref.follow(ref.node["itemType"]), f"{path}[{number}]")

    def _UnionType(self, value: Any, ref: TypeRef, path: str) -> None:  # noqa: N802
        self._union(value, ref, path)

    def _ObjectType(self, value: Any, ref: TypeRef, path: str) -> None:  # noqa: N802
        self._object(value, ref, ref.node.get("properties") or {}, path)

    def _DiscriminatedObjectType(self, value: Any, ref: TypeRef, path: str) -> None:  # noqa: N802
        self._discriminated(value, ref, path)

    def _string(self, value: Any, node: dict[str, Any], path: str) -> None:
        if not isinstance(value, str):
            self.fail(path, f"{value!r} is not a string")
            return
        if "minLength" in node and len(value) < node["minLength"]:
            self.fail(path, f"{value!r} is shorter than {node['minLength']}")
        if "maxLength" in node and len(value) > node["maxLength"]:
            self.fail(path, f"{value!r} is longer than {node['maxLength']}")

    def _integer(self, value: Any, node: dict[str, Any], path: str) -> None:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(path, f"{value!r} is not an integer")
            return
        if "minValue" in node and value < node["minValue"]:
            self.fail(path, f"{value} is below {node['minValue']}")
        if "maxValue" in node and value > node["maxValue"]:
            self.fail(path, f"{value} is above {node['maxValue']}")

    def _union(self, value: Any, ref: TypeRef, path: str) -> None:
        elements = [ref.follow(e) for e in ref.node["elements"]]
        allowed = [e.node["value"] for e in elements if e.node["$type"] == "StringLiteralType"]
        if isinstance(value, str) and allowed:
            # An extensible enum (`modelAsString`) also admits any string, and Bicep would take a
            # typo without a word; Azure refuses it at deploy time. Only documented values pass.
            if value not in allowed:
                self.fail(path, f"{value!r} is not one of {allowed}")
            return
        for element in elements:
            trial = _Checker(self.where, self.names)
            trial.check(value, element, path)
            if not trial.problems:
                return
        self.fail(path, f"{value!r} is not one of {allowed}" if allowed else f"{value!r}")

    def _object(
        self, value: Any, ref: TypeRef, properties: dict[str, Any], path: str, top: bool = False
    ) -> None:
        if not isinstance(value, dict):
            self.fail(path, f"{value!r} is not an object")
            return
        by_folded = {name.casefold(): name for name in properties}
        additional = ref.node.get("additionalProperties")
        for key, item in value.items():
            if top and key in BICEP_KEYWORDS:
                continue
            name = key.strip("'")
            here = f"{path}.{name}" if path else name
            if name in properties:
                flags = properties[name].get("flags", 0)
                if flags & READ_ONLY:
                    self.fail(here, "is read-only")
                    continue
                self.check(item, ref.follow(properties[name]["type"]), here)
            elif name.casefold() in by_folded:
                self.fail(here, f"is spelt {by_folded[name.casefold()]!r} in the type")
            elif additional is not None:
                if not INTERPOLATION.search(name):
                    self.check(item, ref.follow(additional), here)
            elif not INTERPOLATION.search(name):
                self.fail(here, f"is not a property (known: {sorted(properties)})")
        for name, spec in properties.items():
            flags = spec.get("flags", 0)
            if flags & REQUIRED and not flags & READ_ONLY and name not in value:
                self.fail(f"{path}.{name}" if path else name, "is required")

    def _discriminated(self, value: Any, ref: TypeRef, path: str) -> None:
        node = ref.node
        if not isinstance(value, dict):
            self.fail(path, f"{value!r} is not an object")
            return
        key = node["discriminator"]
        chosen = value.get(key)
        if self.is_expression(chosen):
            return
        if chosen not in node["elements"]:
            self.fail(f"{path}.{key}", f"{chosen!r} is not one of {sorted(node['elements'])}")
            return
        element = ref.follow(node["elements"][chosen])
        properties = {**node.get("baseProperties", {}), **element.node.get("properties", {})}
        self._object(value, element, properties, path)

    def resource(self, body: dict[str, Any], ref: TypeRef) -> None:
        body_ref = ref.follow(ref.node["body"])
        self._object(body, body_ref, body_ref.node.get("properties") or {}, "", top=True)


IDENTIFIER = 16  # Microsoft Graph types: the property that names an existing object (appId, ...)


# What an `existing` declaration may say: which resource (name, or a Graph identifier), and where.
EXISTING_KEYS = {"name", "scope", "parent"}


def _identifiers(ref: TypeRef) -> set[str]:
    properties = ref.follow(ref.node["body"]).node.get("properties") or {}
    return {name for name, spec in properties.items() if spec.get("flags", 0) & IDENTIFIER}


def _existing_problems(where: str, body: dict[str, Any], ref: TypeRef) -> list[str]:
    identifiers = _identifiers(ref)
    problems = []
    if "name" not in body and not identifiers & set(body):
        problems.append(f"{where}: an existing resource needs its name or identifier")
    extra = set(body) - EXISTING_KEYS - identifiers
    if extra:
        problems.append(
            f"{where}: an existing resource takes only its name and scope, not {sorted(extra)}"
        )
    return problems


def resource_problems(path: Path, root: Path) -> list[str]:
    doc = parsed(path)
    names = symbols(doc)
    problems: list[str] = []
    for symbol, resource in (doc.get("resources") or {}).items():
        where = f"{path.relative_to(root)}: {symbol}"
        key = f"{resource['type']}@{resource['api_version']}"
        ref = resource_type(key)
        if ref is None:
            problems.append(
                f"{where}: {key} is not a resource type and API version Bicep knows "
                "(a new version: copy its types.json and index entry into tests/infra/bicep-types/)"
            )
            continue
        body, _ = unwrap(resource["config"])
        if resource.get("existing"):
            problems += _existing_problems(where, body, ref)
            continue
        checker = _Checker(where, names)
        checker.resource(body, ref)
        problems += checker.problems
    return problems


# Scope expressions a module call may use, by the callee's targetScope.
SCOPE_FUNCTIONS = {
    "resourceGroup": {"resource_group"},
    "subscription": {"subscription"},
    "managementGroup": {"management_group"},
    "tenant": {"tenant"},
}


def target_scope(doc: dict[str, Any]) -> str:
    scope = (doc.get("globals") or {}).get("scope") or {}
    return str(scope.get("value") or "resourceGroup")


def _module_scope(doc: dict[str, Any], caller_scope: str, scope: Any) -> str | None:
    """The scope kind a module is deployed at: its `scope:` or the caller's own."""
    if scope is None:
        return caller_scope
    if isinstance(scope, dict) and "function" in scope:
        kind = scope["function"]["type"]
        for name, functions in SCOPE_FUNCTIONS.items():
            if kind in functions:
                return name
        return None
    if isinstance(scope, str):
        resource = (doc.get("resources") or {}).get(scope)
        if resource and resource["type"].lower() == "microsoft.resources/resourcegroups":
            return "resourceGroup"
    return None


def module_problems(path: Path, root: Path) -> list[str]:
    doc = parsed(path)
    caller_scope = target_scope(doc)
    problems: list[str] = []
    for symbol, module in (doc.get("modules") or {}).items():
        where = f"{path.relative_to(root)}: module {symbol}"
        target = path.parent / module["detail"]["path"]
        if not target.is_file():
            problems.append(f"{where}: {module['detail']['path']} does not exist")
            continue
        callee = parsed(target)
        body, _ = unwrap(module["config"])
        deployed_at = _module_scope(doc, caller_scope, body.get("scope"))
        expected = target_scope(callee)
        if deployed_at != expected:
            problems.append(
                f"{where}: deployed at {deployed_at} scope, but the module's targetScope is {expected}"
            )
        declared = callee.get("parameters") or {}
        given = body.get("params") or {}
        for name in given:
            if name not in declared:
                problems.append(f"{where}: passes {name!r}, which the module does not declare")
        for name, parameter in declared.items():
            if parameter.get("default") is None and name not in given:
                problems.append(f"{where}: does not pass the required parameter {name!r}")
    return problems


def schema_problems(root: Path) -> list[str]:
    problems: list[str] = []
    for path in sorted(root.rglob("*.bicep")):
        problems += resource_problems(path, root)
        problems += module_problems(path, root)
    return problems
