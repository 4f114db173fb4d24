"""What an AKS Run Command pod runs: a small shell around ``kubectl``, inside the cluster.

AKS starts a pod (``aks-command``) with kubectl and runs the request's ``command`` in a shell,
with the request's ``context`` (a zip) unpacked as its working directory; the pod reaches the API
server from inside the cluster, so a private or IP-restricted endpoint does not stop it. Here the
same: the command is parsed as a shell subset and each ``kubectl`` call becomes a request to the
cluster's emulated API server (:func:`emulator.kubernetes.handle` with ``in_cluster``), so
selectors, validation, conflicts and RBAC switches are the API server's own.

Supported: ``;``, ``&&``, ``||``, ``2>/dev/null``, ``set -e``, ``printf``, ``echo``, ``true``,
``false``, ``sleep``; ``kubectl get`` (several kinds, ``-A``/``-n``, ``-l``, ``--field-selector``,
``-o json``/``name``), ``patch`` (``--type``, ``-p``/``--patch-file``), ``apply -f``, ``delete``
(by name or ``-l``, ``--ignore-not-found``), ``logs`` and ``wait`` (for pods). Anything else fails
as a shell or kubectl would (exit 127 / 1 with their messages): a scenario cannot pass by
sending a command the real pod would refuse.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from typing import Any

import yaml
from werkzeug.test import EnvironBuilder
from werkzeug.wrappers import Request

from emulator import kubernetes as k8s
from emulator.state import Json, State


# Names kubectl accepts for each kind: plural, singular, short names, Kind (lower-case).
def _aliases() -> dict[str, k8s.Kind]:
    found: dict[str, k8s.Kind] = {}
    for kind in k8s.KINDS.values():
        short = k8s._SHORT_NAMES.get(kind.plural, [])
        for alias in (kind.plural, kind.kind.lower(), *short):
            found[alias] = kind
        if "/" in kind.api_version:
            found[f"{kind.plural}.{kind.api_version.split('/')[0]}"] = kind
    return found


_ALIASES = _aliases()

_FLAGS_WITH_VALUE = {
    "-n": "namespace",
    "--namespace": "namespace",
    "-o": "output",
    "--output": "output",
    "-l": "selector",
    "--selector": "selector",
    "--field-selector": "field-selector",
    "-f": "filename",
    "--filename": "filename",
    "-p": "patch",
    "--patch": "patch",
    "--patch-file": "patch-file",
    "--type": "type",
    "--for": "for",
    "--timeout": "timeout",
    "--request-timeout": "request-timeout",
    "--field-manager": "field-manager",
    "-c": "container",
    "--container": "container",
    "--tail": "tail",
}
_BOOL_FLAGS = {
    "-A": "all-namespaces",
    "--all-namespaces": "all-namespaces",
    "--ignore-not-found": "ignore-not-found",
    "--server-side": "server-side",
    "--prefix": "prefix",
}
_PATCH_TYPES = {
    "strategic": "application/strategic-merge-patch+json",
    "merge": "application/merge-patch+json",
    "json": "application/json-patch+json",
}


class KubectlError(Exception):
    """A kubectl failure: the message it prints on stderr, exit code 1."""


@dataclass
class Args:
    positional: list[str] = field(default_factory=list)
    flags: dict[str, str] = field(default_factory=dict)

    def has(self, name: str) -> bool:
        return name in self.flags and self.flags[name].lower() != "false"


def parse_args(argv: list[str]) -> Args:
    args = Args()
    i = 0
    while i < len(argv):
        token = argv[i]
        name, eq, value = token.partition("=")
        if name in _FLAGS_WITH_VALUE:
            if not eq:
                i += 1
                if i >= len(argv):
                    raise KubectlError(f"error: flag needs an argument: {name.lstrip('-')}")
                value = argv[i]
            args.flags[_FLAGS_WITH_VALUE[name]] = value
        elif name in _BOOL_FLAGS:
            args.flags[_BOOL_FLAGS[name]] = value if eq else "true"
        elif name in ("--wait", "--now"):
            args.flags[name.lstrip("-")] = value if eq else "true"
        elif token.startswith("-") and token != "-":
            raise KubectlError(f"error: unknown flag: {name}")
        else:
            args.positional.append(token)
        i += 1
    return args


@dataclass
class Shell:
    """One Run Command execution: its cluster, its credentials and its context files."""

    state: State
    api: k8s.ClusterApi
    token: str
    files: dict[str, bytes] = field(default_factory=dict)
    out: list[str] = field(default_factory=list)

    # -- the shell ---------------------------------------------------------------------------

    def run(self, command: str) -> int:
        """Run ``command``; what it prints (stdout and stderr, as AKS keeps both) is ``out``."""
        try:
            lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|>")
            lexer.whitespace_split = True
            tokens = list(lexer)
        except ValueError as exc:
            self.out.append(f"bash: syntax error: {exc}\n")
            return 2
        status, errexit = 0, False
        connector = ";"
        for argv, next_connector in _commands(tokens):
            skip = (connector == "&&" and status != 0) or (connector == "||" and status == 0)
            connector = next_connector
            if skip:
                continue
            if argv[:2] == ["set", "-e"]:
                errexit = True
                continue
            status = self._simple(argv)
            if errexit and status != 0 and next_connector != "||":
                return status
        return status

    def _simple(self, argv: list[str]) -> int:
        quiet = silent = False
        while len(argv) >= 2 and argv[-2] == ">":
            if len(argv) >= 3 and argv[-3] == "2":
                quiet, argv = argv[-1] == "/dev/null", argv[:-3]
            else:
                silent, argv = argv[-1] == "/dev/null", argv[:-2]
        if silent:
            kept = len(self.out)
            status = self._simple(argv) if argv else 0
            printed = "".join(self.out[kept:])
            del self.out[kept:]
            if not quiet and status != 0:
                self.out.append(printed)  # errors go to stderr, which is kept
            return status
        if not argv:
            return 0
        program, rest = argv[0], argv[1:]
        if program == "printf":
            self.out.append(_printf(rest))
            return 0
        if program == "echo":
            self.out.append(" ".join(rest) + "\n")
            return 0
        if program in ("true", "sleep", "set"):
            return 0
        if program == "false":
            return 1
        if program != "kubectl":
            self.out.append(f"bash: {program}: command not found\n")
            return 127
        try:
            self.out.append(self.kubectl(rest))
            return 0
        except KubectlError as exc:
            if not quiet:
                self.out.append(f"{exc}\n")
            return 1

    # -- kubectl -----------------------------------------------------------------------------

    def kubectl(self, argv: list[str]) -> str:
        if not argv:
            raise KubectlError("error: You must specify the type of resource to get.")
        verb, args = argv[0], parse_args(argv[1:])
        handler = {
            "get": self._get,
            "patch": self._patch,
            "apply": self._apply,
            "delete": self._delete,
            "logs": self._logs,
            "wait": self._wait,
        }.get(verb)
        if handler is None:
            raise KubectlError(f'error: unknown command "{verb}" for "kubectl"')
        return handler(args)

    def _get(self, args: Args) -> str:
        if not args.positional:
            raise KubectlError("error: You must specify the type of resource to get.")
        kinds = [_kind(name) for name in args.positional[0].split(",")]
        name = args.positional[1] if len(args.positional) > 1 else None
        output = args.flags.get("output", "")
        items: list[Json] = []
        for kind in kinds:
            if name is not None:
                items.append(self._request("GET", self._path(kind, args, name)))
                continue
            query = {}
            for flag, param in (("selector", "labelSelector"), ("field-selector", "fieldSelector")):
                if flag in args.flags:
                    query[param] = args.flags[flag]
            listed = self._request("GET", self._path(kind, args), query=query)
            items += [
                {"apiVersion": kind.api_version, "kind": kind.kind, **o} for o in listed["items"]
            ]
        if output == "json":
            if name is not None and len(items) == 1:
                return json.dumps(items[0], indent=4) + "\n"
            document = {
                "apiVersion": "v1",
                "items": items,
                "kind": "List",
                "metadata": {"resourceVersion": ""},
            }
            return json.dumps(document, indent=4) + "\n"
        if output == "name":
            return "".join(f"{_ref(o)}\n" for o in items)
        if output not in ("", "wide"):
            raise KubectlError(
                f'error: unable to match a printer suitable for the output format "{output}"'
            )
        if not items:
            where = "" if args.has("all-namespaces") else f" in {self._namespace(args)} namespace"
            return f"No resources found{where}.\n"
        return "NAME\n" + "".join(f"{_ref(o)}\n" for o in items)

    def _patch(self, args: Args) -> str:
        kind, name = self._kind_and_name(args)
        if "patch-file" in args.flags:
            body = self._file(args.flags["patch-file"]).decode()
        elif "patch" in args.flags:
            body = args.flags["patch"]
        else:
            raise KubectlError(
                "error: must specify --patch or --patch-file containing the contents of the patch"
            )
        patch_type = args.flags.get("type", "strategic")
        if patch_type not in _PATCH_TYPES:
            raise KubectlError(
                f'error: --type must be one of [json merge strategic], not "{patch_type}"'
            )
        try:
            patch = yaml.safe_load(body)
        except yaml.YAMLError as exc:
            raise KubectlError(f'error: unable to parse "{body[:40]}": {exc}') from exc
        path = self._path(kind, args, name)
        before = self._request("GET", path)
        after = self._request("PATCH", path, body=patch, content_type=_PATCH_TYPES[patch_type])
        same = before["metadata"].get("resourceVersion") == after["metadata"].get("resourceVersion")
        return f"{_ref(after)} patched{' (no change)' if same else ''}\n"

    def _apply(self, args: Args) -> str:
        """Each object of the file in turn; one the API server refuses does not stop the rest
        (kubectl prints its error and exits 1 at the end)."""
        if "filename" not in args.flags:
            raise KubectlError("error: must specify one of -f and -k")
        lines, errors = [], []
        for obj in _documents(self._file(args.flags["filename"])):
            try:
                lines.append(self._apply_one(obj, args))
            except KubectlError as exc:
                errors.append(str(exc))
        if errors:
            raise KubectlError("".join(lines) + "\n".join(errors))
        return "".join(lines)

    def _apply_one(self, obj: Json, args: Args) -> str:
        kind = k8s.KINDS.get((str(obj.get("apiVersion")), _plural(obj)))
        if kind is None:
            raise KubectlError(
                f'error: resource mapping not found for name: "{obj.get("metadata", {}).get("name")}" '
                f'namespace: "" from "{args.flags["filename"]}": no matches for kind '
                f'"{obj.get("kind")}" in version "{obj.get("apiVersion")}"'
            )
        namespace = obj.get("metadata", {}).get("namespace") or self._namespace(args)
        name = obj["metadata"]["name"]
        base = self._path(kind, Args(flags={"namespace": namespace}))
        try:
            self._request("GET", f"{base}/{name}")
        except KubectlError as exc:
            if "(NotFound)" not in str(exc):
                raise
            created = self._request("POST", base, body=obj)
            return f"{_ref(created)} created\n"
        patched = self._request(
            "PATCH", f"{base}/{name}", body=obj, content_type=_PATCH_TYPES["strategic"]
        )
        return f"{_ref(patched)} configured\n"

    def _delete(self, args: Args) -> str:
        if not args.positional:
            raise KubectlError(
                "error: You must provide one or more resources by argument or filename."
            )
        kind = _kind(args.positional[0])
        names = args.positional[1:]
        if not names and "selector" in args.flags:
            listed = self._request(
                "GET", self._path(kind, args), query={"labelSelector": args.flags["selector"]}
            )
            names = [o["metadata"]["name"] for o in listed["items"]]
            if not names:
                return "" if args.has("ignore-not-found") else "No resources found\n"
        lines = []
        for name in names:
            try:
                self._request("DELETE", self._path(kind, args, name))
            except KubectlError as exc:
                if "(NotFound)" in str(exc) and args.has("ignore-not-found"):
                    continue
                raise
            lines.append(f'{kind.kind.lower()}{_group_suffix(kind)} "{name}" deleted\n')
        return "".join(lines)

    def _logs(self, args: Args) -> str:
        if not args.positional:
            raise KubectlError("error: expected 'logs [-f] [-p] (POD | TYPE/NAME) [-c CONTAINER]'.")
        name = args.positional[0].split("/", 1)[-1]
        pod = self._request("GET", self._path(k8s.KINDS[("v1", "pods")], args, name))
        key = (pod["metadata"]["namespace"], pod["metadata"]["name"])
        with self.state.lock:
            return self.api.logs.get(key, "")

    def _wait(self, args: Args) -> str:
        """``kubectl wait --for=jsonpath='{.status.phase}'=Succeeded pod -l ...``: pods here end
        as soon as they are created, so waiting is reading their phase once."""
        condition = args.flags.get("for", "")
        if not args.positional:
            raise KubectlError("error: resource(s) were provided, but no name was specified")
        kind = _kind(args.positional[0].split("/", 1)[0])
        if "selector" in args.flags:
            listed = self._request(
                "GET", self._path(kind, args), query={"labelSelector": args.flags["selector"]}
            )
            objs = listed["items"]
        else:
            objs = [
                self._request("GET", self._path(kind, args, args.positional[0].split("/", 1)[-1]))
            ]
        wanted = condition.rsplit("=", 1)[-1]
        lines = []
        for obj in objs:
            phase = obj.get("status", {}).get("phase", "")
            if phase != wanted:
                raise KubectlError(
                    f"error: timed out waiting for the condition on pods/{obj['metadata']['name']}"
                )
            lines.append(f"pod/{obj['metadata']['name']} condition met\n")
        return "".join(lines)

    # -- plumbing ----------------------------------------------------------------------------

    def _namespace(self, args: Args) -> str:
        return args.flags.get("namespace", "default")

    def _kind_and_name(self, args: Args) -> tuple[k8s.Kind, str]:
        if len(args.positional) == 1 and "/" in args.positional[0]:
            kind_name, _, name = args.positional[0].partition("/")
            return _kind(kind_name), name
        if len(args.positional) != 2:
            raise KubectlError("error: resource(s) were provided, but no name was specified")
        return _kind(args.positional[0]), args.positional[1]

    def _path(self, kind: k8s.Kind, args: Args, name: str | None = None) -> str:
        prefix = "/api/v1" if kind.api_version == "v1" else f"/apis/{kind.api_version}"
        if kind.namespaced and not (args.has("all-namespaces") and name is None):
            prefix += f"/namespaces/{self._namespace(args)}"
        return f"{prefix}/{kind.plural}" + (f"/{name}" if name else "")

    def _file(self, name: str) -> bytes:
        found = self.files.get(name.removeprefix("./"))
        if found is None:
            raise KubectlError(f'error: the path "{name}" does not exist')
        return found

    def _request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Json:
        builder = EnvironBuilder(
            path=f"/k8s/{self.api.key}{path}",
            method=method,
            query_string=query or {},
            headers=[("Authorization", f"Bearer {self.token}"), ("Content-Type", content_type)],
            data=json.dumps(body) if body is not None else None,
        )
        response = k8s.handle(self.state, Request(builder.get_environ()), in_cluster=True)
        answer = json.loads(response.get_data(as_text=True) or "{}")
        if response.status_code == 401:
            raise KubectlError("error: You must be logged in to the server (Unauthorized)")
        if response.status_code >= 400:
            raise KubectlError(
                f"Error from server ({answer.get('reason', 'Unknown')}): {answer.get('message', '')}"
            )
        result: Json = answer
        return result


def _commands(tokens: list[str]) -> list[tuple[list[str], str]]:
    """Simple commands and the connector after each (``;`` at the end)."""
    commands: list[tuple[list[str], str]] = []
    current: list[str] = []
    for token in tokens:
        if token in (";", "&&", "||"):
            commands.append((current, token))
            current = []
        else:
            current.append(token)
    if current:
        commands.append((current, ";"))
    return commands


def _printf(args: list[str]) -> str:
    if not args:
        return ""
    text = args[0].replace("\\n", "\n").replace("\\t", "\t")
    values = iter(args[1:])
    out, i = [], 0
    while i < len(text):
        if text[i] == "%" and i + 1 < len(text):
            spec = text[i + 1]
            out.append("%" if spec == "%" else next(values, ""))
            i += 2
            continue
        out.append(text[i])
        i += 1
    return "".join(out)


def _kind(name: str) -> k8s.Kind:
    kind = _ALIASES.get(name.lower())
    if kind is None:
        raise KubectlError(f'error: the server doesn\'t have a resource type "{name}"')
    return kind


def _plural(obj: Json) -> str:
    for kind in k8s.KINDS.values():
        if kind.kind == obj.get("kind") and kind.api_version == obj.get("apiVersion"):
            return kind.plural
    return ""


def _group_suffix(kind: k8s.Kind) -> str:
    return f".{kind.api_version.split('/')[0]}" if "/" in kind.api_version else ""


def _ref(obj: Json) -> str:
    kind = next(
        (
            k
            for k in k8s.KINDS.values()
            if k.kind == obj.get("kind") and k.api_version == obj.get("apiVersion")
        ),
        None,
    )
    prefix = (
        f"{kind.kind.lower()}{_group_suffix(kind)}" if kind else str(obj.get("kind", "")).lower()
    )
    return f"{prefix}/{obj['metadata']['name']}"


def _documents(raw: bytes) -> list[Json]:
    try:
        docs = [d for d in yaml.safe_load_all(raw) if d]
    except yaml.YAMLError as exc:
        raise KubectlError(f"error: error parsing: {exc}") from exc
    out: list[Json] = []
    for doc in docs:
        if isinstance(doc, dict) and doc.get("kind") == "List":
            out += [d for d in doc.get("items") or [] if isinstance(d, dict)]
        elif isinstance(doc, dict):
            out.append(doc)
    return out
