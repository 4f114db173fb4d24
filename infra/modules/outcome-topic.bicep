// Optional: an Event Grid custom topic the app publishes its outcomes to as CloudEvents
// (finding, plan, action, verification, ticket), so other systems can subscribe.

@description('Azure region.')
param location string

@description('Lower-case letters and digits, 3-11 characters: the start of every resource name.')
param namePrefix string

@description('Tags for every resource.')
param tags object = {}

@description('Principal id of the app\'s user-assigned identity (the only publisher).')
param principalId string

var eventGridDataSender = 'd5a91429-5739-47e2-a06b-3470a27159e7'

resource topic 'Microsoft.EventGrid/topics@2022-06-15' = {
  // checkov:skip=CKV_AZURE_193: subscribers and the app (no VNet on Flex Consumption by default) reach the topic over its public endpoint; local (key) auth is off, so only Entra ID principals with EventGrid Data Sender publish.
  // checkov:skip=CKV_AZURE_191: the topic delivers to its subscribers' endpoints with their own auth; it needs no managed identity of its own.
  name: '${namePrefix}-outcomes-${uniqueString(resourceGroup().id, namePrefix)}'
  location: location
  tags: tags
  properties: {
    inputSchema: 'CloudEventSchemaV1_0'
    disableLocalAuth: true
    publicNetworkAccess: 'Enabled'
  }
}

// Outcome events: the app publishes with its identity (OUTCOME_TOPIC_ENDPOINT), never with a key.
resource dataSender 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(topic.id, principalId, eventGridDataSender)
  scope: topic
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', eventGridDataSender)
    principalId: principalId
    principalType: 'ServicePrincipal'
  }
}

output endpoint string = topic.properties.endpoint
output id string = topic.id
