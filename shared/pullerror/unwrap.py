"""Peel what wraps a pull error message, so that rules see the runtime's own words.

A message reaches us through layers: the kubelet event, ``kubectl describe`` columns, a journal
line with klog's header, logrus/logfmt ``msg="..."`` quoting (escaped once per layer), a JSON
error body with ``\\u0027`` or ``\\"`` escapes, an HTML or XML error page with literal ``\\r\\n``,
a CSV export with doubled quotes, Markdown escapes from the guide, and line wrapping. Each layer is
undone once here, in a fixed order, so that ``client with IP \\u0027x\\u0027`` and ``client with IP
'x'`` read the same.

Bounded and linear: the input is already capped by the caller; every pattern has literal anchors
and bounded repetition, and the unescape loop runs a fixed number of rounds.
"""

from __future__ import annotations

import html
import re

__all__ = ["unwrap"]

# Backslash escapes of JSON / Go %q / logrus, and the guide's Markdown escapes (\< \: \>).
# One round undoes one layer of quoting; logrus inside JSON inside a log line needs three.
_ESCAPE = re.compile(r"\\(u[0-9a-fA-F]{4}|[\"'\\/nrt<>:])")
_ROUNDS = 3
_SIMPLE = {"n": "\n", "r": "\n", "t": "\t"}
# Tags of the error pages registries, proxies and storage send (HTML from nginx/Google front
# ends, XML from Azure Storage). Only these names: '<acrname>' placeholders in the guide are not
# markup and must survive, so that they are not mistaken for an image name.
_MARKUP = re.compile(
    r"</?(?:html|head|body|title|center|h[1-6]|hr|br|p|meta|code|address|pre|style"
    r"|!doctype|\?xml|error|message)\b[^<>]{0,500}>",
    re.IGNORECASE,
)
_LOOKS_LIKE_MARKUP = re.compile(r"<(?:html|!doctype|\?xml|title|body|h1)\b", re.IGNORECASE)
# A CSV export quotes a field and doubles the quotes inside it: ""myacr.azurecr.io/app:v1"".
_CSV_QUOTE = re.compile(r'""(?=[a-z0-9<])|(?<=[a-z0-9>])""', re.IGNORECASE)
_SPACE = re.compile(r"\s+")


def unwrap(text: str) -> str:
    """The message with escapes, markup, CSV quoting and line wrapping undone."""
    for _ in range(_ROUNDS):
        unescaped = _ESCAPE.sub(_unescape_one, text)
        if unescaped == text:
            break
        text = unescaped
    text = text.replace("\ufeff", " ")
    if _LOOKS_LIKE_MARKUP.search(text):
        text = html.unescape(_MARKUP.sub(" ", text))
    text = _CSV_QUOTE.sub('"', text)
    return _SPACE.sub(" ", text).strip()


def _unescape_one(match: re.Match[str]) -> str:
    code = match.group(1)
    if code.startswith("u"):
        char = chr(int(code[1:], 16))
        # Surrogates and control characters never matter to a rule; a space keeps words apart.
        return char if char.isprintable() else " "
    return _SIMPLE.get(code, code)
