"""Every Kubernetes read of one diagnosis of a cluster, in one Run Command printing one document.

A Run Command costs a pod and seconds, so the reads the direct transport makes one by one
(:class:`shared.azure.kubernetes.KubernetesReader`) go in one command: a ``kubectl get -o json``
per section, framed by ``printf`` into one JSON object. A section kubectl cannot read (RBAC,
say) prints a ``Status`` instead, so the other sections still serve their checks, as a 403 on
one list does not stop the others on the direct path. Items are parsed with the same lightkube
models the direct transport gets, so the same mapping code fills the same port types.

Only pull secrets are read (``--field-selector type=...``), never every secret of the cluster:
the command's logs are kept by AKS for a while and readable with ``commandResults/read``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from shared.errors import Forbidden, Unreachable
from shared.models import Cluster

DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
DOCKER_CFG = "kubernetes.io/dockercfg"
FAILED = '{"kind":"Status","status":"Failure"}'


@dataclass(frozen=True)
class Section:
    key: str
    plural: str
    namespaced: bool = True
    fields: tuple[tuple[str, str], ...] = ()

    @property
    def kubectl(self) -> str:
        where = " -A" if self.namespaced else ""
        selector = ",".join(f"{k}={v}" for k, v in self.fields)
        selected = f" --field-selector {selector}" if selector else ""
        return f"kubectl get {self.plural}{where}{selected} -o json"


SECTIONS = (
    Section("nodes", "nodes", namespaced=False),
    Section("pods", "pods"),
    Section("pullSecrets", "secrets", fields=(("type", DOCKER_CONFIG_JSON),)),
    Section("legacyPullSecrets", "secrets", fields=(("type", DOCKER_CFG),)),
    Section("serviceAccounts", "serviceaccounts"),
    Section("deployments", "deployments"),
    Section("statefulSets", "statefulsets"),
    Section("daemonSets", "daemonsets"),
    Section("jobs", "jobs"),
    Section("cronJobs", "cronjobs"),
    Section(
        "podFailedEvents", "events", fields=(("involvedObject.kind", "Pod"), ("reason", "Failed"))
    ),
)


def _section_key(
    plural: str, fields: dict[str, str] | None
) -> tuple[str, tuple[tuple[str, str], ...]]:
    return plural, tuple(sorted((fields or {}).items()))


_BY_READ = {_section_key(s.plural, dict(s.fields)): s for s in SECTIONS}


def command() -> str:
    """One shell command printing ``{"nodes": <List>, "pods": <List>, ...}``."""
    parts = []
    for n, section in enumerate(SECTIONS):
        lead = "{" if n == 0 else ","
        parts.append(f"printf '{lead}\"{section.key}\":'")
        parts.append(f"{section.kubectl} 2>/dev/null || printf '{FAILED}'")
    parts.append("printf '}\\n'")
    return "; ".join(parts)


class Snapshot:
    """The parsed document: lightkube objects per section, or why a section failed."""

    def __init__(self, cluster: Cluster, logs: str) -> None:
        self.cluster = cluster
        try:
            document = json.loads(logs)
        except json.JSONDecodeError:
            document = None
        if not isinstance(document, dict):
            raise Unreachable(
                f"the Run Command on {cluster.name} did not print the JSON document expected "
                "(is kubectl in the command pod?)",
                resource_id=cluster.id,
            )
        self._document: dict[str, Any] = document

    def objects(self, plural: str, fields: dict[str, str] | None = None) -> list[Any]:
        section = _BY_READ.get(_section_key(plural, fields))
        if section is None:
            raise AssertionError(f"no snapshot section reads {plural} with {fields}")
        listed = self._document.get(section.key)
        if not isinstance(listed, dict) or listed.get("kind") != "List":
            raise Forbidden(
                f"kubectl in the Run Command pod of {self.cluster.name} could not list "
                f"{plural} (the app's identity may lack the Kubernetes RBAC to read them)",
                resource_id=self.cluster.id,
            )
        resource = _resource(plural)
        return [resource.from_dict(item) for item in listed.get("items") or []]


def _resource(plural: str) -> Any:
    from lightkube.resources import apps_v1, batch_v1, core_v1

    return {
        "nodes": core_v1.Node,
        "pods": core_v1.Pod,
        "secrets": core_v1.Secret,
        "serviceaccounts": core_v1.ServiceAccount,
        "deployments": apps_v1.Deployment,
        "statefulsets": apps_v1.StatefulSet,
        "daemonsets": apps_v1.DaemonSet,
        "jobs": batch_v1.Job,
        "cronjobs": batch_v1.CronJob,
        "events": core_v1.Event,
    }[plural]
