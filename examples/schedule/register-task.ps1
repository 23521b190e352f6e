# Registers an hourly Windows Task Scheduler job for vlmcs-audit: one scan per run, with the
# state file (drift findings and `clean --dead-for` need the history), kept as JSON; from that
# one scan the HTML fix-it page and the Prometheus textfile (windows_exporter's textfile
# collector) — never a second scan. Run in an elevated PowerShell on a domain member.
#
#   .\register-task.ps1 -Exe 'C:\Tools\vlmcs-audit.exe' -Config 'C:\ProgramData\vlmcs-audit\audit.yaml' `
#       -Account 'CORP\svc-vlmcs$'
#
# -Account: a group Managed Service Account (the trailing $) — Kerberos without a stored
# password or keytab, for --ad and GSS-TSIG; prepare it once with
#   New-ADServiceAccount svc-vlmcs -DNSHostName svc-vlmcs.corp.example.com `
#       -PrincipalsAllowedToRetrieveManagedPassword 'AUDIT-HOST$'
#   Install-ADServiceAccount svc-vlmcs      # on the machine that runs the task
# Without -Account the task runs as NETWORK SERVICE (enough for a scan: DNS queries and TCP
# to port 1688; not for --ad, which needs an account of the domain).
param(
    [string]$Exe = 'C:\Tools\vlmcs-audit.exe',
    [string]$Config = 'C:\ProgramData\vlmcs-audit\audit.yaml',
    [string]$OutDir = 'C:\ProgramData\vlmcs-audit',
    [string]$Textfile = 'C:\Program Files\windows_exporter\textfile_inputs\vlmcs_audit.prom',
    [string]$Account = ''
)
$ErrorActionPreference = 'Stop'
# The output folder must exist before the first run; the files the tool makes in it are
# private to their owner, SYSTEM and Administrators.
New-Item -ItemType Directory -Force -Path $OutDir | Out-Null
$scan = New-ScheduledTaskAction -Execute $Exe -Argument (
    'scan --config "{0}" --state "{1}\state.json" --format json --output "{1}\last-scan.json"' -f $Config, $OutDir)
# `report` exits 0 when it wrote its output, so the task shows success; the scan's own exit
# code (1 warning, 2 critical, 3 could not run) is the first action's, in the task's history.
$page = New-ScheduledTaskAction -Execute $Exe -Argument (
    'report --from "{0}\last-scan.json" --format html --output "{0}\kms-report.html"' -f $OutDir)
$metrics = New-ScheduledTaskAction -Execute $Exe -Argument (
    'report --from "{0}\last-scan.json" --format prometheus --output "{1}"' -f $OutDir, $Textfile)
$hourly = New-ScheduledTaskTrigger -Once -At (Get-Date).Date -RepetitionInterval (New-TimeSpan -Hours 1)
if ($Account) {
    # A gMSA logs on with a password only the domain knows: LogonType Password, no password given.
    $principal = New-ScheduledTaskPrincipal -UserId $Account -LogonType Password -RunLevel Limited
} else {
    $principal = New-ScheduledTaskPrincipal -UserId 'NT AUTHORITY\NETWORK SERVICE' -LogonType ServiceAccount
}
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit (New-TimeSpan -Minutes 15) -MultipleInstances IgnoreNew
Register-ScheduledTask -TaskName 'vlmcs-audit hourly' -Action $scan, $page, $metrics -Trigger $hourly `
    -Principal $principal -Settings $settings -Description 'Audit of the _vlmcs._tcp (KMS) SRV records' -Force
