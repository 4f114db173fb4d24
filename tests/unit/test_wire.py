"""Estate values through a queue message: what is written is read back, anything else refused."""

from __future__ import annotations

import base64
import zlib

import pytest

from shared.models import Cluster, KubeletIdentity, NodePool, ScaleSet
from shared.ports.rbac import RoleAssignment
from shared.signals import BadSignal
from shared.wire import MAX_INFLATED, dump, load, pack, unpack

CLUSTER = Cluster(
    id="/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/a",
    name="a",
    location="westeurope",
    node_resource_group="MC_rg_a_westeurope",
    node_pools=(NodePool("system", "Standard_D4s_v5", "Linux", "System", 3),),
    kubelet_identity=KubeletIdentity("/id/a-agentpool", "client", "object"),
    service_principal_client_id=None,
    provisioning_state="Succeeded",
    tags={"env": "prod"},
    control_plane_identity_type="SystemAssigned",
)


def test_values_round_trip() -> None:
    assert load(Cluster, dump(CLUSTER)) == CLUSTER
    scale_set = ScaleSet("/vmss/a", "aks-system-1", "system", ("/id/a-agentpool",))
    assert load(ScaleSet, dump(scale_set)) == scale_set
    assignment = RoleAssignment("/ra/1", "1", "/sub", "/roleDefinitions/x", "p", "ServicePrincipal")
    assert unpack(tuple[RoleAssignment, ...], pack((assignment,) * 50)) == (assignment,) * 50


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},  # an unknown field
        {"name": 7},  # the wrong type
        {"name": "a\nb"},  # not a plain string
        {"node_pools": [["system"]]},  # a pool that is not one
        {"kubelet_identity": {"resource_id": "/id"}},  # a field missing
        {"tags": {"env": 1}},
    ],
)
def test_anything_else_is_refused(change: dict[str, object]) -> None:
    with pytest.raises(BadSignal):
        load(Cluster, {**dump(CLUSTER), **change})


def test_a_packed_value_may_not_inflate_without_bound() -> None:
    bomb = base64.b64encode(zlib.compress(b"[" + b"0," * MAX_INFLATED + b"0]")).decode()
    with pytest.raises(BadSignal, match="inflates"):
        unpack(tuple[int, ...], bomb)
    with pytest.raises(BadSignal):
        unpack(Cluster, "not base64!")
