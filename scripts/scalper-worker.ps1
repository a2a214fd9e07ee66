# Windows, beside the MetaTrader 5 terminals: the Celery worker of this terminal host (README,
# "From one machine to a fleet"). Celery's solo pool: one pass at a time, in this process, which
# is also where the MetaTrader5 package talks to the terminals.
# The broker URL (and its password) and the ledger's password come from the environment: set them
# once for the Windows user that runs the terminals, e.g.
#   [Environment]::SetEnvironmentVariable('SCALPER_BROKER_URL', 'redis://:<password>@broker.example:6379/0', 'User')
#   [Environment]::SetEnvironmentVariable('PGPASSWORD', '<password>', 'User')
# Usage: powershell -ExecutionPolicy Bypass -File scripts\scalper-worker.ps1 -HostName vps1
# At logon, from Task Scheduler (one line, in an elevated prompt):
#   schtasks /Create /TN "scalper worker" /SC ONLOGON /RL LIMITED /TR "powershell -NoProfile -ExecutionPolicy Bypass -File C:\scalper\scripts\scalper-worker.ps1 -HostName vps1"
param([Parameter(Mandatory = $true)][string]$HostName)
Set-Location (Join-Path $PSScriptRoot '..')
while ($true) {
    & .\.venv\Scripts\scalper.exe worker --host $HostName --pool solo
    if ($LASTEXITCODE -eq 2) { exit 2 }   # bad config or host name: restarting would not help
    Start-Sleep -Seconds 5                 # the broker went away for good, or the worker crashed: again
}
