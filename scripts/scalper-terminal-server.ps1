# Windows, on the MetaTrader 5 terminal's host: serve the terminal to scalper elsewhere (the terminal bridge).
# The token comes from the environment: set it once for this Windows user (same value on the scalper side), e.g.
#   [Environment]::SetEnvironmentVariable('SCALPER_BRIDGE_TOKEN', '<a random token>', 'User')
# Usage: powershell -ExecutionPolicy Bypass -File scripts\scalper-terminal-server.ps1 [--port 18812] [TLS options]
# It listens on 127.0.0.1 only: reach it through an SSH or WireGuard tunnel (see README, "Trading from Linux").
Set-Location (Join-Path $PSScriptRoot '..')
& .\.venv\Scripts\scalper.exe terminal-server --host 127.0.0.1 @args
exit $LASTEXITCODE
