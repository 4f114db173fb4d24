// What operators look at: an Azure Monitor workbook over the app's OpenTelemetry metrics
// (Application Insights customMetrics, names acrpull.*: README "Metrics and traces") and Event
// Grid's dead-letter counts, and two alerts: failed remediations and dead-lettered events.
// The workbook's JSON is infra/workbook/operations.workbook.json; tests/infra checks its queries
// against the metric names and dimensions the code emits (shared/telemetry.py).

@description('Azure region of the workbook and the alert rules.')
param location string

@description('Lower-case letters and digits, 3-11 characters: the start of every resource name.')
param namePrefix string

@description('Tags for every resource.')
param tags object = {}

@description('Resource id of the app\'s Application Insights component.')
param appInsightsId string

@description('Resource id of the Log Analytics workspace behind it (Event Grid metrics land there).')
param workspaceId string

@description('E-mail addresses told when an alert fires; none: the alerts show in Azure Monitor only.')
param alertEmails array = []

var workbookTemplate = loadTextContent('../workbook/operations.workbook.json')
var workbookJson = replace(replace(workbookTemplate, '__APP_INSIGHTS_ID__', appInsightsId), '__WORKSPACE_ID__', workspaceId)

resource workbook 'Microsoft.Insights/workbooks@2023-06-01' = {
  // A workbook's name must be a GUID; this one is stable per resource group and prefix.
  name: guid(resourceGroup().id, namePrefix, 'operations-workbook')
  location: location
  tags: tags
  kind: 'shared'
  properties: {
    displayName: 'ACR Pull Remediator: fleet operations'
    category: 'workbook'
    sourceId: appInsightsId
    serializedData: workbookJson
    version: 'Notebook/1.0'
  }
}

var emailReceivers = [for (address, i) in alertEmails: {
  name: 'operator-${i}'
  emailAddress: address
  useCommonAlertSchema: true
}]

resource operators 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmails)) {
  name: '${namePrefix}-operators'
  location: 'global'
  tags: tags
  properties: {
    groupShortName: 'acrpullops'
    enabled: true
    emailReceivers: emailReceivers
  }
}

resource remediationFailures 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-remediation-failures'
  location: location
  tags: tags
  properties: {
    displayName: 'ACR Pull Remediator: a remediation failed'
    description: 'A fix failed, or ran and the check still fails (acrpull.remediation.duration with outcome failed or applied), per cluster and action, in the last 15 minutes.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT5M'
    windowSize: 'PT15M'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "acrpull.remediation.duration" | extend outcome = tostring(customDimensions.outcome), cluster = tostring(customDimensions.cluster), action = tostring(customDimensions.action) | where outcome in ("failed", "applied") | summarize failures = sum(valueCount) by cluster, action'
          timeAggregation: 'Total'
          metricMeasureColumn: 'failures'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'cluster'
              operator: 'Include'
              values: [
                '*'
              ]
            }
            {
              name: 'action'
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
      actionGroups: empty(alertEmails) ? [] : [
        operators.id
      ]
    }
  }
}

resource unreadableSubscriptions 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-unreadable-subscriptions'
  location: location
  tags: tags
  properties: {
    displayName: 'ACR Pull Remediator: a subscription in scope cannot be read'
    description: 'A drift or expiry planner could not take the inventory of a subscription in scope (it does not exist, or the app lacks Reader on it: acrpull.sweep.subscriptions with state unreadable) in the last two hours: no sweep checks its clusters.'
    severity: 2
    enabled: true
    scopes: [
      appInsightsId
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT2H'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'customMetrics | where name == "acrpull.sweep.subscriptions" | extend state = tostring(customDimensions.state), subscription = tostring(customDimensions.subscription) | where state == "unreadable" | summarize runs = sum(valueSum) by subscription'
          timeAggregation: 'Total'
          metricMeasureColumn: 'runs'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'subscription'
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
      actionGroups: empty(alertEmails) ? [] : [
        operators.id
      ]
    }
  }
}

resource deadLettered 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = {
  name: '${namePrefix}-dead-lettered-events'
  location: location
  tags: tags
  properties: {
    displayName: 'ACR Pull Remediator: Event Grid dead-lettered events'
    description: 'Events Event Grid gave up delivering to the app (DeadLetteredCount of the system topics, sent to the workspace by their diagnostic settings) in the last hour: the drift sweep is now the only net for them.'
    severity: 2
    enabled: true
    scopes: [
      workspaceId
    ]
    evaluationFrequency: 'PT15M'
    windowSize: 'PT1H'
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: 'AzureMetrics | where ResourceProvider == "MICROSOFT.EVENTGRID" and MetricName == "DeadLetteredCount" | summarize deadLettered = sum(Total) by topic = Resource'
          timeAggregation: 'Total'
          metricMeasureColumn: 'deadLettered'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: [
            {
              name: 'topic'
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
      actionGroups: empty(alertEmails) ? [] : [
        operators.id
      ]
    }
  }
}

output workbookId string = workbook.id
