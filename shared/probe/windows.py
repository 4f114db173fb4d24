"""The probe on Windows node pools: a HostProcess container running the node's own PowerShell.

A Windows container cannot share the node's network namespace; a **HostProcess** container can
(it is a process on the node, in a job object), which is what the probe needs: the node's DNS
client, routes and IMDS, as the kubelet's pull (and its ACR credential provider) meet them.
Kubernetes requires ``hostNetwork: true`` for it and a ``runAsUserName`` of one of the node's
service accounts.

Image: ``mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image:v1.0.0``,
the base image Microsoft publishes for HostProcess containers: an almost empty layer (a few KB),
windows/amd64, valid on every Windows Server version (a HostProcess container does not share
the host's kernel through a container base layer, so no ltsc2019/ltsc2022 match is needed). From
MCR, as the Linux probe's image, so it starts when the path to the customer's registry is what
is broken. The script runs in the node's own ``powershell.exe`` (Windows PowerShell 5.1 on AKS
Windows Server nodes): nothing else is shipped.

Account: ``NT AUTHORITY\\Local service``, the least privileged of the three HostProcess accounts
(SYSTEM controls the node; NetworkService presents the machine's credentials on the network). The
probe only resolves names, opens sockets and sends HTTP(S) requests, which any account may: the
VNet's DNS, routes, NSGs and firewalls are the node's, not the account's. (A host firewall rule
scoped to SYSTEM, which AKS does not set, would be the one thing it sees differently.)

The script is passed in an environment variable and started with ``Invoke-Expression``: the
pod's command line holds no quotes or newlines for containerd's argument escaping to mangle, and
``kubectl get pod -o yaml`` shows exactly what runs.
"""

from __future__ import annotations

from typing import Any

IMAGE = "mcr.microsoft.com/oss/kubernetes/windows-host-process-containers-base-image:v1.0.0"
RUN_AS = "NT AUTHORITY\\Local service"
SCRIPT_ENV = "PROBE_SCRIPT"
COMMAND = [
    "powershell.exe",
    "-NoLogo",
    "-NoProfile",
    "-NonInteractive",
    "-Command",
    f"Invoke-Expression $env:{SCRIPT_ENV}",
]

# Prints the JSON line the Linux script prints (same marker and fields). DNS through the node's
# resolver (Dns.GetHostAddresses, as containerd resolves); TCP with a 5 s limit, refused told
# from timed out by the socket's own error; /v2/ and the exchange through HttpWebRequest, whose
# WebException still carries the 401's status. Tokens stay in variables that are cleared, and
# nothing but the report is written to stdout; an unexpected error prints only its type.
SCRIPT = r"""# acr-pull-probe/1 (Windows PowerShell 5.1, HostProcess)
$ErrorActionPreference = 'Stop'
$ProgressPreference = 'SilentlyContinue'
[Net.ServicePointManager]::SecurityProtocol = [Net.SecurityProtocolType]::Tls12
function Find-Inner($Exception, [type]$Type) {
  $e = $Exception
  while ($e -and -not ($e -is $Type)) { $e = $e.InnerException }
  $e
}
function Request-Status([string]$Method, [string]$Url, [hashtable]$Headers, [string]$Body, [int]$Timeout, [bool]$Direct) {
  # @{code; body}: code is $null when no HTTP answer came (connect, TLS or timeout failed).
  try {
    $request = [Net.HttpWebRequest]::Create($Url)
    $request.Method = $Method
    $request.Timeout = $Timeout
    $request.ReadWriteTimeout = $Timeout
    if ($Direct) { $request.Proxy = $null }
    foreach ($name in $Headers.Keys) { $request.Headers[$name] = $Headers[$name] }
    if ($Body) {
      $bytes = [Text.Encoding]::ASCII.GetBytes($Body)
      $request.ContentType = 'application/x-www-form-urlencoded'
      $request.ContentLength = $bytes.Length
      $stream = $request.GetRequestStream()
      $stream.Write($bytes, 0, $bytes.Length)
      $stream.Close()
    }
    $response = $request.GetResponse()
  } catch {
    $web = Find-Inner $_.Exception ([Net.WebException])
    if (-not ($web -and $web.Response)) { return @{ code = $null; body = '' } }
    $response = $web.Response
  }
  $reader = New-Object IO.StreamReader($response.GetResponseStream())
  $text = $reader.ReadToEnd()
  $reader.Close()
  $code = [int]$response.StatusCode
  $response.Close()
  @{ code = $code; body = $text }
}
function Measure-Reach([string]$Name) {
  try { $dns = @([Net.Dns]::GetHostAddresses($Name) | ForEach-Object { $_.IPAddressToString }) } catch { $dns = @() }
  if ($dns.Count -eq 0) { return [ordered]@{ host = $Name; dns = @(); tcp = 'unresolved' } }
  $clock = [Diagnostics.Stopwatch]::StartNew()
  $client = New-Object Net.Sockets.TcpClient
  try {
    if ($client.ConnectAsync($Name, 443).Wait(5000)) { $tcp = 'ok' } else { $tcp = 'timeout' }
  } catch {
    $socket = Find-Inner $_.Exception ([Net.Sockets.SocketException])
    if ($socket -and $socket.SocketErrorCode -eq 'ConnectionRefused') { $tcp = 'refused' } else { $tcp = 'timeout' }
  } finally { $client.Dispose() }
  $tcpMs = [int]$clock.ElapsedMilliseconds
  $tls = 'skipped'; $code = $null; $tlsMs = 0
  if ($tcp -eq 'ok') {
    $clock.Restart()
    $code = (Request-Status 'GET' "https://$Name/v2/" @{} '' 5000 $false).code
    $tlsMs = [int]$clock.ElapsedMilliseconds
    if ($null -ne $code) { $tls = 'ok' } else { $tls = 'failed' }
  }
  [ordered]@{ host = $Name; dns = $dns; tcp = $tcp; tcpMs = $tcpMs; tls = $tls; tlsMs = $tlsMs; v2 = $code }
}
try {
  $imds = 'skipped'; $exchange = 'skipped'; $exchangeStatus = $null
  if ($env:PROBE_CLIENT_ID) {
    $url = 'http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/&client_id=' + $env:PROBE_CLIENT_ID
    $answer = Request-Status 'GET' $url @{ Metadata = 'true' } '' 3000 $true
    $token = $null
    if ($answer.code -eq 200 -and $answer.body -match '"access_token":"([^"]+)"') { $imds = 'ok'; $token = $Matches[1] }
    elseif ($answer.code -eq 400 -or $answer.code -eq 404) { $imds = 'no-identity' }
    else { $imds = 'blocked' }
    $answer = $null; $Matches = $null
    if ($imds -eq 'ok') {
      $login = $env:PROBE_LOGIN_SERVER
      $form = 'grant_type=access_token&service=' + $login + '&access_token=' + $token
      $token = $null
      $exchangeStatus = (Request-Status 'POST' "https://$login/oauth2/exchange" @{} $form 5000 $false).code
      $form = $null
      if ($exchangeStatus -eq 200) { $exchange = 'ok' } else { $exchange = 'failed' }
    }
  }
  $report = [ordered]@{
    probe = 'acr-pull-probe/1'
    node = $env:PROBE_NODE
    login = (Measure-Reach $env:PROBE_LOGIN_SERVER)
    data = (Measure-Reach $env:PROBE_DATA_ENDPOINT)
    imds = $imds
    exchange = $exchange
    exchangeStatus = $exchangeStatus
  }
  [Console]::Out.WriteLine(($report | ConvertTo-Json -Compress -Depth 4))
} catch {
  [Console]::Error.WriteLine('acr-pull-probe: ' + $_.Exception.GetType().FullName)
  exit 1
}
"""


def pod_spec(env: list[dict[str, Any]]) -> dict[str, Any]:
    """The Windows-specific part of the probe pod's spec (the rest is shared with Linux)."""
    return {
        # HostProcess: the pod is a process on the node, on its network (required with it).
        "securityContext": {"windowsOptions": {"hostProcess": True, "runAsUserName": RUN_AS}},
        "containers": [
            {
                "name": "probe",
                "image": IMAGE,
                "imagePullPolicy": "IfNotPresent",
                "command": COMMAND,
                "env": [{"name": SCRIPT_ENV, "value": SCRIPT}, *env],
                # Windows PowerShell starts at about 60 MiB; a job-object limit caps the rest.
                "resources": {
                    "requests": {"cpu": "10m", "memory": "64Mi"},
                    "limits": {"cpu": "1", "memory": "256Mi"},
                },
            }
        ],
    }
