"""Mutation test of the infra checks: every single-edit mistake below must make them fail.

Each mutation is one edit of a copy of infra/ of the kind that reaches review: a wrong API version,
a misspelt property, a wrong literal, a weakened or garbled ABAC condition, widened assignable
scopes, a module deployed at the wrong scope, a role GUID swapped, a setting renamed, ... The test
first proves the unedited infra/ has no problem, then that every mutant has at least one, and
prints how many it tried and caught.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
from infra_rules import all_problems

INFRA = Path(__file__).resolve().parents[2] / "infra"
ABAC_CLAUSE = (
    " AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] "
    "ForAnyOfAnyValues:StringEqualsIgnoreCase {\\'ServicePrincipal\\'}"
)


@dataclass(frozen=True)
class Mutation:
    label: str
    file: str
    old: str
    new: str


MUTATIONS = [
    Mutation(
        "API version of the Function App",
        "modules/app.bicep",
        "'Microsoft.Web/sites@2024-04-01' = {",
        "'Microsoft.Web/sites@2024-04-02' = {",
    ),
    Mutation(
        "API version of the system topic",
        "modules/subscription-topic.bicep",
        "'Microsoft.EventGrid/systemTopics@2022-06-15' = if (",
        "'Microsoft.EventGrid/systemTopics@2022-06-01' = if (",
    ),
    Mutation(
        "API version of a role assignment",
        "modules/scope-roles.bicep",
        "resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01'",
        "resource reader 'Microsoft.Authorization/roleAssignments@2022-04-02'",
    ),
    Mutation(
        "misspelt property (case)",
        "modules/app.bicep",
        "retentionInDays: logRetentionDays",
        "retentionIndays: logRetentionDays",
    ),
    Mutation(
        "misspelt property",
        "modules/app.bicep",
        "allowSharedKeyAccess: false",
        "allowSharedKeysAccess: false",
    ),
    Mutation(
        "misspelt nested property",
        "modules/subscription-topic.bicep",
        "maxDeliveryAttempts: 30",
        "maxDeliveryAttempt: 30",
    ),
    Mutation(
        "misspelt app setting property",
        "modules/app.bicep",
        "keyVaultReferenceIdentity: identity.id",
        "keyvaultReferenceIdentity: identity.id",
    ),
    Mutation("wrong storage kind", "modules/app.bicep", "kind: 'StorageV2'", "kind: 'StorageV3'"),
    Mutation(
        "wrong storage SKU", "modules/app.bicep", "name: 'Standard_ZRS'", "name: 'Standard_ZR'"
    ),
    Mutation(
        "wrong endpoint type",
        "modules/subscription-topic.bicep",
        "endpointType: 'AzureFunction'",
        "endpointType: 'AzureFunctions'",
    ),
    Mutation(
        "wrong delivery schema",
        "modules/registry-events.bicep",
        "eventDeliverySchema: 'EventGridSchema'",
        "eventDeliverySchema: 'EventGrid'",
    ),
    Mutation(
        "wrong identity type",
        "modules/app.bicep",
        "    type: 'UserAssigned'\n",
        "    type: 'UserAsigned'\n",
    ),
    Mutation(
        "read-only property set",
        "modules/identity.bicep",
        "  location: location\n",
        "  location: location\n  id: 'x'\n",
    ),
    Mutation(
        "required property dropped",
        "modules/scope-roles.bicep",
        "    principalId: principalId\n    principalType: 'ServicePrincipal'\n    description: 'ACR Pull Remediator: every check reads the estate'",
        "    principalType: 'ServicePrincipal'\n    description: 'ACR Pull Remediator: every check reads the estate'",
    ),
    Mutation(
        "ABAC operator negated",
        "modules/scope-roles.bicep",
        "ForAnyOfAnyValues:GuidEquals",
        "ForAnyOfAnyValues:GuidNotEquals",
    ),
    Mutation(
        "ABAC negation dropped",
        "modules/scope-roles.bicep",
        "'((!(ActionMatches",
        "'(((ActionMatches",
    ),
    Mutation("ABAC principal clause dropped", "modules/scope-roles.bicep", ABAC_CLAUSE, ""),
    Mutation(
        "ABAC AND turned into OR", "modules/scope-roles.bicep", "} AND @Request[", "} OR @Request["
    ),
    Mutation(
        "ABAC garbled",
        "modules/scope-roles.bicep",
        "GuidEquals {${acrPullRoleId}",
        "GuidEquals (${acrPullRoleId}",
    ),
    Mutation(
        "ABAC principal type widened",
        "modules/scope-roles.bicep",
        "{\\'ServicePrincipal\\'}))",
        "{\\'ServicePrincipal\\', \\'User\\'}))",
    ),
    Mutation(
        "ABAC third role",
        "modules/scope-roles.bicep",
        "${repositoryReaderRoleId}}",
        "${repositoryReaderRoleId}, 8e3af657-a8ff-443c-a75c-2fe8c4bcb635}",
    ),
    Mutation(
        "assignable scopes widened to the root",
        "modules/custom-roles.bicep",
        "var assignableScopes = [\n",
        "var assignableScopes = [\n  '/'\n",
    ),
    Mutation(
        "app module at the wrong scope",
        "main.bicep",
        "module app 'modules/app.bicep' = {\n  name: '${prefix}-app'\n  scope: group",
        "module app 'modules/app.bicep' = {\n  name: '${prefix}-app'\n  scope: subscription()",
    ),
    Mutation(
        "scope roles only in the deployment subscription",
        "main.bicep",
        "  name: '${prefix}-roles-${uniqueString(subscriptionId)}'\n  scope: subscription(subscriptionId)\n",
        "  name: '${prefix}-roles-${uniqueString(subscriptionId)}'\n",
    ),
    Mutation(
        "Reader GUID swapped",
        "modules/scope-roles.bicep",
        "  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'",
        "  reader: 'b93aa761-3e63-49ed-ac28-beffa264f7ac'",
    ),
    Mutation(
        "table role GUID swapped",
        "modules/app.bicep",
        "storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'",
        "storageTableDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'",
    ),
    Mutation(
        "setting renamed",
        "modules/app.bicep",
        "name: 'SWEEP_BUDGET_SECONDS'",
        "name: 'SWEEP_BUDGET_SECOND'",
    ),
    Mutation(
        "handled operation dropped from the filter",
        "modules/subscription-topic.bicep",
        "  'Microsoft.Compute/virtualMachineScaleSets/write'\n",
        "",
    ),
    Mutation(
        "write role without if (enforce)",
        "modules/scope-roles.bicep",
        "resource networkOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enforce) {",
        "resource networkOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {",
    ),
    Mutation(
        "undeclared custom action",
        "modules/custom-roles.bicep",
        "          'Microsoft.ContainerService/managedClusters/write'\n",
        "          'Microsoft.ContainerService/managedClusters/write'\n          'Microsoft.ContainerService/managedClusters/delete'\n",
    ),
    Mutation(
        "principal type of a grant",
        "modules/scope-roles.bicep",
        "    principalType: 'ServicePrincipal'\n    description: 'ACR Pull Remediator: every check reads the estate'",
        "    principalType: 'User'\n    description: 'ACR Pull Remediator: every check reads the estate'",
    ),
    Mutation(
        "event time to live",
        "modules/subscription-topic.bicep",
        "eventTimeToLiveInMinutes: 1440",
        "eventTimeToLiveInMinutes: 720",
    ),
    Mutation(
        "module parameter renamed",
        "main.bicep",
        "    deadLetterContainerName: app.outputs.deadLetterContainerName\n  }\n}]\n\nmodule registryEvents",
        "    deadLetterContainer: app.outputs.deadLetterContainerName\n  }\n}]\n\nmodule registryEvents",
    ),
    Mutation("required module parameter dropped", "main.bicep", "    tenantId: tenantId\n", ""),
    Mutation(
        "Graph app role swapped for Directory.ReadWrite.All",
        "modules/graph-app-roles.bicep",
        "var applicationReadAll = '9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30'",
        "var applicationReadAll = '19dbc75e-c2e2-444c-a770-ec69d8559fc7'",
    ),
    Mutation(
        "Graph write role in dry-run",
        "modules/graph-app-roles.bicep",
        "= if (grantRotation) {",
        "= {",
    ),
    Mutation(
        "Graph property misspelt",
        "modules/graph-app-roles.bicep",
        "  resourceId: graph.id\n}\n\n//",
        "  resourceid: graph.id\n}\n\n//",
    ),
    Mutation(
        "Key Vault create mode literal",
        "modules/app.bicep",
        "recoverKeyVault ? 'recover' : 'default'",
        "recoverKeyVault ? 'recover' : 'new'",
    ),
    Mutation(
        "Kubernetes reader (credential listing) in dry-run",
        "modules/scope-roles.bicep",
        "resource kubernetesReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enforce) {",
        "resource kubernetesReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {",
    ),
    Mutation(
        "cluster operator module at the subscription",
        "modules/scope-roles.bicep",
        "  scope: resourceGroup(cluster.resourceGroup)\n",
        "",
    ),
    Mutation(
        "identity assigner in the cluster's group, not the node group",
        "modules/scope-roles.bicep",
        "scope: resourceGroup(cluster.nodeResourceGroup)",
        "scope: resourceGroup(cluster.resourceGroup)",
    ),
    Mutation(
        "cluster operator scoped back to the cluster's resource group",
        "modules/cluster-roles.bicep",
        "  scope: cluster\n",
        "",
    ),
    Mutation(
        "API version of the existing cluster",
        "modules/cluster-roles.bicep",
        "'Microsoft.ContainerService/managedClusters@2024-10-01' existing",
        "'Microsoft.ContainerService/managedClusters@2024-10-02' existing",
    ),
    Mutation(
        "existing cluster declares a property",
        "modules/cluster-roles.bicep",
        "existing = {\n  name: clusterName\n",
        "existing = {\n  name: clusterName\n  location: 'westeurope'\n",
    ),
    Mutation(
        "cluster operator assignment named from the resource group",
        "modules/cluster-roles.bicep",
        "name: guid(cluster.id, principalId, clusterOperatorRole)",
        "name: guid(resourceGroup().id, principalId, clusterOperatorRole)",
    ),
    Mutation(
        "cluster name not passed to the cluster roles",
        "modules/scope-roles.bicep",
        "    clusterName: cluster.name\n",
        "    clusterName: cluster.resourceGroup\n",
    ),
    Mutation(
        "identity group roles in the cluster's group",
        "modules/scope-roles.bicep",
        "scope: resourceGroup(cluster.identityResourceGroup)",
        "scope: resourceGroup(cluster.resourceGroup)",
    ),
    Mutation(
        "identity group roles in dry-run",
        "modules/scope-roles.bicep",
        "contains(c, 'identityResourceGroup')): if (enforce) {",
        "contains(c, 'identityResourceGroup')): {",
    ),
    Mutation(
        "assign/action back in the cluster operator",
        "modules/custom-roles.bicep",
        "          'Microsoft.ContainerService/managedClusters/write'\n",
        "          'Microsoft.ContainerService/managedClusters/write'\n          'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action'\n",
    ),
    Mutation(
        "cluster roles in dry-run",
        "modules/scope-roles.bicep",
        "module nodeGroupRoles 'node-group-roles.bicep' = [for cluster in clusters: if (enforce) {",
        "module nodeGroupRoles 'node-group-roles.bicep' = [for cluster in clusters: {",
    ),
    Mutation(
        "registry credentials moved to a dry-run role",
        "modules/custom-roles.bicep",
        "          'Microsoft.ContainerRegistry/registries/listCredentials/action'\n",
        "",
    ),
    Mutation(
        "alert calls with the host key",
        "modules/pull-failure-alert.bicep",
        "listKeys(resourceId('Microsoft.Web/sites/functions', functionAppName, 'alert_webhook'), '2024-04-01').default",
        "listKeys(resourceId('Microsoft.Web/sites/host', functionAppName, 'default'), '2024-04-01').functionKeys.default",
    ),
    Mutation(
        "empty scope subscription list allowed",
        "main.bicep",
        "@minLength(1)\nparam scopeSubscriptionIds array",
        "param scopeSubscriptionIds array",
    ),
    Mutation(
        "remediation mode unchecked",
        "main.bicep",
        "@allowed([\n  'dry-run'\n  'enforce'\n])\nparam remediationMode string",
        "param remediationMode string",
    ),
    Mutation(
        "alert before the functions exist",
        "main.bicep",
        "enablePullFailureAlert && subscribeEvents && !empty(alertWorkspaceIds)",
        "enablePullFailureAlert",
    ),
]


def test_the_real_infra_has_no_problem() -> None:
    problems = all_problems(INFRA)
    assert not problems, "\n".join(problems)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, list[str]]:
    caught: dict[str, list[str]] = {}
    for number, mutation in enumerate(MUTATIONS):
        root = tmp_path_factory.mktemp(f"mutant{number}") / "infra"
        shutil.copytree(INFRA, root)
        path = root / mutation.file
        text = path.read_text()
        assert mutation.old in text, (
            f"{mutation.label}: {mutation.file} no longer has {mutation.old!r}"
        )
        path.write_text(text.replace(mutation.old, mutation.new, 1))
        caught[mutation.label] = all_problems(root)
    tried, found = len(caught), sum(1 for problems in caught.values() if problems)
    print(f"\ninfra mutations: {tried} tried, {found} caught")
    return caught


@pytest.mark.parametrize("mutation", MUTATIONS, ids=lambda m: m.label)
def test_every_mutation_is_caught(mutation: Mutation, results: dict[str, list[str]]) -> None:
    assert results[mutation.label], f"{mutation.label}: no infra check noticed the edit"


def test_mutation_count(results: dict[str, list[str]]) -> None:
    assert len(results) == len(MUTATIONS) >= 26
