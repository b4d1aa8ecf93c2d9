#!/usr/bin/env bash
# Run the whole suite. Uses PostgreSQL at 127.0.0.1:5432 when it is reachable
# (required in CI), SQLite otherwise; the browser tests serve the studio on
# SQLite exactly as `make demo` does.
set -euo pipefail
cd "$(dirname "$0")/.."
reachable() {
  .venv/bin/python - "$1" "$2" <<'PY'
import socket, sys
try:
    socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=1).close()
except OSError:
    sys.exit(1)
PY
}
if [ -z "${DATABASE_URL:-}" ]; then
  if reachable 127.0.0.1 5432; then
    export DATABASE_URL="postgres://postgres@127.0.0.1:5432/studio"
  elif [ "${CI:-}" = "true" ]; then
    echo "PostgreSQL at 127.0.0.1:5432 is required in CI and is not reachable." >&2
    exit 1
  else
    echo "PostgreSQL is not reachable: running on SQLite."
  fi
fi
echo "Database: ${DATABASE_URL:-sqlite}"
export DJANGO_SECURE_SSL_REDIRECT=false
.venv/bin/ruff check --quiet .
# The layers (pyproject.toml): no upward import, no cycle.
.venv/bin/lint-imports --no-cache >/dev/null || .venv/bin/lint-imports --no-cache
# Migrations must match the models (checked without touching the test server's databases).
env -u DATABASE_URL .venv/bin/python manage.py makemigrations --check --dry-run >/dev/null
if [ $# -gt 0 ]; then
  exec .venv/bin/pytest "$@"
fi
# Two workers, a test module each at a time (its module fixtures stay whole):
# much of the suite waits on processes, streams and browsers, and the other
# worker runs meanwhile. Each worker has its own test database and Redis database.
parallel=(-n 2 --dist loadfile)
.venv/bin/pytest "${parallel[@]}"
# The tests with real processes (and timing) run once more in CI, to show
# that they hold on a loaded machine rather than pass by luck.
if [ "${CI:-}" = "true" ]; then
  echo "Process tests, a second time:"
  .venv/bin/pytest -q "${parallel[@]}" --durations=0 --durations-min=5 \
    tests/generation/test_processes.py tests/generation/test_slots_processes.py \
    tests/generation/test_image_worker.py tests/generation/test_redis_restart.py
fi
# Search behaves differently per database: on a full run against PostgreSQL,
# run the search tests on SQLite too.
if [ -n "${DATABASE_URL:-}" ]; then
  echo "Search tests on SQLite:"
  env -u DATABASE_URL .venv/bin/pytest -q "${parallel[@]}" --durations=0 --durations-min=5 \
    tests/generation/test_history.py tests/templates_catalog/test_search.py \
    tests/templates_catalog/test_search_relevance.py
fi
