# Windows (next to the MetaTrader 5 terminal): run the engine every 45 s in this console.
# Set broker passwords first, e.g.  $env:MT5_PASSWORD_1 = '...'
# Usage: powershell -ExecutionPolicy Bypass -File scripts\scalper-loop.ps1
Set-Location (Join-Path $PSScriptRoot '..')
& .\.venv\Scripts\scalper.exe loop --interval 45 @args
exit $LASTEXITCODE
