# Registers an hourly Windows Task Scheduler job that runs vlmcs-audit and keeps an HTML
# fix-it report and a JSON scan next to it. Run in an elevated PowerShell.
#   .\register-task.ps1 -Exe 'C:\Tools\vlmcs-audit.exe' -Config 'C:\ProgramData\vlmcs-audit\audit.yaml'
param(
    [string]$Exe = 'C:\Tools\vlmcs-audit.exe',
    [string]$Config = 'C:\ProgramData\vlmcs-audit\audit.yaml',
    [string]$OutDir = 'C:\ProgramData\vlmcs-audit'
)
# The output folder must exist before the first run.
New-Item -ItemType Directory -Force -Path $OutDir | Out-Null
# One scan per run, with the state file (drift findings need the history); the page from it.
# `report` exits 0 when it wrote its page, so the task shows success; the scan's own exit code
# (1 warning, 2 critical) is in the task's history.
$scan   = New-ScheduledTaskAction -Execute $Exe -Argument ('scan --config "{0}" --state "{1}\state.json" --format json --output "{1}\scan.json"' -f $Config, $OutDir)
$report = New-ScheduledTaskAction -Execute $Exe -Argument ('report --from "{0}\scan.json" --format html --output "{0}\kms-report.html"' -f $OutDir)
$hourly = New-ScheduledTaskTrigger -Once -At (Get-Date).Date -RepetitionInterval (New-TimeSpan -Hours 1)
# A gMSA or a service account; the scan needs no rights beyond DNS queries and TCP to port 1688.
$principal = New-ScheduledTaskPrincipal -UserId 'NT AUTHORITY\NETWORK SERVICE' -LogonType ServiceAccount
$settings  = New-ScheduledTaskSettingsSet -ExecutionTimeLimit (New-TimeSpan -Minutes 15) -MultipleInstances IgnoreNew
Register-ScheduledTask -TaskName 'vlmcs-audit hourly' -Action $scan, $report -Trigger $hourly `
    -Principal $principal -Settings $settings -Description 'Audit of the _vlmcs._tcp (KMS) SRV records' -Force
