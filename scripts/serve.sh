#!/usr/bin/env bash
# Serve the studio under daphne (ASGI) with a Celery worker for image
# generations, until Ctrl-C stops both. Without REDIS_URL the worker uses the
# embedded broker (files under var/), so nothing else needs to run.
set -euo pipefail
host=${1:-127.0.0.1}
port=${2:-8000}
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
mkdir -p var
# The demo's settings (studio/settings.py): plain HTTP, static files from the
# source folders, the demo login on the login page, and DEBUG off, so that
# people meet the studio's own pages (a mistyped address included).
export STUDIO_DEMO=${STUDIO_DEMO:-true}
.venv/bin/celery -A studio.celery:app worker --loglevel WARNING --concurrency 2 \
  --hostname "demo-worker@%h" >var/worker.log 2>&1 &
worker=$!
stop_worker() {
  kill -TERM "$worker" 2>/dev/null || true
  wait "$worker" 2>/dev/null || true
}
trap stop_worker EXIT INT TERM
echo
echo "AI Studio is starting on http://$host:$port/  (Ctrl-C stops it)"
echo "Image worker: pid $worker, log in var/worker.log"
echo "Log in as: demo / studio-demo"
echo
.venv/bin/daphne -b "$host" -p "$port" studio.asgi:application
