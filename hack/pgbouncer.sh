#!/usr/bin/env bash
# A throwaway PgBouncer in transaction pooling mode (or MODE: session) in
# front of a local PostgreSQL server, the way a shared cluster runs one.
#   hack/pgbouncer.sh start DIR PGPORT [MODE]   start on a free port, print the URL
#   hack/pgbouncer.sh stop DIR           stop the PgBouncer in DIR
# Installs Debian's pgbouncer package first when the binary is missing.
# As root, PgBouncer runs as the postgres user, so DIR (and its parents)
# must be reachable by that user. The `* =` line routes every database
# name to the server, so each test's cloned database is reachable too.
set -euo pipefail

ensure_binary() {
  if ! command -v pgbouncer >/dev/null && [ ! -x /usr/sbin/pgbouncer ]; then
    echo "pgbouncer.sh: installing pgbouncer (binary missing)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq pgbouncer >&2
  fi
  command -v pgbouncer 2>/dev/null || echo /usr/sbin/pgbouncer
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

# up PORT: whether PgBouncer answers a query on PORT.
up() {
  as_pg psql -h 127.0.0.1 -p "$1" -U postgres -d qinqing -tAc 'SELECT 1' >/dev/null 2>&1
}

cmd=${1:?usage: pgbouncer.sh start DIR PGPORT | stop DIR}
dir=${2:?usage: pgbouncer.sh start DIR PGPORT | stop DIR}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)

case "$cmd" in
start)
  pgport=${3:?usage: pgbouncer.sh start DIR PGPORT [MODE]}
  mode=${4:-transaction}
  case "$mode" in transaction|session) ;; *) echo "pgbouncer.sh: MODE is transaction or session, not $mode" >&2; exit 2 ;; esac
  bin=$(ensure_binary)
  if [ "$(id -u)" = 0 ]; then
    chmod 755 "$dir"
    chown postgres:postgres "$dir"
    p=$dir; while [ "$p" != / ]; do p=$(dirname "$p"); chmod o+x "$p" 2>/dev/null || true; done
  fi
  tries=0
  while :; do
    port=$((20000 + RANDOM % 20000))
    # auth_type = trust still looks the user up: in auth_file for the
    # owner, through auth_query (run as the owner) for every other role,
    # such as the functions' login roles the tests create.
    echo '"postgres" ""' >"$dir/userlist.txt"
    cat >"$dir/pgbouncer.ini" <<EOF
[databases]
* = host=127.0.0.1 port=$pgport

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/userlist.txt
auth_user = postgres
auth_query = SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = \$1
admin_users = postgres
pool_mode = $mode
default_pool_size = 20
max_client_conn = 2000
server_idle_timeout = 10
ignore_startup_parameters = extra_float_digits
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
EOF
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"/userlist.txt "$dir"/pgbouncer.ini
    rm -f "$dir/pgbouncer.pid"
    if as_pg "$bin" -d "$dir/pgbouncer.ini" >>"$dir/start.log" 2>&1; then
      for _ in $(seq 50); do
        up "$port" && break
        sleep 0.1
      done
      if up "$port"; then break; fi
      [ -f "$dir/pgbouncer.pid" ] && kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true
    fi
    tries=$((tries + 1))
    [ $tries -lt 5 ] || { tail -20 "$dir/pgbouncer.log" "$dir/start.log" >&2 || true; exit 1; }
  done
  echo "$port" >"$dir/port"
  echo "postgres://postgres@127.0.0.1:$port/qinqing?sslmode=disable"
  ;;
stop)
  if [ -f "$dir/pgbouncer.pid" ]; then
    pid=$(cat "$dir/pgbouncer.pid")
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  fi
  ;;
*)
  echo "usage: pgbouncer.sh start DIR PGPORT | stop DIR" >&2; exit 2 ;;
esac
