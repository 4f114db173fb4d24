// Microsoft Graph application permissions for the app's managed identity, granted with the
// Microsoft Graph Bicep extension (bicepconfig.json). The deployer needs the right to grant app
// roles (Privileged Role Administrator, or Application Administrator with
// AppRoleAssignment.ReadWrite.All); without it, deploy with grantGraphPermissions=false and run the
// commands scripts/azd_hooks.py prints.
extension microsoftGraphV1

@description('Principal (object) id of the app\'s user-assigned identity.')
param principalId string

@description('Also grant Application.ReadWrite.OwnedBy (rotate-sp-secret, refresh-pull-secret): enforce mode only.')
param grantRotation bool

// Microsoft Graph's application id and its app role ids are the same in every tenant
// (Microsoft Graph permissions reference).
var graphAppId = '00000003-0000-0000-c000-000000000000'
var applicationReadAll = '9a5d68dd-52b0-4cc2-bd40-abcf44ac3a30'
var applicationReadWriteOwnedBy = '18a4783c-866b-4cc7-a460-3d5e5662c884'

resource graph 'Microsoft.Graph/servicePrincipals@v1.0' existing = {
  appId: graphAppId
}

// sp-secret-expired, pull-secret-sp-invalid, sp-mismatch: read applications' passwordCredentials.
resource readAll 'Microsoft.Graph/appRoleAssignedTo@v1.0' = {
  appRoleId: applicationReadAll
  principalId: principalId
  resourceId: graph.id
}

// rotate-sp-secret, refresh-pull-secret: addPassword / removePassword, only on applications the
// identity owns (make it an owner of each cluster service principal's application it may rotate).
resource readWriteOwnedBy 'Microsoft.Graph/appRoleAssignedTo@v1.0' = if (grantRotation) {
  appRoleId: applicationReadWriteOwnedBy
  principalId: principalId
  resourceId: graph.id
}
