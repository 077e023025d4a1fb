#!/usr/bin/env bash
# Runs a command with TEST_DATABASE_URL pointing at a PostgreSQL server: the
# one already given, or a throwaway cluster started here and removed after.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  exec "$@"
fi
dir=$(mktemp -d /tmp/qinqing-pg.XXXXXX)
cleanup() { "$here/pg.sh" stop "$dir" || true; rm -rf "$dir"; }
trap cleanup EXIT
TEST_DATABASE_URL=$("$here/pg.sh" start "$dir")
export TEST_DATABASE_URL
echo "with-postgres: throwaway cluster at $TEST_DATABASE_URL" >&2
"$@"
