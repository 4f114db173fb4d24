"""The node pull probe through AKS Run Command: one command creates a pod per node pool (Linux
and Windows), waits for them, prints their reports and deletes them (shared/probe/pod.py)."""

from __future__ import annotations

from shared.azure.cache import RunCache, cached
from shared.azure.factory import ClientFactory
from shared.models import Cluster
from shared.ports.probe import PoolProbe


class PullProbeRunner:
    factory: ClientFactory
    cache: RunCache

    @cached
    def probe_pull(
        self, cluster: Cluster, *, login_server: str, data_endpoint: str, client_id: str
    ) -> list[PoolProbe]:
        from shared.azure.run_command import RunCommandClient
        from shared.probe import pod

        if not pod.probed_pools(cluster):
            return pod.parse(cluster, "")
        command, files, _ = pod.plan(
            cluster, login_server=login_server, data_endpoint=data_endpoint, client_id=client_id
        )
        # The pods' deadline plus the command pod's own start: the probe waits no longer.
        timeout = self.factory.settings.operation_timeout + pod.DEADLINE
        output = RunCommandClient(self.factory, timeout=timeout).run(cluster, command, files=files)
        return pod.parse(cluster, output.logs)
