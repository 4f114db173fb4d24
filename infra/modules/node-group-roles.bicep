// The identity assigner role on ONE cluster's node resource group, where AKS keeps its kubelet
// identity: a reconcile names that identity in its PUT, and ARM checks assign/action on it. Deployed
// by scope-roles.bicep; the app can attach no identity from anywhere else.

@description('Principal id of the app\'s user-assigned identity.')
param principalId string

@description('Name (GUID) of this subscription\'s identity assigner role (custom-roles.bicep).')
param identityAssignerRole string

// Identity assigner: reconcile-cluster (the kubelet identity in the managed cluster PUT).
resource identityAssigner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(resourceGroup().id, principalId, identityAssignerRole)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', identityAssignerRole)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'ACR Pull Remediator: reconcile-cluster names the kubelet identity'
  }
}
