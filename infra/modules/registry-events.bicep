// Image pushes and deletes of ONE registry, to the registry_events function (arch-mismatch,
// os-mismatch, image-not-found for clusters running that repository). Deployed into the
// registry's resource group; a registry can have only one system topic (README).

@description('Name of the container registry, in this resource group.')
param registryName string

@description('Tags for every resource.')
param tags object = {}

@description('Resource id of the Function App (its registry_events function receives the events).')
param functionAppId string

@description('Resource id of the app\'s user-assigned identity (used to write dead letters).')
param identityId string

@description('Resource id of the storage account that keeps dead letters.')
param deadLetterStorageId string

@description('Blob container for dead letters.')
param deadLetterContainerName string

@description('Log Analytics workspace for the topic\'s platform metrics (DeadLetteredCount) and delivery failure logs: the operations workbook and the dead-letter alert read them. Empty: none.')
param workspaceId string = ''

resource registry 'Microsoft.ContainerRegistry/registries@2023-07-01' existing = {
  name: registryName
}

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' = {
  name: '${registryName}-events'
  location: registry.location
  tags: tags
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    source: registry.id
    topicType: 'Microsoft.ContainerRegistry.Registries'
  }
}

resource registryEvents 'Microsoft.EventGrid/systemTopics/eventSubscriptions@2022-06-15' = {
  parent: topic
  name: 'registry-events'
  properties: {
    eventDeliverySchema: 'EventGridSchema'
    destination: {
      endpointType: 'AzureFunction'
      properties: {
        resourceId: '${functionAppId}/functions/registry_events'
        maxEventsPerBatch: 1
        preferredBatchSizeInKilobytes: 64
      }
    }
    filter: {
      includedEventTypes: [
        'Microsoft.ContainerRegistry.ImagePushed'
        'Microsoft.ContainerRegistry.ImageDeleted'
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
  name: 'acr-events-topic-diagnostics-${registryName}'
  params: {
    topicName: topic.name
    workspaceId: workspaceId
  }
}
