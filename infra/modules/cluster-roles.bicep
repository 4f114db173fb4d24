// The cluster operator role for the clusters the app may change (enforceClusters), in ONE cluster's
// resource group (scope-roles.bicep deploys it there): cluster writes reach no other resource group.
// Narrower, on the cluster resource itself, needs `existing` Microsoft.ContainerService types that
// tests/infra/bicep-types does not hold yet (infra/PERMISSIONS.md).

@description('Principal id of the app\'s user-assigned identity.')
param principalId string

@description('Name (GUID) of this subscription\'s cluster operator role (custom-roles.bicep).')
param clusterOperatorRole string

// Cluster operator: reconcile-cluster, rotate-sp-secret, refresh-pull-secret, set-os-node-selector,
// set-pull-policy-if-not-present, on the clusters of this resource group only.
resource clusterOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, clusterOperatorRole)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', clusterOperatorRole)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'ACR Pull Remediator: cluster remediations in this resource group'
  }
}
