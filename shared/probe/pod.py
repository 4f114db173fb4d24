"""The probe pod: its image, its spec, its script, and the one Run Command that runs them all.

One pod per node pool, Linux and Windows alike, all created, awaited, read and deleted by one
Run Command (:func:`plan`); each prints one JSON line (marker ``acr-pull-probe/1``) that
:func:`parse` turns into a :class:`~shared.ports.probe.PoolProbe`.

**Linux pools.** Image ``mcr.microsoft.com/azurelinux/busybox`` (about 3 MB, amd64 and arm64 in
one manifest list). It comes from MCR, which every AKS cluster must reach anyway (AKS's required
outbound FQDNs; network-isolated clusters get it from their own cache), so the probe still starts
when the path to the customer's registry is what is broken; busybox has ``nslookup``, ``nc``,
``wget`` (with TLS) and ``awk``, all the script needs. The pod runs as nobody with a read-only
root, all capabilities dropped, and asks for 10m CPU / 16 MiB.

**Windows pools** (amd64: AKS runs Windows on no other architecture) get a HostProcess pod
(shared/probe/windows.py): image ``mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image:v1.0.0``
(a few KB, from MCR), the node's own ``powershell.exe`` running a script that prints the same
report, as ``NT AUTHORITY\\Local service``; it asks for 10m CPU / 64 MiB. A Windows pool on an
arm64 size is reported as not probed, with that reason.

Both run on the node's network (``hostNetwork``, ``dnsPolicy: Default``): the node's DNS servers
and routes, and IMDS as the kubelet reaches it, are what containerd's pull meets; a pod network
(CoreDNS, pod CIDR) would answer other questions. Each pod is pinned to its pool (agentpool, OS
and architecture labels), tolerates every taint (Windows pools usually carry ``os=windows``),
mounts no service account token, ends within ``DEADLINE`` seconds, and the same command deletes
it (and any left by an earlier run) whatever happened.

Cost per cluster: one Run Command (its ``aks-command`` pod, several seconds) whatever the pools,
plus one short pod per pool with nodes; the images are pulled once per node and cached.
"""

from __future__ import annotations

import json
import re
import secrets
from typing import Any

from shared.models import Cluster, NodePool
from shared.ports.kubernetes import vm_size_architecture
from shared.ports.probe import PoolProbe, Reach
from shared.probe import windows

IMAGE = "mcr.microsoft.com/azurelinux/busybox:1.36"
NAMESPACE = "kube-system"
LABEL = "app.kubernetes.io/name"
NAME = "acr-pull-probe"
DEADLINE = 60
MARKER = "acr-pull-probe/1"
POOL_LINE = "=== acr-pull-probe pool "

# Prints one JSON line. Times are milliseconds from /proc/uptime (busybox date has no %N); a
# connect that fails within 4.5 s of its 5 s limit was refused, otherwise it timed out. Tokens
# are never printed: only whether IMDS and the exchange answered.
SCRIPT = r"""# acr-pull-probe/1
ms() { awk '{printf "%d", $1*1000}' /proc/uptime; }
answers() { nslookup "$1" 2>/dev/null | awk '/^Name:/{n=1} n&&/^Address/{printf "%s\"%s\"", s, $NF; s=","}'; }
reach() {
  h="$1"; a=$(answers "$h")
  if [ -z "$a" ]; then printf '{"host":"%s","dns":[],"tcp":"unresolved"}' "$h"; return; fi
  t0=$(ms); if nc -z -w 5 "$h" 443 2>/dev/null; then tcp=ok; else tcp=timeout; fi; t1=$(ms)
  [ "$tcp" = timeout ] && [ $((t1 - t0)) -lt 4500 ] && tcp=refused
  tls=skipped; code=null; t2=$t1; t3=$t1
  if [ "$tcp" = ok ]; then
    t2=$(ms); code=$(wget -S -O /dev/null -T 5 "https://$h/v2/" 2>&1 | awk '/HTTP\/1/{c=$2} END{print c}'); t3=$(ms)
    if [ -n "$code" ]; then tls=ok; else tls=failed; code=null; fi
  fi
  printf '{"host":"%s","dns":[%s],"tcp":"%s","tcpMs":%d,"tls":"%s","tlsMs":%d,"v2":%s}' \
    "$h" "$a" "$tcp" $((t1 - t0)) "$tls" $((t3 - t2)) "$code"
}
imds=skipped; exchange=skipped; xs=null
if [ -n "$PROBE_CLIENT_ID" ]; then
  r=$(wget -q -O - -T 3 --header "Metadata: true" "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/&client_id=$PROBE_CLIENT_ID" 2>&1)
  case "$r" in
    *access_token*) imds=ok ;;
    *"400"*|*"404"*) imds=no-identity ;;
    *) imds=blocked ;;
  esac
  if [ "$imds" = ok ]; then
    tok=$(printf '%s' "$r" | sed 's/.*"access_token":"\([^"]*\)".*/\1/')
    x=$(wget -S -O /dev/null -T 5 --post-data "grant_type=access_token&service=$PROBE_LOGIN_SERVER&access_token=$tok" "https://$PROBE_LOGIN_SERVER/oauth2/exchange" 2>&1 | awk '/HTTP\/1/{c=$2} END{print c}')
    tok=""; xs=${x:-null}; if [ "$x" = 200 ]; then exchange=ok; else exchange=failed; fi
  fi
fi
printf '{"probe":"acr-pull-probe/1","node":"%s","login":%s,"data":%s,"imds":"%s","exchange":"%s","exchangeStatus":%s}\n' \
  "$PROBE_NODE" "$(reach "$PROBE_LOGIN_SERVER")" "$(reach "$PROBE_DATA_ENDPOINT")" "$imds" "$exchange" "$xs"
"""


def pod_name(pool: str, suffix: str) -> str:
    return f"{NAME}-{pool}-{suffix}"[:63]


def manifest(
    pool: NodePool, *, name: str, login_server: str, data_endpoint: str, client_id: str
) -> dict[str, Any]:
    """The probe pod of one node pool (Linux, or Windows amd64: see :func:`unprobed`)."""
    arch = vm_size_architecture(pool.vm_size)
    os_name = pool.os_type.lower()
    env: list[dict[str, Any]] = [
        {"name": "PROBE_LOGIN_SERVER", "value": login_server},
        {"name": "PROBE_DATA_ENDPOINT", "value": data_endpoint},
        {"name": "PROBE_CLIENT_ID", "value": client_id},
        {"name": "PROBE_NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ]
    spec: dict[str, Any] = {
        "restartPolicy": "Never",
        "activeDeadlineSeconds": DEADLINE,
        "terminationGracePeriodSeconds": 0,
        "hostNetwork": True,  # the node's DNS, routes and IMDS: what the kubelet's pull meets
        "dnsPolicy": "Default",
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "nodeSelector": {
            "kubernetes.azure.com/agentpool": pool.name,
            "kubernetes.io/os": os_name,
            "kubernetes.io/arch": arch,
        },
        "tolerations": [{"operator": "Exists"}],  # every taint of the pool
    }
    if os_name == "windows":
        spec.update(windows.pod_spec(env))
    else:
        spec["containers"] = [_linux_container(env)]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {
                LABEL: NAME,
                "app.kubernetes.io/managed-by": "acr-pull-remediator",
                "acr-pull-probe/pool": pool.name,
            },
        },
        "spec": spec,
    }


def _linux_container(env: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "name": "probe",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sh", "-c", SCRIPT],
        "env": env,
        "resources": {
            "requests": {"cpu": "10m", "memory": "16Mi"},
            "limits": {"cpu": "100m", "memory": "32Mi"},
        },
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65534,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def unprobed(pool: NodePool) -> str:
    """Why a pool gets no probe pod ("" when it gets one)."""
    os_name, arch = pool.os_type.lower(), vm_size_architecture(pool.vm_size)
    if pool.count <= 0:
        return "not probed: the pool has no nodes"
    if os_name == "linux":
        return ""
    if os_name == "windows":
        if arch == "amd64":
            return ""
        return (
            f"not probed: Windows on {arch} (AKS runs Windows node pools on amd64 only, and the "
            "HostProcess probe image is windows/amd64)"
        )
    return f"not probed: no probe for {pool.os_type} nodes (Linux and Windows only)"


def probed_pools(cluster: Cluster) -> list[NodePool]:
    return [p for p in cluster.node_pools if not unprobed(p)]


def plan(
    cluster: Cluster, *, login_server: str, data_endpoint: str, client_id: str
) -> tuple[str, dict[str, bytes], dict[str, str]]:
    """The Run Command (command, context files) and the pod name of each probed pool: one
    command for every pool, whatever its OS."""
    suffix = secrets.token_hex(3)
    pools = probed_pools(cluster)
    names = {p.name: pod_name(p.name, suffix) for p in pools}
    pods = [
        manifest(
            pool,
            name=names[pool.name],
            login_server=login_server,
            data_endpoint=data_endpoint,
            client_id=client_id,
        )
        for pool in pools
    ]
    document = {"apiVersion": "v1", "kind": "List", "items": pods}
    selector = f"{LABEL}={NAME}"
    cleanup = (
        f"kubectl delete pods -n {NAMESPACE} -l {selector} --ignore-not-found --wait=false "
        ">/dev/null 2>/dev/null"
    )
    steps = [cleanup, "kubectl apply -f probe-pods.json >/dev/null 2>/dev/null"]
    steps.append(
        f"kubectl wait --for=jsonpath='{{.status.phase}}'=Succeeded pod -n {NAMESPACE} "
        f"-l {selector} --timeout={DEADLINE}s >/dev/null 2>/dev/null"
    )
    for pool, name in names.items():
        steps.append(f"echo '{POOL_LINE}{pool}'")
        steps.append(f"kubectl logs {name} -n {NAMESPACE} 2>/dev/null")
    steps.append(cleanup)  # `;` between steps: the pods go whatever happened before
    files = {"probe-pods.json": json.dumps(document).encode()}
    return "; ".join(steps), files, names


def parse(cluster: Cluster, logs: str) -> list[PoolProbe]:
    """Each pool's JSON line from the command's output; a pool without one did not run."""
    blocks: dict[str, list[str]] = {}
    current = None
    for line in logs.splitlines():
        if line.startswith(POOL_LINE):
            current = line[len(POOL_LINE) :].strip()
            blocks[current] = []
        elif current is not None and line.strip():
            blocks[current].append(line.strip())
    results = []
    for pool in cluster.node_pools:
        os_name = pool.os_type.lower()
        arch = vm_size_architecture(pool.vm_size)
        why = unprobed(pool)
        if why:
            results.append(PoolProbe(pool.name, os_name, arch, error=why))
            continue
        results.append(_pool(pool.name, os_name, arch, blocks.get(pool.name, [])))
    return results


def _report(lines: list[str]) -> dict[str, Any] | None:
    """The last line that is the probe's report (a stray line before it is not one)."""
    for line in reversed(lines):
        try:
            report = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(report, dict) and report.get("probe") == MARKER:
            return report
    return None


def _pool(pool: str, os_name: str, arch: str, lines: list[str]) -> PoolProbe:
    report = _report(lines)
    if report is None:
        return PoolProbe(
            pool,
            os_name,
            arch,
            error="the probe pod printed no report (it did not start or run in time: "
            f"kubectl describe pod -n {NAMESPACE} -l {LABEL}={NAME})",
        )
    return PoolProbe(
        pool=pool,
        os=os_name,
        arch=arch,
        node=str(report.get("node", "")),
        login=_reach(report.get("login")),
        data=_reach(report.get("data")),
        imds=str(report.get("imds", "skipped")),
        exchange=str(report.get("exchange", "skipped")),
        exchange_status=_int(report.get("exchangeStatus")),
    )


def _reach(value: Any) -> Reach | None:
    if not isinstance(value, dict):
        return None
    return Reach(
        host=str(value.get("host", "")),
        answers=tuple(str(a) for a in value.get("dns") or () if _ADDRESS.match(str(a))),
        tcp=str(value.get("tcp", "unresolved")),
        tcp_ms=_int(value.get("tcpMs")),
        tls=str(value.get("tls", "skipped")),
        tls_ms=_int(value.get("tlsMs")),
        http_status=_int(value.get("v2")),
    )


_ADDRESS = re.compile(r"^[0-9a-fA-F:.]+$")


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
