// ACR Pull Remediator: everything it needs in Azure, least privilege.
//   azd up     (azure.yaml: provision, publish, then subscribe the events once the functions are
//              indexed by scripts/azd_hooks.py; README "Deploy" has what it asks)
targetScope = 'subscription'

@description('Azure region for the app\'s resource group and resources.')
param location string = deployment().location

@description('Lower-case letters and digits, 3-11 characters: the start of every resource name.')
@minLength(3)
@maxLength(11)
param namePrefix string = 'acrpull'

@description('Resource group for the app (created if missing).')
param resourceGroupName string = '${namePrefix}-rg'

@description('Subscriptions the app may read and act on: Reader, custom roles and ARM events in each (SCOPE_SUBSCRIPTION_IDS).')
@minLength(1)
param scopeSubscriptionIds array = [
  subscription().subscriptionId
]

@description('Only events from this tenant are handled (AZURE_TENANT_ID).')
param tenantId string = tenant().tenantId

@description('dry-run plans and reports; enforce also changes Azure and gets the write roles (REMEDIATION_MODE).')
@allowed([
  'dry-run'
  'enforce'
])
param remediationMode string = 'dry-run'

@description('Policy file inside the deployed package (POLICY_PATH), e.g. policies/example.yaml; empty = built-in safe defaults.')
param policyPath string = ''

@description('Create the Event Grid system topics and subscriptions; needs the functions published first.')
param subscribeEvents bool = false

@description('Resource group created in each scope subscription for its ARM events system topic.')
param eventsResourceGroupName string = '${namePrefix}-events-rg'

@description('Container registries whose image pushes/deletes go to the registry_events function.')
param registryIds array = []

@description('Ticket credentials already stored in the Key Vault (secrets github-token, azure-devops-pat, ticket-webhook-url).')
@allowed([
  'GITHUB_TOKEN'
  'AZURE_DEVOPS_PAT'
  'TICKET_WEBHOOK_URL'
])
param ticketSecrets array = []

@description('Reach private clusters and clusters behind authorized IP ranges through AKS Run Command, and allow the policy\'s node pull probe: grants runCommand/action and commandResults/read in every scope subscription in enforce mode, as the kubeconfig is (KUBERNETES_TRANSPORT auto; otherwise direct only). Run Command runs kubectl as cluster admin on clusters with local accounts: see the README "Private clusters".')
param enableRunCommand bool = false

@description('Publish outcomes as CloudEvents to an Event Grid custom topic (OUTCOME_TOPIC_ENDPOINT).')
param enableOutcomeTopic bool = false

@description('Alert on KubeEvents "Failed to pull image" and call the alert_webhook function; deployed with subscribeEvents (the functions published) and at least one alertWorkspaceIds entry.')
param enablePullFailureAlert bool = false

@description('Log Analytics workspaces the clusters\' Container Insights writes to (for the pull-failure alert).')
param alertWorkspaceIds array = []

@description('E-mail addresses told when a remediation fails, Event Grid dead-letters events or a subscription in scope cannot be read (the operations alerts); none: the alerts show in Azure Monitor only.')
param alertEmails array = []

@description('Event Grid allows one system topic per source: for a scope subscription that already has one, its {"<subscription id>": {"resourceGroup": "...", "name": "..."}} (the app subscribes to it instead of creating one).')
param existingArmTopics object = {}

@description('Clusters the app may change in enforce mode, by subscription: {"<subscription id>": [{"name": "<cluster>", "resourceGroup": "<cluster\'s group>", "nodeResourceGroup": "<its node resource group>", "identityResourceGroup": "<optional: the group of its control-plane or kubelet identity when outside the node resource group>"}]}. The cluster operator is assigned on each cluster, the identity assigner on its node (and identity) resource group. Cluster remediations elsewhere are refused by Azure and become tickets.')
param enforceClusters object = {}

@description('Grant the identity its Microsoft Graph app roles in this deployment (Microsoft Graph Bicep extension); false for deployers without the right to grant app roles (the azd hook then prints the commands).')
param grantGraphPermissions bool = true

@description('Changes the Key Vault name; use a new value to deploy over a purge-protected vault deleted less than 90 days ago.')
param keyVaultNameSalt string = ''

@description('Recover the soft-deleted Key Vault of an earlier deployment of the same name.')
param recoverKeyVault bool = false

@description('Tags for every resource.')
param tags object = {
  application: 'acr-pull-remediator'
}

// Storage account and Key Vault names allow only lower-case letters and digits from the prefix.
var prefix = toLower(replace(namePrefix, '-', ''))

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: resourceGroupName
  location: location
  tags: tags
}

module identity 'modules/identity.bicep' = {
  name: '${prefix}-identity'
  scope: group
  params: {
    location: location
    namePrefix: prefix
    tags: tags
  }
}

module outcomeTopic 'modules/outcome-topic.bicep' = if (enableOutcomeTopic) {
  name: '${prefix}-outcome-topic'
  scope: group
  params: {
    location: location
    namePrefix: prefix
    tags: tags
    principalId: identity.outputs.principalId
  }
}

module app 'modules/app.bicep' = {
  name: '${prefix}-app'
  scope: group
  params: {
    location: location
    namePrefix: prefix
    tags: tags
    identityName: identity.outputs.name
    scopeSubscriptionIds: scopeSubscriptionIds
    tenantId: tenantId
    remediationMode: remediationMode
    policyPath: policyPath
    ticketSecrets: ticketSecrets
    outcomeTopicEndpoint: enableOutcomeTopic ? outcomeTopic.outputs.endpoint : ''
    keyVaultNameSalt: keyVaultNameSalt
    recoverKeyVault: recoverKeyVault
    enableRunCommand: enableRunCommand && remediationMode == 'enforce'
  }
}

module graphRoles 'modules/graph-app-roles.bicep' = if (grantGraphPermissions) {
  name: '${prefix}-graph-app-roles'
  scope: group
  params: {
    principalId: identity.outputs.principalId
    grantRotation: remediationMode == 'enforce'
  }
}

module scopeRoles 'modules/scope-roles.bicep' = [for subscriptionId in scopeSubscriptionIds: {
  name: '${prefix}-roles-${uniqueString(subscriptionId)}'
  scope: subscription(subscriptionId)
  params: {
    principalId: identity.outputs.principalId
    namePrefix: prefix
    enforce: remediationMode == 'enforce'
    enableRunCommand: enableRunCommand && remediationMode == 'enforce'
    clusters: contains(enforceClusters, subscriptionId) ? enforceClusters[subscriptionId] : []
  }
}]

module armEvents 'modules/subscription-events.bicep' = [for subscriptionId in scopeSubscriptionIds: if (subscribeEvents) {
  name: '${prefix}-arm-events-${uniqueString(subscriptionId)}'
  scope: subscription(subscriptionId)
  params: {
    resourceGroupName: eventsResourceGroupName
    existingTopic: contains(existingArmTopics, subscriptionId) ? existingArmTopics[subscriptionId] : {}
    location: location
    tags: tags
    functionAppId: app.outputs.functionAppId
    identityId: identity.outputs.id
    workspaceId: app.outputs.workspaceId
    deadLetterStorageId: app.outputs.storageAccountId
    deadLetterContainerName: app.outputs.deadLetterContainerName
  }
}]

module registryEvents 'modules/registry-events.bicep' = [for registryId in registryIds: if (subscribeEvents) {
  name: '${prefix}-acr-events-${uniqueString(registryId)}'
  scope: resourceGroup(split(registryId, '/')[2], split(registryId, '/')[4])
  params: {
    registryName: last(split(registryId, '/'))
    tags: tags
    functionAppId: app.outputs.functionAppId
    identityId: identity.outputs.id
    workspaceId: app.outputs.workspaceId
    deadLetterStorageId: app.outputs.storageAccountId
    deadLetterContainerName: app.outputs.deadLetterContainerName
  }
}]

// The alert reads alert_webhook's own key, so it waits for the published functions (subscribeEvents);
// with no workspace there is nothing to watch, and no rule (an empty scopes list fails late).
var deployPullFailureAlert = enablePullFailureAlert && subscribeEvents && !empty(alertWorkspaceIds)

module pullFailureAlert 'modules/pull-failure-alert.bicep' = if (deployPullFailureAlert) {
  name: '${prefix}-pull-failure-alert'
  scope: group
  params: {
    location: location
    namePrefix: prefix
    tags: tags
    functionAppName: app.outputs.functionAppName
    workspaceIds: alertWorkspaceIds
  }
}

// What operators look at: the workbook over the app's metrics and Event Grid's dead letters, and
// alerts on failed remediations and dead-lettered events (README "Metrics and traces").
module operations 'modules/operations-dashboard.bicep' = {
  name: '${prefix}-operations'
  scope: group
  params: {
    location: location
    namePrefix: prefix
    tags: tags
    appInsightsId: app.outputs.appInsightsId
    workspaceId: app.outputs.workspaceId
    alertEmails: alertEmails
  }
}

output resourceGroupName string = group.name
output functionAppName string = app.outputs.functionAppName
output functionAppHostName string = app.outputs.functionAppHostName
output identityPrincipalId string = identity.outputs.principalId
output identityClientId string = identity.outputs.clientId
output keyVaultName string = app.outputs.keyVaultName

// For azd (azure.yaml): its hooks read these from the environment.
output AZURE_RESOURCE_GROUP string = group.name
output AZURE_FUNCTION_APP_NAME string = app.outputs.functionAppName
output AZURE_IDENTITY_PRINCIPAL_ID string = identity.outputs.principalId
output GRAPH_PERMISSIONS_GRANTED bool = grantGraphPermissions
output PULL_FAILURE_ALERT_DEPLOYED bool = deployPullFailureAlert
