#!/usr/bin/env bash
# Runs the engine every 45 seconds in the foreground until stopped (Ctrl-C / SIGTERM).
# Usage: scripts/scalper-loop.sh [--interval 45] [--config bots.yaml]
set -euo pipefail
cd "$(dirname "$0")/.."
exec ./.venv/bin/scalper loop "$@"
