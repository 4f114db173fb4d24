"""Reads the policy YAML keeping node marks, so errors can name the line.

The loader follows the YAML 1.2 core schema: ``off``/``no``/``on`` stay strings (PyYAML's 1.1
defaults would turn ``set-os-node-selector: off`` into ``False``), ``22:00`` stays a string
(1.1 would read base-60 ``1320``), and dates stay strings.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

import yaml
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from shared.policy.errors import PolicyError, Problem

PathPart = str | int


class _CoreLoader(yaml.SafeLoader):
    yaml_implicit_resolvers = {}  # noqa: RUF012 (PyYAML's class-level registry, emptied)


for _tag, _pattern, _first in (
    ("bool", r"^(?:true|True|TRUE|false|False|FALSE)$", "tTfF"),
    ("null", r"^(?:~|null|Null|NULL|)$", ["~", "n", "N", ""]),
    ("int", r"^(?:[-+]?(?:0|[1-9][0-9]*)|0x[0-9a-fA-F]+)$", "-+0123456789"),
    (
        "float",
        r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?"
        r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$",
        "-+0123456789.",
    ),
):
    _CoreLoader.add_implicit_resolver(
        f"tag:yaml.org,2002:{_tag}", re.compile(_pattern), list(_first)
    )


def parse(text: str, source: str) -> tuple[Any, Node | None]:
    """The document's data and its root node; YAML syntax errors raise :class:`PolicyError`."""
    loader = _CoreLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        what = " ".join(p for p in (exc.context, exc.problem) if p)
        column = f", column {mark.column + 1}" if mark else ""
        raise PolicyError(source, [Problem(line, "", f"invalid YAML{column}: {what}")]) from None
    except yaml.YAMLError as exc:
        raise PolicyError(source, [Problem(0, "", f"invalid YAML: {exc}")]) from None
    finally:
        loader.dispose()
    return data, node


def duplicate_keys(node: Node | None, path: Sequence[PathPart] = ()) -> Iterable[Problem]:
    """YAML allows a repeated key and keeps the last one; in a policy it is always a mistake."""
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            name = key.value if isinstance(key, ScalarNode) else str(key.value)
            here = (*path, name)
            if name in seen:
                yield Problem(
                    key.start_mark.line + 1,
                    format_path(here),
                    f"duplicate key (first at line {seen[name]})",
                )
            seen.setdefault(name, key.start_mark.line + 1)
            yield from duplicate_keys(value, here)
    elif isinstance(node, SequenceNode):
        for index, item in enumerate(node.value):
            yield from duplicate_keys(item, (*path, index))


def line_of(root: Node | None, path: Sequence[PathPart], *, key: bool = False) -> int:
    """The 1-based line of the value at ``path`` (of its key with ``key=True``), else the closest."""
    node, key_node = root, None
    for part in path:
        if isinstance(node, MappingNode):
            found = [(k, v) for k, v in node.value if str(k.value) == str(part)]
            if not found:
                break
            key_node, node = found[-1]
        elif isinstance(node, SequenceNode) and isinstance(part, int) and part < len(node.value):
            key_node, node = None, node.value[part]
        else:
            break
    target = key_node if key and key_node is not None else node
    return target.start_mark.line + 1 if target is not None else 0


def format_path(path: Iterable[PathPart]) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text
