#!/usr/bin/env bash
# Throwaway PostgreSQL clusters from the machine's PostgreSQL 15 binaries.
#   hack/pg.sh start DIR [PORT]   initialise DIR if new, start, print the URL
#   hack/pg.sh stop DIR           stop the cluster in DIR
# Installs the Debian postgresql package first when the binaries are missing.
# As root, initdb must run as the postgres user, so DIR (and its parents)
# must be reachable by that user.
set -euo pipefail

pgbin() {
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  return 1
}

ensure_binaries() {
  if ! pgbin >/dev/null; then
    echo "pg.sh: installing postgresql (binaries missing)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >&2
  fi
  pgbin
}

as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

cmd=${1:?usage: pg.sh start|stop DIR [PORT]}
dir=${2:?usage: pg.sh start|stop DIR [PORT]}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
bin=$(ensure_binaries)

case "$cmd" in
start)
  port=${3:-}
  if [ "$(id -u)" = 0 ]; then
    chmod 755 "$dir"
    chown postgres:postgres "$dir"
    # every parent must be traversable by postgres
    p=$dir; while [ "$p" != / ]; do p=$(dirname "$p"); chmod o+x "$p" 2>/dev/null || true; done
  fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 --no-sync >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  if [ -f "$dir/port" ] && [ -z "$port" ]; then port=$(cat "$dir/port"); fi
  if as_pg "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
    port=$(cat "$dir/port")
  else
    tries=0
    while :; do
      [ -n "$port" ] || port=$((20000 + RANDOM % 20000))
      if as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 start \
          -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" >/dev/null; then
        break
      fi
      tries=$((tries + 1))
      [ $tries -lt 5 ] || { tail -20 "$dir/server.log" >&2; exit 1; }
      port=
    done
    echo "$port" >"$dir/port"
  fi
  as_pg "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -tAc "SELECT 1 FROM pg_database WHERE datname='qinqing'" | grep -q 1 \
    || as_pg "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres qinqing
  echo "postgres://postgres@127.0.0.1:$port/qinqing?sslmode=disable"
  ;;
stop)
  if [ -f "$dir/data/PG_VERSION" ]; then
    as_pg "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true
  fi
  ;;
*)
  echo "usage: pg.sh start|stop DIR [PORT]" >&2; exit 2 ;;
esac
