// ARM events of ONE scope subscription: a resource group there for the subscription's system topic
// (a subscription topic lives in a resource group of the subscription it watches), then the topic.
targetScope = 'subscription'

@description('Resource group created in this subscription for its Event Grid system topic.')
param resourceGroupName string

@description('The subscription\'s existing system topic, {"resourceGroup": "...", "name": "..."}, or {} to create one (Event Grid allows one per source).')
param existingTopic object = {}

@description('Azure region of that resource group (the topic itself is global).')
param location string

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

@description('Log Analytics workspace for the topic\'s platform metrics (DeadLetteredCount) and delivery failure logs: the operations workbook and the dead-letter alert read them. Empty: none.')
param workspaceId string = ''

var reuse = !empty(existingTopic)

resource group 'Microsoft.Resources/resourceGroups@2024-03-01' = if (!reuse) {
  name: resourceGroupName
  location: location
  tags: tags
}

module topic 'subscription-topic.bicep' = {
  name: 'arm-events-topic'
  scope: resourceGroup(reuse ? existingTopic.resourceGroup : resourceGroupName)
  dependsOn: [
    group
  ]
  params: {
    existingTopicName: reuse ? existingTopic.name : ''
    tags: tags
    functionAppId: functionAppId
    identityId: identityId
    deadLetterStorageId: deadLetterStorageId
    deadLetterContainerName: deadLetterContainerName
    workspaceId: workspaceId
  }
}
