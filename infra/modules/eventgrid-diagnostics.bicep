// Sends an Event Grid system topic's platform metrics (DeadLetteredCount among them) and its
// delivery failure logs to the app's Log Analytics workspace: the workbook charts them and the
// dead-letter alert (operations-dashboard.bicep) queries AzureMetrics there.

@description('Name of the system topic, in this resource group.')
param topicName string

@description('Resource id of the Log Analytics workspace.')
param workspaceId string

resource topic 'Microsoft.EventGrid/systemTopics@2022-06-15' existing = {
  name: topicName
}

resource diagnostics 'Microsoft.Insights/diagnosticSettings@2021-05-01-preview' = {
  name: 'acrpull-to-workspace'
  scope: topic
  properties: {
    workspaceId: workspaceId
    metrics: [
      {
        category: 'AllMetrics'
        enabled: true
      }
    ]
    logs: [
      {
        category: 'DeliveryFailures'
        enabled: true
      }
    ]
  }
}
