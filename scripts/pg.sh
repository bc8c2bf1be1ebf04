#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for tests.
#
#   scripts/pg.sh start DIR   # prints postgresql://postgres@127.0.0.1:PORT/wanglai_test
#   scripts/pg.sh stop DIR    # stops the cluster and removes DIR
#
# DIR only holds bookkeeping (url, port, pgroot). The cluster itself lives in a
# fresh mktemp dir under /tmp owned by the server user, because DIR may sit
# under a root-only path (e.g. pytest's tmp dirs) that `postgres` can't enter.
# PostgreSQL refuses to run as root, so as root the server runs as the
# unprivileged `postgres` user; as any other user it runs as that user.
# Only the URL goes to stdout; everything else goes to stderr.
set -euo pipefail

DBNAME=wanglai_test
READY_TIMEOUT=30

log() { echo "pg.sh: $*" >&2; }
die() { log "$*"; exit 1; }

usage() { die "usage: $0 start|stop DIR"; }

find_pg_bin() {
    local d
    if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v pg_ctl)")"
        return 0
    fi
    # Newest version first.
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        if [[ -x "$d/initdb" && -x "$d/pg_ctl" ]]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

ensure_pg_bin() {
    if PGBIN=$(find_pg_bin); then return 0; fi
    [[ $(id -u) -eq 0 ]] || die "initdb/pg_ctl not found; install PostgreSQL (apt-get install postgresql)"
    log "PostgreSQL not found; installing it with apt-get"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update >&2
    apt-get install -y postgresql >&2
    PGBIN=$(find_pg_bin) || die "initdb/pg_ctl still not found after installing postgresql"
}

# Run a command as the server user.
as_pg() {
    if [[ $(id -u) -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

cmd_start() {
    local dir=$1
    ensure_pg_bin
    if [[ $(id -u) -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
        log "creating system user postgres"
        useradd --system --no-create-home postgres
    fi

    mkdir -p "$dir"
    [[ ! -e "$dir/pgroot" ]] || die "$dir already holds a cluster; run '$0 stop $dir' first"

    local root data port
    root=$(mktemp -d /tmp/wanglai-pg.XXXXXX)
    echo "$root" >"$dir/pgroot"
    data=$root/data
    if [[ $(id -u) -eq 0 ]]; then chown postgres: "$root"; fi
    chmod 700 "$root"

    as_pg "$PGBIN/initdb" -D "$data" --auth=trust -U postgres -E UTF8 --no-locale \
        >"$root/initdb.log" 2>&1 || { cat "$root/initdb.log" >&2; die "initdb failed"; }

    # The port is picked before the server binds it, so retry on a lost race.
    local attempt ok=0
    for attempt in 1 2 3; do
        port=$(free_port)
        as_pg tee "$data/postgresql.auto.conf" >/dev/null <<EOF
# written by scripts/pg.sh
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$root'
fsync = on
synchronous_commit = on
full_page_writes = on
max_connections = 200
EOF
        if as_pg "$PGBIN/pg_ctl" -D "$data" -l "$root/server.log" -w -t "$READY_TIMEOUT" start >&2; then
            ok=1
            break
        fi
        log "start attempt $attempt on port $port failed"
        tail -n 20 "$root/server.log" >&2 || true
    done
    [[ $ok -eq 1 ]] || die "could not start PostgreSQL (log: $root/server.log)"
    echo "$port" >"$dir/port"

    # Bounded readiness wait (pg_ctl -w already waits; this also checks TCP).
    local i
    for ((i = 0; i < READY_TIMEOUT * 2; i++)); do
        if "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres; then break; fi
        sleep 0.5
    done
    "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres -d postgres \
        || die "PostgreSQL not ready on port $port after ${READY_TIMEOUT}s (log: $root/server.log)"

    "$PGBIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$DBNAME" >&2

    local url="postgresql://postgres@127.0.0.1:$port/$DBNAME"
    echo "$url" >"$dir/url"
    echo "$url"
}

cmd_stop() {
    local dir=$1 root
    if [[ ! -f "$dir/pgroot" ]]; then
        log "no cluster recorded in $dir"
        rm -rf "$dir"
        return 0
    fi
    root=$(cat "$dir/pgroot")
    if [[ -f "$root/data/postmaster.pid" ]]; then
        PGBIN=$(find_pg_bin) || die "pg_ctl not found"
        as_pg "$PGBIN/pg_ctl" -D "$root/data" -m fast -w -t "$READY_TIMEOUT" stop >&2 \
            || log "pg_ctl stop failed (log: $root/server.log)"
    fi
    case "$root" in
        /tmp/wanglai-pg.*) rm -rf "$root" ;;
        *) log "not removing unexpected cluster path '$root'" ;;
    esac
    rm -rf "$dir"
}

[[ $# -eq 2 ]] || usage
case "$1" in
    start) cmd_start "$2" ;;
    stop) cmd_stop "$2" ;;
    *) usage ;;
esac
