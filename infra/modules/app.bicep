// The Function App and what it owns, in one resource group: storage, logs, Key Vault, hosting plan.
// Role assignments here are on the app's own resources; scope-wide ones are in scope-roles.bicep.
// The identity (identity.bicep) and the outcome topic (outcome-topic.bicep) come first.

@description('Azure region for every resource in this group.')
param location string

@description('Lower-case letters and digits, 3-11 characters: the start of every resource name.')
param namePrefix string

@description('Tags for every resource.')
param tags object = {}

@description('Subscriptions the app may read and act on (SCOPE_SUBSCRIPTION_IDS).')
param scopeSubscriptionIds array

@description('Only events from this tenant are handled (AZURE_TENANT_ID).')
param tenantId string

@description('dry-run plans and reports; enforce also changes Azure (REMEDIATION_MODE).')
@allowed([
  'dry-run'
  'enforce'
])
param remediationMode string

@description('Policy file inside the deployed package (POLICY_PATH); empty uses policies/default.yaml semantics.')
param policyPath string = ''

@description('Ticket credentials that exist as Key Vault secrets; each listed one becomes a Key Vault reference, the others stay empty.')
@allowed([
  'GITHUB_TOKEN'
  'AZURE_DEVOPS_PAT'
  'TICKET_WEBHOOK_URL'
])
param ticketSecrets array = []

@description('Name of the app\'s user-assigned identity (identity.bicep), in this resource group.')
param identityName string

@description('Endpoint of the outcome topic (outcome-topic.bicep); empty when outcomes are not published.')
param outcomeTopicEndpoint string = ''

@description('The Kubernetes transport may use AKS Run Command (KUBERNETES_TRANSPORT auto); false: direct only.')
param enableRunCommand bool = false

@description('Most instances the Flex Consumption plan may scale out to.')
param maximumInstanceCount int = 40

@description('Memory of each instance: 512, 2048 or 4096 MB.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@description('Days the Log Analytics workspace keeps logs.')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Changes the Key Vault name: a vault deleted with purge protection keeps its name for 90 days, so a fresh deployment over a deleted one picks a new salt (or recovers it).')
param keyVaultNameSalt string = ''

@description('Recover the soft-deleted Key Vault of an earlier deployment with the same name instead of creating it.')
param recoverKeyVault bool = false

var suffix = uniqueString(resourceGroup().id, namePrefix)
var storageName = take('${namePrefix}st${suffix}', 24)
var vaultName = take('${namePrefix}kv${uniqueString(resourceGroup().id, namePrefix, keyVaultNameSalt)}', 24)
var deploymentContainerName = 'app-package'
var deadLetterContainerName = 'eventgrid-deadletter'

var roles = {
  // Built-in role definition ids (the same in every tenant).
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  keyVaultSecretsUser: '4633458b-17de-408a-b874-0445c86b69e6'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' existing = {
  name: identityName
}

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  // checkov:skip=CKV_AZURE_43: the name is computed (take of a lower-case prefix and uniqueString, at most 24 letters and digits), which checkov cannot evaluate.
  // checkov:skip=CKV_AZURE_35: Flex Consumption without VNet integration reaches its storage over the public endpoint; shared keys are off, so only Entra ID principals with a data role get in (README: network-isolated variant).
  // checkov:skip=CKV_AZURE_59: same reason as CKV_AZURE_35: the public endpoint is on, identity-only.
  // checkov:skip=CKV_AZURE_206: the account holds the app package, host leases and the app's state tables; zone-redundant storage covers a zone loss, and state is rebuilt by the drift sweep.
  name: storageName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_ZRS'
  }
  properties: {
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    defaultToOAuthAuthentication: true
    allowCrossTenantReplication: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
    encryption: {
      keySource: 'Microsoft.Storage'
      requireInfrastructureEncryption: true
      services: {
        blob: {
          enabled: true
        }
        queue: {
          enabled: true
          keyType: 'Account'
        }
        table: {
          enabled: true
          keyType: 'Account'
        }
      }
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

// The host's queues: the planners' batches of clusters (sweep_batch) and the tasks a run handed
// over (sweep_handover). The host would create them on first use; declaring them keeps them
// (and their poison queues' names) visible in the deployment.
resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource batchQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'sweep-batches'
}

resource handoverQueue 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = {
  parent: queueService
  name: 'sweep-handover'
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource deadLetterContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = {
  parent: blobService
  name: deadLetterContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${namePrefix}-log-${suffix}'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${namePrefix}-appi-${suffix}'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    // Telemetry is accepted only with an Entra ID token (APPLICATIONINSIGHTS_AUTHENTICATION_STRING).
    DisableLocalAuth: true
  }
}

resource storageDiagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'to-log-analytics'
  scope: storage
  properties: {
    workspaceId: workspace.id
    metrics: [
      {
        category: 'Transaction'
        enabled: true
      }
    ]
  }
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  // checkov:skip=CKV_AZURE_109: Key Vault references from a Flex Consumption app without VNet integration come from App Service's public addresses, which are not a trusted service; RBAC mode limits reads to Key Vault Secrets User.
  // checkov:skip=CKV_AZURE_189: same reason as CKV_AZURE_109.
  name: vaultName
  location: location
  tags: tags
  properties: {
    tenantId: tenant().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    createMode: recoverKeyVault ? 'recover' : 'default'
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 90
    enablePurgeProtection: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Host and deployment: the Flex Consumption host reads the app package and keeps its leases and
// keys in blobs (AzureWebJobsStorage__*); Event Grid dead-letters failed deliveries here with this
// identity (deadLetterWithResourceIdentity).
resource blobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageBlobDataOwner)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageBlobDataOwner)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// State store (shared/store): event dedup, leases per cluster, cooldowns, ticket index, audit rows.
resource tableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageTableDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageTableDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Hand-over: long operations (reconcile-cluster, rotate-sp-secret) are verified later from a queue.
resource queueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storage.id, identity.id, roles.storageQueueDataContributor)
  scope: storage
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.storageQueueDataContributor)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Ticket tokens (GITHUB_TOKEN, AZURE_DEVOPS_PAT, TICKET_WEBHOOK_URL) as Key Vault references.
resource secretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identity.id, roles.keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsUser)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

// Telemetry with Entra ID auth (local auth is off on the Application Insights resource).
resource metricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, identity.id, roles.monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
    principalId: identity.properties.principalId
    principalType: 'ServicePrincipal'
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  // checkov:skip=CKV_AZURE_225: Flex Consumption zone redundancy exists only in some regions; the app is stateless between events and Event Grid retries deliveries for 24 h.
  name: '${namePrefix}-plan-${suffix}'
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true
  }
}

resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  // checkov:skip=CKV_AZURE_222: Event Grid and Azure Monitor deliver to the app over its public endpoint (function keys guard it); private inbound needs a VNet (README: network-isolated variant).
  // checkov:skip=CKV_AZURE_212: Flex Consumption scales out per event; it has no fixed worker count, and always-ready instances are a cost choice, not a failover setting.
  // checkov:skip=CKV_AZURE_213: Flex Consumption has no App Service health check; GET /api/health serves probes and deploy smoke tests.
  // checkov:skip=CKV_AZURE_17: Event Grid and Azure Monitor action groups cannot present client certificates.
  name: '${namePrefix}-func-${suffix}'
  location: location
  // azd deploy finds the app of azure.yaml's service `remediator` by this tag.
  tags: union(tags, {
    'azd-service-name': 'remediator'
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identity.id}': {}
    }
  }
  dependsOn: [
    blobOwner
    tableContributor
    queueContributor
    secretsUser
    metricsPublisher
    deploymentContainer
  ]
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    publicNetworkAccess: 'Enabled'
    keyVaultReferenceIdentity: identity.id
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      appSettings: [
        // Functions platform (the documented allow-list in tests/infra/test_bicep_contract.py).
        // Service URIs rather than __accountName: the account name form assumes the public
        // cloud's endpoint suffix and is documented as unsupported in sovereign clouds.
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storage.properties.primaryEndpoints.blob
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storage.properties.primaryEndpoints.queue
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storage.properties.primaryEndpoints.table
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identity.properties.clientId
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identity.properties.clientId};Authorization=AAD'
        }
        // The product (shared/app_settings.py; README "Settings").
        {
          name: 'SCOPE_SUBSCRIPTION_IDS'
          value: join(scopeSubscriptionIds, ',')
        }
        {
          name: 'AZURE_TENANT_ID'
          value: tenantId
        }
        {
          name: 'AZURE_CLIENT_ID'
          value: identity.properties.clientId
        }
        {
          name: 'REMEDIATION_MODE'
          value: remediationMode
        }
        {
          name: 'AZURE_CLOUD'
          value: environment().name
        }
        {
          name: 'ARM_RETRY_TOTAL'
          value: '4'
        }
        {
          name: 'ARM_RETRY_BACKOFF_SECONDS'
          value: '0.8'
        }
        {
          name: 'OPERATION_TIMEOUT_SECONDS'
          value: '240'
        }
        {
          name: 'LRO_POLLING_INTERVAL_SECONDS'
          value: '15'
        }
        {
          name: 'MAX_CONCURRENT_READS'
          value: '8'
        }
        // Private clusters and authorized IP ranges: Run Command only where infra granted it.
        {
          name: 'KUBERNETES_TRANSPORT'
          value: enableRunCommand ? 'auto' : 'direct'
        }
        {
          name: 'KUBERNETES_TRANSPORT_MEMORY_SECONDS'
          value: '3600'
        }
        // Sweeps discover the estate through Azure Resource Graph (ARM when it fails).
        {
          name: 'RESOURCE_GRAPH_INVENTORY'
          value: 'on'
        }
        // A delivery's claim on an event outlives host.json's functionTimeout (10 min).
        {
          name: 'EVENT_LEASE_SECONDS'
          value: '900'
        }
        // A dead worker's lease on a cluster outlives its longest wait (OPERATION_TIMEOUT_SECONDS).
        {
          name: 'CLUSTER_LEASE_SECONDS'
          value: '300'
        }
        // Timer schedules (NCRONTAB) and how long one sweep may run before it hands the rest over.
        {
          name: 'EXPIRY_SWEEP_SCHEDULE'
          value: '0 0 6 * * *'
        }
        {
          name: 'DRIFT_SWEEP_SCHEDULE'
          value: '0 0 * * * *'
        }
        {
          name: 'PULL_FAILURE_SCAN_SCHEDULE'
          value: '0 */10 * * * *'
        }
        {
          name: 'RETENTION_SCHEDULE'
          value: '0 30 3 * * *'
        }
        // How long the state store keeps processed events, action records and audit rows (days).
        {
          name: 'EVENT_RETENTION_DAYS'
          value: '7'
        }
        {
          name: 'ACTION_RETENTION_DAYS'
          value: '30'
        }
        {
          name: 'AUDIT_RETENTION_DAYS'
          value: '400'
        }
        {
          name: 'SWEEP_BUDGET_SECONDS'
          value: '300'
        }
        // Fleet sweeps: clusters per sweep-batches message, and clusters one batch checks at once.
        {
          name: 'FLEET_BATCH_SIZE'
          value: '20'
        }
        {
          name: 'FLEET_CLUSTER_CONCURRENCY'
          value: '4'
        }
        // How long an instance keeps a cluster's kubeconfig in memory (never persisted).
        {
          name: 'KUBECONFIG_CACHE_SECONDS'
          value: '900'
        }
        {
          name: 'POLICY_PATH'
          value: policyPath
        }
        // The state store's table endpoint comes from AzureWebJobsStorage__tableServiceUri (shared/config.py).
        {
          name: 'STATE_TABLE_PREFIX'
          value: 'remediator'
        }
        {
          name: 'OUTCOME_TOPIC_ENDPOINT'
          value: outcomeTopicEndpoint
        }
        {
          name: 'GITHUB_TOKEN'
          value: contains(ticketSecrets, 'GITHUB_TOKEN') ? '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/github-token)' : ''
        }
        {
          name: 'AZURE_DEVOPS_PAT'
          value: contains(ticketSecrets, 'AZURE_DEVOPS_PAT') ? '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/azure-devops-pat)' : ''
        }
        {
          name: 'TICKET_WEBHOOK_URL'
          value: contains(ticketSecrets, 'TICKET_WEBHOOK_URL') ? '@Microsoft.KeyVault(SecretUri=${vault.properties.vaultUri}secrets/ticket-webhook-url)' : ''
        }
      ]
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storage.properties.primaryEndpoints.blob}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identity.id
          }
        }
      }
      scaleAndConcurrency: {
        maximumInstanceCount: maximumInstanceCount
        instanceMemoryMB: instanceMemoryMB
      }
      runtime: {
        name: 'python'
        version: '3.11'
      }
    }
  }
}

output functionAppId string = functionApp.id
output functionAppName string = functionApp.name
output functionAppHostName string = functionApp.properties.defaultHostName
output storageAccountId string = storage.id
output deadLetterContainerName string = deadLetterContainerName
output keyVaultName string = vault.name
output workspaceId string = workspace.id
output appInsightsId string = appInsights.id
