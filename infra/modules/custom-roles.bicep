// Custom roles with exactly the actions the checks and remediations need, instead of Contributor.
// One set per scope subscription, assignable only there: a subscription can later leave
// scopeSubscriptionIds without ARM refusing the change (a role definition shared by several
// subscriptions cannot lose a scope that still has assignments: RoleScopeBeingRemovedContainsAssignments).
// Each role lists exactly what shared/permissions.py places in it (generated: infra/PERMISSIONS.md);
// tests/infra/test_permissions.py compares them, per mode.
targetScope = 'subscription'

@description('Lower-case letters and digits, 3-11 characters: makes the role names unique in the tenant.')
param namePrefix string

var assignableScopes = [
  subscription().id
]
// Role names are unique in the tenant: each subscription's set carries its id.
var roleNameSuffix = '(${subscription().subscriptionId})'

// Reads that Reader (*/read) does not cover, all through credentials: assigned only in enforce
// (dry-run holds no credential-listing action, and reaches no Kubernetes API without one).
resource kubernetesReader 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, namePrefix, 'acr-pull-remediator-reader')
  properties: {
    roleName: '${namePrefix} ACR Pull Remediator Kubernetes reader ${roleNameSuffix}'
    description: 'Reads the ACR Pull Remediator checks need beyond Reader: cluster user kubeconfig, registry admin credentials, and the Kubernetes objects it inspects.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // pull-secret-*, pull-qps-exceeded, registry-throttled, the pull-failure sweep, and the
          // Kubernetes fixes: the user kubeconfig
          'Microsoft.ContainerService/managedClusters/listClusterUserCredential/action'
          // pull-secret-admin-stale, refresh-pull-secret: the registry's admin passwords
          'Microsoft.ContainerRegistry/registries/listCredentials/action'
        ]
        notActions: []
        dataActions: [
          // Entra ID clusters with Azure RBAC for Kubernetes: what the checks list
          'Microsoft.ContainerService/managedClusters/pods/read'
          'Microsoft.ContainerService/managedClusters/events/read'
          'Microsoft.ContainerService/managedClusters/secrets/read'
          'Microsoft.ContainerService/managedClusters/serviceaccounts/read'
          'Microsoft.ContainerService/managedClusters/apps/deployments/read'
          'Microsoft.ContainerService/managedClusters/apps/statefulsets/read'
          'Microsoft.ContainerService/managedClusters/apps/daemonsets/read'
          'Microsoft.ContainerService/managedClusters/batch/jobs/read'
          'Microsoft.ContainerService/managedClusters/batch/cronjobs/read'
        ]
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

// Cluster writes; assigned only when remediationMode is enforce, and only on the clusters listed in
// enforceClusters (cluster-roles.bicep), never on the subscription.
resource clusterOperator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, namePrefix, 'acr-pull-remediator-cluster-operator')
  properties: {
    roleName: '${namePrefix} ACR Pull Remediator cluster operator ${roleNameSuffix}'
    description: 'Reconciles AKS clusters, resets their service principal profile, and fixes pull secrets and workloads; assigned per cluster.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // reconcile-cluster: PUT the current managed cluster (az aks update)
          'Microsoft.ContainerService/managedClusters/write'
          // rotate-sp-secret: hand the cluster its new service principal secret
          'Microsoft.ContainerService/managedClusters/resetServicePrincipalProfile/action'
        ]
        notActions: []
        dataActions: [
          // refresh-pull-secret: rewrite the imagePullSecret
          'Microsoft.ContainerService/managedClusters/secrets/write'
          // set-os-node-selector, set-pull-policy-if-not-present: patch the workload
          'Microsoft.ContainerService/managedClusters/apps/deployments/write'
          'Microsoft.ContainerService/managedClusters/apps/statefulsets/write'
          'Microsoft.ContainerService/managedClusters/apps/daemonsets/write'
        ]
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

// Attaching identities: ARM checks assign/action on every user-assigned identity named in a managed
// cluster PUT (reconcile-cluster). Assigned only on each enforceClusters cluster's node resource
// group, where AKS keeps the kubelet identity: managedClusters/write cannot attach another one.
resource identityAssigner 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, namePrefix, 'acr-pull-remediator-identity-assigner')
  properties: {
    roleName: '${namePrefix} ACR Pull Remediator identity assigner ${roleNameSuffix}'
    description: 'Lets a cluster reconcile name the kubelet identities of its node resource group, and replace-kubelet-identity create one there; assigned per node resource group.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // reconcile-cluster, replace-kubelet-identity: the kubelet identity in the PUT body
          'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action'
          // replace-kubelet-identity: create the new kubelet identity beside the deleted one
          'Microsoft.ManagedIdentity/userAssignedIdentities/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

// Registry and private DNS writes; assigned only when remediationMode is enforce.
resource networkOperator 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, namePrefix, 'acr-pull-remediator-network-operator')
  properties: {
    roleName: '${namePrefix} ACR Pull Remediator network operator ${roleNameSuffix}'
    description: 'Adds cluster egress IPs to registry firewalls, generates ACR token passwords for pull secrets, and links cluster VNets to the registry private DNS zone.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // allow-egress-ip: PATCH the registry's networkRuleSet
          'Microsoft.ContainerRegistry/registries/write'
          // refresh-pull-secret: a new password for a token pull secret (az acr token credential generate)
          'Microsoft.ContainerRegistry/registries/generateCredentials/action'
          // link-private-dns-zone: create the privatelink.azurecr.io virtual network link
          'Microsoft.Network/privateDnsZones/virtualNetworkLinks/write'
          // link-private-dns-zone: linking a zone to a VNet needs join on that VNet
          'Microsoft.Network/virtualNetworks/join/action'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

// Role assignment writes; assigned only when remediationMode is enforce, and always with the ABAC
// condition in scope-roles.bicep that limits them to the AcrPull and Repository Reader roles.
resource pullRoleAssigner 'Microsoft.Authorization/roleDefinitions@2022-04-01' = {
  name: guid(subscription().id, namePrefix, 'acr-pull-remediator-pull-role-assigner')
  properties: {
    roleName: '${namePrefix} ACR Pull Remediator pull role assigner ${roleNameSuffix}'
    description: 'Creates role assignments; assigned only with a condition limiting it to AcrPull and Container Registry Repository Reader.'
    type: 'CustomRole'
    permissions: [
      {
        actions: [
          // attach-acr: assign AcrPull (or Repository Reader) to the kubelet identity or cluster SP
          'Microsoft.Authorization/roleAssignments/write'
        ]
        notActions: []
        dataActions: []
        notDataActions: []
      }
    ]
    assignableScopes: assignableScopes
  }
}

// Role definition names (GUIDs); scope-roles.bicep turns them into ids in each subscription.
output names object = {
  kubernetesReader: kubernetesReader.name
  clusterOperator: clusterOperator.name
  identityAssigner: identityAssigner.name
  networkOperator: networkOperator.name
  pullRoleAssigner: pullRoleAssigner.name
}
