#!/usr/bin/env bash
# pg.sh: a throwaway PostgreSQL 15 cluster for tests.
#
#   pg.sh start  DIR [--durable] [--conf 'name = value']...
#                      initdb into DIR/data, start on a free port of 127.0.0.1 (unix socket in
#                      DIR/sock), password (scram) auth over TCP; writes DIR/env (PG* + DATABASE_URL)
#                      Fast by default (fsync, synchronous_commit, full_page_writes off: a server
#                      that may lose commits, fine for tests that never crash it). --durable (or
#                      ETLUA_PG_DURABLE=1) keeps Postgres's production defaults (all three on), as
#                      the fault tests need; --conf adds a line to postgresql.conf after them.
#   pg.sh pause  DIR   stop the server (fast shutdown), keep data and port (fault tests)
#   pg.sh crash  DIR   stop it as a crash would (pg_ctl -m immediate: no checkpoint, WAL buffers
#                      lost); resume starts it again, with crash recovery
#   pg.sh resume DIR   start it again on the same port
#   pg.sh stop   DIR   stop the server and remove DIR (idempotent)
#
# Postgres refuses to run as root: when run as root the server runs as the system user
# ETLUA_PG_OSUSER (default: etlua-pg, created when missing; falls back to postgres).
set -euo pipefail

PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
DB_USER=etlua
DB_NAME=etlua

die() { echo "pg.sh: $*" >&2; exit 1; }

os_user() {
    if [ -n "${ETLUA_PG_OSUSER:-}" ]; then echo "$ETLUA_PG_OSUSER"; return; fi
    if id -u etlua-pg >/dev/null 2>&1; then echo etlua-pg; return; fi
    # Concurrent starts may race on useradd: whoever loses sees the user afterwards.
    useradd --system --no-create-home --shell /usr/sbin/nologin etlua-pg >/dev/null 2>&1 || true
    if id -u etlua-pg >/dev/null 2>&1; then echo etlua-pg; return; fi
    if id -u postgres >/dev/null 2>&1; then echo postgres; return; fi
    die "no non-root user to run postgres as"
}

as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u "$(cat "$DIR/osuser")" -- "$@"; else "$@"; fi
}

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

server_start() { as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/log" -w -t 30 start >/dev/null; }

server_stop() { # $1: fast | immediate
    if [ -f "$DIR/data/postmaster.pid" ]; then
        as_pg "$PGBIN/pg_ctl" -D "$DIR/data" -m "$1" -w -t 30 stop >/dev/null 2>&1 || true
    fi
}

cmd_start() {
    [ -e "$DIR/data" ] && die "$DIR/data already exists (use resume, or stop first)"
    mkdir -p "$DIR/sock"
    if [ "$(id -u)" = 0 ]; then os_user >"$DIR/osuser"; else id -un >"$DIR/osuser"; fi
    local password
    # letters g-z only (32 of them, ~138 bits): etlua keeps every 4-character piece of the
    # password out of its log lines, so a hex password with a digit run such as "5000" turned a
    # logged count into *** now and then; no count, rate or time has these letters
    # (4 KiB of random bytes hold ~320 of them; read whole, so no pipe is cut short)
    password=$(head -c 4096 /dev/urandom | LC_ALL=C tr -dc 'g-z')
    password=${password:0:32}
    printf '%s\n' "$password" >"$DIR/pwfile"
    chmod 700 "$DIR"
    if [ "$(id -u)" = 0 ]; then chown -R "$(cat "$DIR/osuser")" "$DIR"; fi

    as_pg "$PGBIN/initdb" -D "$DIR/data" -U "$DB_USER" --pwfile="$DIR/pwfile" -E UTF8 \
        --locale=C --auth-host=scram-sha-256 --auth-local=trust --no-sync >"$DIR/initdb.log" 2>&1 \
        || { cat "$DIR/initdb.log" >&2; die "initdb failed"; }
    rm -f "$DIR/pwfile"
    local speed="fsync = off
synchronous_commit = off
full_page_writes = off"
    if [ "$DURABLE" = 1 ]; then speed="fsync = on
synchronous_commit = on
full_page_writes = on"; fi
    as_pg tee -a "$DIR/data/postgresql.conf" >/dev/null <<EOF
listen_addresses = '127.0.0.1'
unix_socket_directories = '$DIR/sock'
$speed
$EXTRA_CONF
max_connections = 60
include_if_exists = 'etlua_port.conf'
EOF
    # A free port: probe, then let the server confirm it (another start may grab it meanwhile).
    local port
    for _ in 1 2 3 4 5 6 7 8; do
        port=$(( 20000 + (RANDOM * 32768 + RANDOM) % 40000 ))
        port_in_use "$port" && continue
        echo "port = $port" | as_pg tee "$DIR/data/etlua_port.conf" >/dev/null
        if server_start; then break; fi
        port=
    done
    [ -n "$port" ] || { cat "$DIR/log" >&2; die "could not start postgres"; }
    as_pg "$PGBIN/createdb" -h "$DIR/sock" -p "$port" -U "$DB_USER" "$DB_NAME"
    cat >"$DIR/env" <<EOF
export PGHOST=127.0.0.1 PGPORT=$port PGUSER=$DB_USER PGPASSWORD=$password PGDATABASE=$DB_NAME
export DATABASE_URL=postgresql://$DB_USER:$password@127.0.0.1:$port/$DB_NAME
EOF
}

cmd_stop() {
    [ -d "$DIR" ] || return 0
    [ -f "$DIR/osuser" ] && server_stop immediate
    rm -rf "$DIR"
}

[ $# -ge 2 ] || die "usage: pg.sh start|stop|pause|crash|resume DIR [--durable] [--conf LINE]..."
CMD=$1 DIR_ARG=$2
shift 2
DURABLE=${ETLUA_PG_DURABLE:-0} EXTRA_CONF=""
while [ $# -gt 0 ]; do
    case "$1" in
        --durable) DURABLE=1 ;;
        --conf) [ $# -ge 2 ] || die "--conf needs a value"; EXTRA_CONF+="$2"$'\n'; shift ;;
        *) die "unknown option $1" ;;
    esac
    shift
done
set -- "$CMD" "$DIR_ARG"
mkdir -p "$2" 2>/dev/null || true
[ "$1" = stop ] && [ ! -d "$2" ] && exit 0
DIR=$(cd "$2" && pwd)
case "$1" in
    start)  cmd_start ;;
    stop)   cmd_stop ;;
    pause)  [ -f "$DIR/env" ] || die "$DIR: not a cluster"; server_stop fast ;;
    crash)  [ -f "$DIR/env" ] || die "$DIR: not a cluster"; server_stop immediate ;;
    resume) [ -f "$DIR/env" ] || die "$DIR: not a cluster"; server_start ;;
    *)      die "unknown command $1" ;;
esac
