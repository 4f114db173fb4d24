"""Azure ABAC conditions (conditionVersion 2.0): parse the text and evaluate it for one request.

Role assignment conditions have the documented shape `((!(ActionMatches{'<action>'})) OR (<expr>))`:
an action the condition names is allowed only when `<expr>` holds; other actions pass through. The
grammar here is the documented one (Azure ABAC "condition format and syntax"): `AND`/`&&`, `OR`/`||`,
`NOT`/`!`, parentheses, `ActionMatches{...}` / `SubOperationMatches{...}`, and comparisons of an
attribute (`@Request[...]`, `@Resource[...]`, `@Principal[...]`, `@Environment[...]`) with a value
or a `{...}` set, optionally under a `ForAnyOfAnyValues:`-style cross-product operator.

What cannot be decided from the attributes a caller knows raises `ConditionNotEvaluable` naming
the reason, so a check reports UNKNOWN instead of guessing.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

__all__ = ["ConditionNotEvaluable", "ConditionSyntaxError", "Request", "evaluate"]


class ConditionSyntaxError(ValueError):
    """The text is not an ABAC condition."""


class ConditionNotEvaluable(ValueError):
    """The condition uses an attribute, operator or action the caller cannot supply."""


@dataclass(frozen=True)
class Request:
    """What a condition is evaluated against: the action and the attribute values known for it.

    Attribute keys are written as in conditions (`@Resource[Microsoft.ContainerRegistry/registries/
    repositories:name]`) and compared case-insensitively; each attribute has one or more values.
    """

    action: str
    attributes: Mapping[str, Sequence[str]]
    sub_operations: frozenset[str] = frozenset()

    def values(self, attribute: str) -> Sequence[str]:
        folded = attribute.casefold()
        for key, values in self.attributes.items():
            if key.casefold() == folded:
                return values
        raise ConditionNotEvaluable(f"the condition reads {attribute}, which is not known here")


_TOKEN = re.compile(
    r"""\s*(?:
      (?P<lparen>\() | (?P<rparen>\)) |
      (?P<and>AND\b|&&) | (?P<or>OR\b|\|\|) | (?P<not>NOT\b|!) |
      (?P<match>(?:ActionMatches|SubOperationMatches)\{[^}]*\}) |
      (?P<attribute>@(?:Request|Resource|Principal|Environment)\[[^\]]+\]) |
      (?P<operator>(?:For(?:Any|All)Of(?:Any|All)Values:)?[A-Za-z]+) |
      (?P<set>\{[^}]*\}) |
      (?P<string>'(?:[^'\\]|\\.)*') |
      (?P<bare>[0-9A-Fa-f-]{36})
    )""",
    re.VERBOSE,
)

_Node = Callable[[Request], bool]


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == "'":
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    return text


def _set_values(text: str) -> list[str]:
    inner = text.strip()[1:-1]
    return [_unquote(part) for part in re.findall(r"'(?:[^'\\]|\\.)*'|[^,\s]+", inner)]


def _compare(name: str) -> Callable[[str, str], bool]:
    ignore_case = name.endswith("IgnoreCase")
    base = name.removesuffix("IgnoreCase")
    negate = "Not" in base
    base = base.replace("Not", "")

    def fold(value: str) -> str:
        return value.casefold() if ignore_case or base == "GuidEquals" else value

    tests: dict[str, Callable[[str, str], bool]] = {
        "StringEquals": lambda have, want: fold(have) == fold(want),
        "GuidEquals": lambda have, want: fold(have) == fold(want),
        "StringStartsWith": lambda have, want: fold(have).startswith(fold(want)),
        # StringLike: `*` any run of characters, `?` one character (Azure's wildcard form).
        "StringLike": lambda have, want: fnmatch.fnmatchcase(fold(have), fold(want)),
    }
    if base not in tests:
        raise ConditionNotEvaluable(f"the operator {name} is not evaluated here")
    test = tests[base]
    return (lambda have, want: not test(have, want)) if negate else test


def _comparison(attribute: str, operator: str, values: list[str]) -> _Node:
    quantifier, _, name = operator.rpartition(":")
    test = _compare(name)

    def node(request: Request) -> bool:
        have = list(request.values(attribute))
        if not quantifier:
            # A single-valued comparison: every value the attribute has must satisfy it.
            return bool(have) and all(any(test(h, w) for w in values) for h in have)
        left_any, right_any = quantifier.startswith("ForAnyOf"), quantifier.endswith("AnyValues")
        left = any if left_any else all
        right = any if right_any else all
        return bool(have) and left(right(test(h, w) for w in values) for h in have)

    return node


def _action_match(text: str) -> _Node:
    kind, _, rest = text.partition("{")
    pattern = _unquote(rest.rstrip("}"))

    def node(request: Request) -> bool:
        if kind == "ActionMatches":
            return fnmatch.fnmatchcase(request.action.casefold(), pattern.casefold())
        return pattern.casefold() in {s.casefold() for s in request.sub_operations}

    return node


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens: list[tuple[str, str]] = []
        position = 0
        text = text.strip()
        while position < len(text):
            found = _TOKEN.match(text, position)
            if not found or found.end() == position:
                raise ConditionSyntaxError(f"cannot read the condition at {text[position:][:40]!r}")
            kind = found.lastgroup or ""
            self.tokens.append((kind, found.group(kind)))
            position = found.end()
            while position < len(text) and text[position].isspace():
                position += 1
        self.at = 0

    def peek(self) -> str | None:
        return self.tokens[self.at][0] if self.at < len(self.tokens) else None

    def take(self, kind: str) -> str:
        if self.peek() != kind:
            raise ConditionSyntaxError(f"expected {kind}, found {self.peek() or 'the end'}")
        value = self.tokens[self.at][1]
        self.at += 1
        return value

    def expression(self) -> _Node:
        return self._joined("or", self.term, any)

    def term(self) -> _Node:
        return self._joined("and", self.factor, all)

    def _joined(
        self, joiner: str, operand: Callable[[], _Node], combine: Callable[..., bool]
    ) -> _Node:
        """`operand (joiner operand)*`: one node when there is no joiner, else their combination."""
        parts = [operand()]
        while self.peek() == joiner:
            self.take(joiner)
            parts.append(operand())
        return parts[0] if len(parts) == 1 else (lambda r: combine(p(r) for p in parts))

    def factor(self) -> _Node:
        kind = self.peek()
        if kind == "not":
            self.take("not")
            inner = self.factor()
            return lambda r: not inner(r)
        if kind == "lparen":
            self.take("lparen")
            inner = self.expression()
            self.take("rparen")
            return inner
        if kind == "match":
            return _action_match(self.take("match"))
        if kind == "attribute":
            attribute = self.take("attribute")
            operator = self.take("operator")
            if self.peek() == "set":
                values = _set_values(self.take("set"))
            elif self.peek() in {"string", "bare"}:
                values = [_unquote(self.take(self.peek() or ""))]
            else:
                raise ConditionSyntaxError(f"{attribute} {operator} has no value")
            return _comparison(attribute, operator, values)
        raise ConditionSyntaxError(f"unexpected {kind or 'end of the condition'}")


def parse(text: str) -> _Node:
    parser = _Parser(text)
    node = parser.expression()
    if parser.peek() is not None:
        raise ConditionSyntaxError(f"unexpected {parser.peek()} after the condition")
    return node


def evaluate(text: str, request: Request) -> bool:
    """True when the condition allows the request."""
    return parse(text)(request)
