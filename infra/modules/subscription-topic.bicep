// The subscription's Event Grid system topic and the subscription that sends the ARM operations
// the engine handles to the arm_events function.

@description('Tags for every resource.')
param tags object = {}

@description('Resource id of the Function App (its arm_events function receives the events).')
param functionAppId string

@description('Resource id of the app\'s user-assigned identity (used to write dead letters).')
param identityId string

@description('Resource id of the storage account that keeps dead letters.')
param deadLetterStorageId string

@description('Blob container for dead letters.')
param deadLetterContainerName string

@description('Name of the subscription\'s existing system topic in this resource group, or empty to create one. An existing topic must carry the app\'s identity (dead letters are written with it).')
param existingTopicName string = ''

@description('Log Analytics workspace for the topic\'s platform metrics (DeadLetteredCount) and delivery failure logs: the operations workbook and the dead-letter alert read them. Empty: none.')
param workspaceId string = ''

// Mirrors shared.engine.HANDLED_OPERATIONS (tests/infra/test_bicep_contract.py compares them):
// the operations whose success events may break pulls (DESIGN.md section 5). At most 25 values.
var handledOperations = [
  'Microsoft.Compute/virtualMachineScaleSets/write'
  'Microsoft.ContainerRegistry/registries/regenerateCredential/action'
  'Microsoft.Authorization/roleAssignments/delete'
  'Microsoft.ContainerRegistry/registries/write'
  'Microsoft.ContainerService/managedClusters/write'
  'Microsoft.ContainerService/managedClusters/agentPools/write'
  'Microsoft.Network/privateDnsZones/virtualNetworkLinks/delete'
  'Microsoft.Network/virtualNetworks/virtualNetworkPeerings/delete'
  'Microsoft.ContainerRegistry/registries/generateCredentials/action'
  'Microsoft.ContainerRegistry/registries/tokens/write'
  'Microsoft.ContainerRegistry/registries/scopeMaps/write'
]

var topicName = empty(existingTopicName) ? 'arm-events-${uniqueString(subscription().id, functionAppId)}' : existingTopicName

resource newTopic 'Microsoft.EventGrid/systemTopics@2022-06-15' = if (empty(existingTopicName)) {
  name: topicName
  location: 'global'
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    source: subscription().id
    topicType: 'Microsoft.Resources.Subscriptions'
  }
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

resource armEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: 'arm-events'
  dependsOn: [
    newTopic
  ]
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/arm_events'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.Resources.ResourceWriteSuccess'
        'Microsoft.Resources.ResourceDeleteSuccess'
        'Microsoft.Resources.ResourceActionSuccess'
      ]
      advancedFilters: [
        {
          operatorType: 'StringIn'
          key: 'data.operationName'
          values: handledOperations
        }
      ]
    }
    retryPolicy: {
      maxDeliveryAttempts: 30
      eventTimeToLiveInMinutes: 1440
    }
    deadLetterWithResourceIdentity: {
      identity: {
        type: 'UserAssigned'
        userAssignedIdentity: identityId
      }
      deadLetterDestination: {
        endpointType: 'StorageBlob'
        properties: {
          resourceId: deadLetterStorageId
          blobContainerName: deadLetterContainerName
        }
      }
    }
  }
}

module diagnostics 'eventgrid-diagnostics.bicep' = if (!empty(workspaceId)) {
  name: 'arm-events-topic-diagnostics'
  dependsOn: [
    newTopic
  ]
  params: {
    topicName: topicName
    workspaceId: workspaceId
  }
}
