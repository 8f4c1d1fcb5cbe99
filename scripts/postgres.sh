#!/usr/bin/env bash
# A throwaway PostgreSQL on 127.0.0.1, for the end-to-end tests (sourced by scripts/test.sh).
#   postgres_start   start it (installing postgresql-15 with apt when absent and running as
#                    root); on success exports DEMANDBASE_E2E_POSTGRES_DSN (its URL) and
#                    DEMANDBASE_E2E_PSQL (a psql client) and returns 0
#   postgres_stop    stop it and delete its data
# The server lives in a temporary folder, listens on a free port of 127.0.0.1 only, trusts local
# connections and skips fsync: it holds nothing worth keeping. initdb refuses to run as root,
# so as root the server runs as a system user created here (tap-demandbase-pg).

PG_USER=tap-demandbase-pg

_pg_bin() {
  local dir
  for dir in "${PG_BIN:-}" /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    if [ -n "$dir" ] && [ -x "$dir/initdb" ] && [ -x "$dir/pg_ctl" ]; then
      echo "$dir"
      return 0
    fi
  done
  return 1
}

_pg_install() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 || return 1
  echo "==> Installing postgresql-15 (apt)" >&2
  apt-get update -qq >&2 &&
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
      postgresql-15 >&2
}

_pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u "$PG_USER" -- "$@"
  else
    "$@"
  fi
}

postgres_start() {
  local bin port
  bin=$(_pg_bin) || { _pg_install && bin=$(_pg_bin); } || {
    echo "No PostgreSQL binaries (and no root to apt-get install postgresql-15):" \
      "the Postgres end-to-end tests will be skipped." >&2
    return 1
  }
  PG_DATA=$(mktemp -d "${TMPDIR:-/tmp}/tap-demandbase-pg.XXXXXX")
  if [ "$(id -u)" = 0 ]; then
    id -u "$PG_USER" >/dev/null 2>&1 ||
      useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
    chown "$PG_USER" "$PG_DATA"
  fi
  port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  _pg_as_owner "$bin/initdb" -D "$PG_DATA/data" -U postgres --auth=trust -E UTF8 \
    --no-sync >"$PG_DATA/initdb.log" 2>&1 || {
    cat "$PG_DATA/initdb.log" >&2
    return 1
  }
  _pg_as_owner "$bin/pg_ctl" -D "$PG_DATA/data" -l "$PG_DATA/server.log" -w -t 60 start \
    -o "-p $port -k $PG_DATA -c listen_addresses=127.0.0.1 -c fsync=off \
        -c synchronous_commit=off -c full_page_writes=off" >/dev/null || {
    cat "$PG_DATA/server.log" >&2
    return 1
  }
  PG_CTL="$bin/pg_ctl"
  export DEMANDBASE_E2E_POSTGRES_DSN="postgresql://postgres@127.0.0.1:$port/postgres"
  export DEMANDBASE_E2E_PSQL="$bin/psql"
  [ -x "$DEMANDBASE_E2E_PSQL" ] || DEMANDBASE_E2E_PSQL=$(command -v psql)
  echo "==> $("$bin/postgres" --version) on 127.0.0.1:$port" >&2
}

postgres_stop() {
  if [ -n "${PG_DATA:-}" ] && [ -d "$PG_DATA" ]; then
    [ -n "${PG_CTL:-}" ] && _pg_as_owner "$PG_CTL" -D "$PG_DATA/data" -m immediate stop \
      >/dev/null 2>&1 || true
    rm -rf "$PG_DATA"
    PG_DATA=
  fi
}
