// The app's user-assigned managed identity: the one principal every role assignment names.
// Its own module so the outcome topic, the app and the Event Grid subscriptions can all use it.

@description('Azure region.')
param location string

@description('Lower-case letters and digits, 3-11 characters: the start of every resource name.')
param namePrefix string

@description('Tags for every resource.')
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: '${namePrefix}-id-${uniqueString(resourceGroup().id, namePrefix)}'
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output principalId string = identity.properties.principalId
output clientId string = identity.properties.clientId
