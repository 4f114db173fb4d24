// The cluster operator role on ONE cluster the app may change (enforceClusters): scope-roles.bicep
// deploys this module into the cluster's resource group, and the assignment is scoped to the cluster
// resource itself, so other clusters in that group stay out of reach.

@description('Principal id of the app\'s user-assigned identity.')
param principalId string

@description('Name (GUID) of this subscription\'s cluster operator role (custom-roles.bicep).')
param clusterOperatorRole string

@description('Name of the managed cluster, in this resource group, the app may change.')
param clusterName string

resource cluster 'Microsoft.ContainerService/managedClusters@2024-10-01' existing = {
  name: clusterName
}

// Cluster operator: reconcile-cluster, rotate-sp-secret, refresh-pull-secret, set-os-node-selector,
// set-pull-policy-if-not-present, on this cluster only. The name derives from the cluster's id:
// role assignment names are unique, and two clusters of one group need two.
resource clusterOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(cluster.id, principalId, clusterOperatorRole)
  scope: cluster
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', clusterOperatorRole)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'ACR Pull Remediator: cluster remediations on this cluster'
  }
}
