#!/usr/bin/env bash
# Serve the studio under daphne (ASGI) until Ctrl-C.
set -euo pipefail
host=${1:-127.0.0.1}
port=${2:-8000}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
echo
echo "AI Studio is starting on http://$host:$port/  (Ctrl-C stops it)"
echo "Log in as: demo / studio-demo"
echo
exec .venv/bin/daphne -b "$host" -p "$port" studio.asgi:application
