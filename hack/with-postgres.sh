#!/usr/bin/env bash
# Runs a command with TEST_DATABASE_URL pointing at a PostgreSQL server: the
# one already given, or a throwaway cluster started here and removed after.
# Beside a throwaway cluster it starts a PgBouncer in transaction pooling
# mode (hack/pgbouncer.sh) and exports its URL as TEST_PGBOUNCER_URL, and
# one in session pooling mode as TEST_PGBOUNCER_SESSION_URL; with
# TEST_DATABASE_URL given by hand, both are whatever was given (unset: the
# PgBouncer tests skip).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if [ -n "${TEST_DATABASE_URL:-}" ]; then
  exec "$@"
fi
dir=$(mktemp -d /tmp/qinqing-pg.XXXXXX)
cleanup() {
  "$here/pgbouncer.sh" stop "$dir/pgbouncer" || true
  "$here/pgbouncer.sh" stop "$dir/pgbouncer-session" || true
  "$here/pg.sh" stop "$dir" || true
  rm -rf "$dir"
}
trap cleanup EXIT
TEST_DATABASE_URL=$("$here/pg.sh" start "$dir")
export TEST_DATABASE_URL
echo "with-postgres: throwaway cluster at $TEST_DATABASE_URL" >&2
TEST_PGBOUNCER_URL=$("$here/pgbouncer.sh" start "$dir/pgbouncer" "$(cat "$dir/port")")
export TEST_PGBOUNCER_URL
echo "with-postgres: PgBouncer (transaction pooling) at $TEST_PGBOUNCER_URL" >&2
TEST_PGBOUNCER_SESSION_URL=$("$here/pgbouncer.sh" start "$dir/pgbouncer-session" "$(cat "$dir/port")" session)
export TEST_PGBOUNCER_SESSION_URL
echo "with-postgres: PgBouncer (session pooling) at $TEST_PGBOUNCER_SESSION_URL" >&2
"$@"
