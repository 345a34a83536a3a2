#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the test suite, for a machine that has
# none (a laptop, most CI images): Debian's `postgresql` package, installed
# when missing, and a cluster in a directory of the caller's, on a free
# port, trusting local connections.
#
#   scripts/test-postgres.sh start DIR   starts one in DIR; prints its URL
#   scripts/test-postgres.sh stop DIR    stops it (DIR is left to the caller)
set -euo pipefail

command=${1:?start or stop}
dir=${2:?a directory for the cluster}

server_bin() {
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1
}

# As the cluster's owner: PostgreSQL refuses to run as root.
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "$command" in
start)
  if [ -z "$(server_bin)" ]; then
    # The package would create and start a cluster of its own on 5432;
    # only ours is wanted.
    mkdir -p /etc/postgresql-common
    [ -e /etc/postgresql-common/createcluster.conf ] ||
      echo "create_main_cluster = false" >/etc/postgresql-common/createcluster.conf
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq postgresql >/dev/null
  fi
  bin=$(server_bin)
  [ -n "$bin" ] || { echo "no PostgreSQL server binaries under /usr/lib/postgresql" >&2; exit 1; }
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$dir"
  fi
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  as_owner "$bin/initdb" -D "$dir/data" --auth=trust --username=postgres --encoding=UTF8 >"$dir/initdb.log"
  # The suite runs many pools at once (a store per check, several nodes
  # per cluster test): room for them all.
  as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=500" start >&2
  echo "postgres://postgres@127.0.0.1:$port/postgres"
  ;;
stop)
  bin=$(server_bin)
  if [ -n "$bin" ] && [ -d "$dir/data" ]; then
    as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >&2 || true
  fi
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2
  exit 2
  ;;
esac
