// What the app's identity may do in ONE scope subscription (main.bicep deploys this once per
// SCOPE_SUBSCRIPTION_IDS entry). Reads in every mode; writes only when remediationMode is enforce.
// For a management group instead of a subscription list, see infra/README.md.
targetScope = 'subscription'

@description('Principal id of the app\'s user-assigned identity.')
param principalId string

@description('Lower-case letters and digits, 3-11 characters: names the custom roles.')
param namePrefix string

@description('True when remediationMode is enforce: only then does the app get write roles.')
param enforce bool

@description('Clusters of this subscription the app may change in enforce mode: [{"name": "<cluster>", "resourceGroup": "<cluster\'s group>", "nodeResourceGroup": "<its node resource group>", "identityResourceGroup": "<optional: group of its control-plane or kubelet identity outside the node resource group>"}].')
param clusters array = []

@description('True when the Kubernetes transport may use AKS Run Command (and the probe may run): only then does the app get runCommand/action. main.bicep passes enableRunCommand in enforce mode.')
param enableRunCommand bool = false

// This subscription's own custom roles (custom-roles.bicep): kubernetesReader, clusterOperator,
// identityAssigner, networkOperator, pullRoleAssigner, commandRunner.
module definitions 'custom-roles.bicep' = {
  name: 'acr-pull-remediator-custom-roles'
  params: {
    namePrefix: namePrefix
  }
}

var customRoles = definitions.outputs.names

var builtInRoles = {
  // Built-in role definition ids (the same in every tenant).
  reader: 'acdd72a7-3385-48ef-bd42-f606fba81ae7'
  repositoryReader: 'b93aa761-3e63-49ed-ac28-beffa264f7ac'
}

// The only roles attach-acr may hand out (shared.ports.rbac ACR_PULL_ROLE_ID, REPOSITORY_READER_ROLE_ID).
var acrPullRoleId = '7f951dda-4ed3-4680-a7ca-43fe172d538d'
var repositoryReaderRoleId = 'b93aa761-3e63-49ed-ac28-beffa264f7ac'

// Azure ABAC (conditionVersion 2.0), "Constrain roles": creating an assignment is allowed only for
// those two role definitions and for service principals (kubelet identities, cluster SPs).
// The app never deletes role assignments (sp-mismatch leaves the old SP's for a person).
var pullRolesOnlyCondition = '((!(ActionMatches{\'Microsoft.Authorization/roleAssignments/write\'})) OR (@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {${acrPullRoleId}, ${repositoryReaderRoleId}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {\'ServicePrincipal\'}))'

// Reader: every check's ARM reads (clusters, scale sets, identities, registries incl. pull/read,
// role assignments and definitions, VNets, peerings, private endpoints, DNS zones, route tables,
// load balancers, NAT gateways, public IPs, and the registries' Azure Monitor pull metrics that
// registry-throttled reads, Microsoft.Insights/metrics/read): */read. No other role is needed.
resource reader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, builtInRoles.reader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.reader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'ACR Pull Remediator: every check reads the estate'
  }
}

// Container Registry Repository Reader: image-not-found, arch-mismatch, os-mismatch read tags and
// manifests of registries in ABAC repository-permissions mode, where Reader's pull/read does not count.
resource repositoryReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(subscription().id, principalId, builtInRoles.repositoryReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', builtInRoles.repositoryReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'ACR Pull Remediator: image checks read manifests on ABAC-mode registries'
  }
}

// Kubernetes reader: the user kubeconfig, Kubernetes reads and registry admin credentials for
// pull-secret-*, pull-qps-exceeded, registry-throttled and the pull-failure sweep. Credentials:
// enforce only (in dry-run those checks are UNKNOWN, saying why).
resource kubernetesReader 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enforce) {
  name: guid(subscription().id, principalId, customRoles.kubernetesReader)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', customRoles.kubernetesReader)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'ACR Pull Remediator: kubeconfig, Kubernetes reads, registry credentials'
  }
}

// Cluster operator, on each listed cluster only (the module runs in its resource group and scopes the
// assignment to the cluster: not the group's other clusters, not the subscription).
module clusterRoles 'cluster-roles.bicep' = [for cluster in clusters: if (enforce) {
  name: 'acr-pull-remediator-cluster-${uniqueString(cluster.resourceGroup, cluster.name)}'
  scope: resourceGroup(cluster.resourceGroup)
  params: {
    principalId: principalId
    clusterOperatorRole: customRoles.clusterOperator
    clusterName: cluster.name
  }
}]

// Identity assigner, in each listed cluster's node resource group only (its kubelet identity).
module nodeGroupRoles 'node-group-roles.bicep' = [for cluster in clusters: if (enforce) {
  name: 'acr-pull-remediator-nodes-${uniqueString(cluster.nodeResourceGroup)}'
  scope: resourceGroup(cluster.nodeResourceGroup)
  params: {
    principalId: principalId
    identityAssignerRole: customRoles.identityAssigner
  }
}]

// Identity assigner also in the group an entry names as identityResourceGroup: a cluster whose own
// (control plane) or kubelet identity is a user-assigned identity outside its node resource group
// names it in the managed cluster PUT too, and ARM checks assign/action there.
module identityGroupRoles 'node-group-roles.bicep' = [for cluster in filter(clusters, c => contains(c, 'identityResourceGroup')): if (enforce) {
  name: 'acr-pull-remediator-identities-${uniqueString(cluster.resourceGroup, cluster.name)}'
  scope: resourceGroup(cluster.identityResourceGroup)
  params: {
    principalId: principalId
    identityAssignerRole: customRoles.identityAssigner
  }
}]

// Command runner: the Kubernetes transport's Run Command (private clusters, authorized IP ranges)
// and the node pull probe. Only with enableRunCommand: kubectl in the command pod runs as cluster
// admin on clusters with local accounts, so this is more than the Kubernetes reader above.
resource commandRunner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enforce && enableRunCommand) {
  name: guid(subscription().id, principalId, customRoles.commandRunner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', customRoles.commandRunner)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'ACR Pull Remediator: Kubernetes reads of private clusters and the node pull probe through AKS Run Command'
  }
}

// Network operator: allow-egress-ip (registry network rules), link-private-dns-zone.
resource networkOperator 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enforce) {
  name: guid(subscription().id, principalId, customRoles.networkOperator)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', customRoles.networkOperator)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'ACR Pull Remediator: registry firewall and private DNS remediations'
  }
}

// Pull role assigner: attach-acr, limited by the ABAC condition to AcrPull / Repository Reader.
resource pullRoleAssigner 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (enforce) {
  name: guid(subscription().id, principalId, customRoles.pullRoleAssigner)
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', customRoles.pullRoleAssigner)
    principalId: principalId
    principalType: 'ServicePrincipal'
    description: 'ACR Pull Remediator: attach-acr, AcrPull and Repository Reader only'
    condition: pullRolesOnlyCondition
    conditionVersion: '2.0'
  }
}
