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
# History's search has a query of its own for each database
# (generation/reports/history.py): on a full run against PostgreSQL, its tests
# run on SQLite too, alongside the main run (on Redis databases of their own:
# the main run's workers take 15, 14, 13, 12). The catalogue's search ranks
# in memory, the same on every database, and runs once.
sqlite_log=""
if [ -n "${DATABASE_URL:-}" ]; then
  sqlite_log=$(mktemp)
  env -u DATABASE_URL STUDIO_TEST_REDIS_URL=redis://127.0.0.1:6379/11 \
    .venv/bin/pytest -q --durations=5 -p no:cacheprovider \
    tests/generation/test_history.py >"$sqlite_log" 2>&1 &
  sqlite_pid=$!
fi
# Four workers on two cores, a test module each at a time (its module fixtures
# stay whole):
# much of the suite waits on processes, streams and browsers, and the others
# run meanwhile. Each worker has its own test database and Redis database; the
# longest modules start first (tests/conftest.py). The slowest tests are
# printed at the end.
status=0
.venv/bin/pytest -n "${STUDIO_TEST_WORKERS:-4}" --dist loadfile || status=$?
if [ -n "$sqlite_log" ]; then
  sqlite_status=0
  wait "$sqlite_pid" || sqlite_status=$?
  echo "History search tests on SQLite:"
  cat "$sqlite_log"
  rm -f "$sqlite_log"
  [ "$sqlite_status" -eq 0 ] || status=$sqlite_status
fi
exit "$status"
