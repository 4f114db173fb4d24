// Optional: a log search alert on Container Insights' KubeEvents for "Failed to pull image", whose
// action group calls the app's alert_webhook function (function-key protected) so the app
// diagnoses the failing pods' clusters within minutes instead of at the next sweep.

@description('Azure region of the alert rule.')
param location string

@description('Lower-case letters and digits, 3-11 characters: the start of every resource name.')
param namePrefix string

@description('Tags for every resource.')
param tags object = {}

@description('Name of the Function App, in this resource group.')
param functionAppName string

@description('Log Analytics workspaces that the clusters\' Container Insights writes KubeEvents to.')
@minLength(1)
param workspaceIds array

@description('HTTP route of the alert webhook function.')
param webhookRoute string = 'alert_webhook'

resource functionApp 'Microsoft.Web/sites@2024-04-01' existing = {
  name: functionAppName
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = {
  name: '${namePrefix}-pull-failures'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'pullfail'
    enabled: true
    azureFunctionReceivers: [
      {
        name: 'alert-webhook'
        functionAppResourceId: functionApp.id
        functionName: 'alert_webhook'
        // alert_webhook's own function key, not a host key (a host key opens every function).
        httpTriggerUrl: 'https://${functionApp.properties.defaultHostName}/api/${webhookRoute}?code=${listKeys(resourceId('Microsoft.Web/sites/functions', functionAppName, 'alert_webhook'), '2024-04-01').default}'
        useCommonAlertSchema: true
      }
    ]
  }
}

resource pullFailures 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-failed-to-pull-image'
  location: location
  tags: tags
  properties: {
    displayName: 'Pods fail to pull images'
    description: 'KubeEvents "Failed to pull image" in the last 15 minutes, per cluster: the ACR Pull Remediator diagnoses those clusters.'
    severity: 2
    enabled: true
    scopes: workspaceIds
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'KubeEvents | where Reason == "Failed" and Message has "Failed to pull image" | project TimeGenerated, ClusterId, Namespace, Name, Message'
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'ClusterId'
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
    }
  }
}
