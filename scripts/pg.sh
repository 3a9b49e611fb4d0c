#!/usr/bin/env bash
# scripts/pg.sh — a throwaway, real PostgreSQL server for the test suite.
#
# Usage (called):
#   eval "$(scripts/pg.sh start)"   # start (or reuse) the server; stdout is ONE line,
#       export YUQING_TEST_PG_URL=postgresql+psycopg://postgres@127.0.0.1:PORT/yuqing_test
#   scripts/pg.sh stop              # stop it (no-op when not running)
#   scripts/pg.sh status            # exit 0 and print the port when running, exit 1 otherwise
#   scripts/pg.sh url               # print the URL of the running server (exit 1 when not running)
#   scripts/pg.sh psql [args...]    # open psql on the test database
#   scripts/pg.sh destroy           # stop and delete the data directory
# Usage (sourced):
#   source scripts/pg.sh start      # same as start, but exports YUQING_TEST_PG_URL into this shell
#
# Properties:
#   * data directory, log and unix-socket directory live under var/pgtest (var/ is gitignored);
#     if the PostgreSQL user cannot reach the repository (e.g. a checkout under /root, mode 0700) or the
#     socket path would be too long, var/pgtest becomes a symlink to /tmp/yuqing-pgtest-<hash>;
#   * listens on 127.0.0.1 only, port 54329 (or $YUQING_PG_PORT) — the next free port when busy;
#   * trust authentication (throwaway test server: anyone on this machine may connect), fsync off;
#   * never touches a system cluster: no pg_ctlcluster, no service; only initdb/pg_ctl on our own dir;
#   * installs PostgreSQL with apt-get when no server binaries exist (root on Debian only);
#   * as root it runs the server as the `postgres` user via runuser (PostgreSQL refuses root);
#     as a normal user it runs everything directly;
#   * re-running start is fast: an initialized data dir is reused, a running server is reused,
#     a stale postmaster.pid (crashed server, reused PID) is removed before starting.
#
# Environment knobs: YUQING_PG_PORT (preferred port), PG_BINDIR (directory holding initdb/pg_ctl).

# --- Sourced mode: run ourselves as a child process and eval the export line. ------------------------
# (Keeps `set -euo pipefail` and our helper functions out of the caller's shell.)
if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    if [[ "${1:-start}" == start ]]; then
        if _yuqing_pg_out="$(bash "${BASH_SOURCE[0]}" start)"; then
            eval "$_yuqing_pg_out"
            unset _yuqing_pg_out
        else
            unset _yuqing_pg_out
            return 1
        fi
    else
        bash "${BASH_SOURCE[0]}" "$@" || return
    fi
    return 0
fi

set -euo pipefail

REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
LINK="$REPO_ROOT/var/pgtest"
DB_NAME="yuqing_test"
DB_USER="postgres"
DEFAULT_PORT="${YUQING_PG_PORT:-54329}"
IS_ROOT=0
[[ "$(id -u)" == 0 ]] && IS_ROOT=1

# stdout is reserved for the export line; all chatter goes to stderr.
log() { printf 'pg.sh: %s\n' "$*" >&2; }
die() { printf 'pg.sh: ERROR: %s\n' "$*" >&2; exit 1; }

# Run a command as the server's OS user: `postgres` when we are root, ourselves otherwise.
# cd / first so the postgres user never needs access to the caller's cwd.
as_pg() {
    if [[ "$IS_ROOT" == 1 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

# --- PostgreSQL binaries --------------------------------------------------------------------------
# Newest /usr/lib/postgresql/<major>/bin that has initdb (Debian layout), else $PG_BINDIR, else
# whatever initdb is on PATH (non-Debian developer machines).
find_bindir() {
    if [[ -n "${PG_BINDIR:-}" && -x "${PG_BINDIR}/initdb" ]]; then
        printf '%s\n' "$PG_BINDIR"
        return 0
    fi
    local best="" initdb
    # `sort -V` orders 9.6 < 10 < 15 < 16 correctly.
    best="$(for initdb in /usr/lib/postgresql/*/bin/initdb; do
                [[ -x "$initdb" ]] && dirname "$initdb"
            done | sort -V | tail -n 1)"
    if [[ -z "$best" ]] && command -v initdb >/dev/null 2>&1; then
        best="$(dirname "$(command -v initdb)")"
    fi
    [[ -n "$best" ]] || return 1
    printf '%s\n' "$best"
}

install_postgres() {
    if [[ "$IS_ROOT" != 1 ]] || ! command -v apt-get >/dev/null 2>&1; then
        die "no PostgreSQL server binaries found (install PostgreSQL, or set PG_BINDIR)"
    fi
    log "installing PostgreSQL with apt-get (one-time)"
    export DEBIAN_FRONTEND=noninteractive
    # Keep the package's own system cluster from being *started* during installation (we never use
    # it): a temporary policy-rc.d refusing service starts is the standard Debian mechanism for this.
    # (Globals, not locals: the EXIT trap may run after this function has returned.)
    POLICY_FILE=/usr/sbin/policy-rc.d
    MADE_POLICY=0
    if [[ ! -e "$POLICY_FILE" ]]; then
        printf '#!/bin/sh\nexit 101\n' >"$POLICY_FILE" && chmod +x "$POLICY_FILE" && MADE_POLICY=1
        trap 'if [[ "$MADE_POLICY" == 1 ]]; then rm -f "$POLICY_FILE"; fi' EXIT
    fi
    apt-get update -qq >/dev/null || die "apt-get update failed"
    apt-get install -y -qq --no-install-recommends postgresql postgresql-client >/dev/null \
        || die "apt-get install postgresql failed"
    if [[ "$MADE_POLICY" == 1 ]]; then
        rm -f "$POLICY_FILE"
        MADE_POLICY=0
        trap - EXIT
    fi
}

BIN=""
need_bindir() {  # $1 = "install" to install PostgreSQL when missing
    BIN="$(find_bindir || true)"
    if [[ -z "$BIN" && "${1:-}" == install ]]; then
        install_postgres
        BIN="$(find_bindir || true)"
    fi
    [[ -n "$BIN" ]]
}

# --- Directory layout ----------------------------------------------------------------------------
BASE="" DATA="" SOCK="" LOGFILE="" PORTFILE=""

set_paths() {
    BASE="$1"
    DATA="$BASE/data"
    SOCK="$BASE/sock"
    LOGFILE="$BASE/server.log"
    PORTFILE="$BASE/port"
}

# Resolve the existing state directory without creating anything (for stop/status/destroy).
locate_base() {
    if [[ -L "$LINK" ]]; then
        set_paths "$(readlink -f "$LINK")"
    else
        set_paths "$LINK"
    fi
}

# Can the server's OS user create files in $1 (this includes traversing every parent directory)?
pg_can_use_dir() { as_pg test -w "$1" -a -x "$1" 2>/dev/null; }

# Create the state directory, owned by the server's OS user; fall back to /tmp when needed.
prepare_base() {
    mkdir -p "$REPO_ROOT/var"
    if [[ ! -e "$LINK" ]]; then
        # Unix socket paths are limited to 107 bytes: "<base>/sock/.s.PGSQL.NNNNN".
        local need_fallback=0
        (( ${#LINK} + 20 > 100 )) && need_fallback=1
        if [[ "$need_fallback" == 0 ]]; then
            mkdir -p "$LINK"
            if [[ "$IS_ROOT" == 1 ]]; then
                chown postgres: "$LINK"
                pg_can_use_dir "$LINK" || need_fallback=1
            fi
            [[ "$need_fallback" == 1 ]] && rmdir "$LINK"
        fi
        if [[ "$need_fallback" == 1 ]]; then
            local hash target
            hash="$(printf '%s' "$REPO_ROOT" | sha256sum | cut -c1-12)"
            target="${TMPDIR:-/tmp}/yuqing-pgtest-$hash"
            mkdir -p "$target"
            chmod 0700 "$target"
            ln -s "$target" "$LINK"
            log "using $target for the server (linked from var/pgtest)"
        fi
    fi
    locate_base
    mkdir -p "$BASE" "$SOCK"
    if [[ "$IS_ROOT" == 1 ]]; then
        # Data dir, socket dir and log must belong to `postgres`; chown -R only when needed.
        if [[ "$(stat -c %U "$BASE")" != postgres ]] \
            || [[ -e "$DATA" && "$(stat -c %U "$DATA")" != postgres ]]; then
            chown -R postgres: "$BASE"
        fi
        chown postgres: "$SOCK"
        pg_can_use_dir "$BASE" || die "user postgres cannot write to $BASE"
    fi
}

# --- Server state ---------------------------------------------------------------------------------
# PID of the postmaster recorded in postmaster.pid (empty when none).
recorded_pid() {
    if [[ -f "$DATA/postmaster.pid" ]]; then
        head -n 1 "$DATA/postmaster.pid" 2>/dev/null || true
    fi
}

# Is the postmaster recorded in postmaster.pid alive and really *our* server? On Linux we compare
# its command line with our data dir, which also catches a PID reused by an unrelated process.
server_alive() {
    local pid
    pid="$(recorded_pid)"
    [[ -n "$pid" ]] || return 1
    if [[ -r "/proc/$pid/cmdline" ]]; then
        tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -- "$DATA"
    elif [[ -d /proc/self ]]; then
        return 1   # Linux, and no such process
    else
        as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1
    fi
}

# The port of the running server, from line 4 of postmaster.pid.
running_port() { sed -n 4p "$DATA/postmaster.pid" 2>/dev/null; }

port_busy() {  # something accepts TCP connections on 127.0.0.1:$1
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

pick_port() {  # $1 = preferred port; prints the first free port at or after it
    local port="$1" tries=0
    while port_busy "$port"; do
        port=$((port + 1))
        tries=$((tries + 1))
        (( tries < 100 )) || die "no free port found from $1 upwards"
    done
    printf '%s\n' "$port"
}

wait_ready() {  # $1 = port
    local _
    for _ in $(seq 1 100); do
        as_pg "$BIN/pg_isready" -q -h "$SOCK" -p "$1" -U "$DB_USER" && return 0
        sleep 0.1
    done
    return 1
}

psql_admin() {  # run psql as the superuser against the maintenance database over TCP
    "$BIN/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$PORT" -U "$DB_USER" -d postgres "$@"
}

# --- Commands -------------------------------------------------------------------------------------
init_cluster() {
    local major
    major="$("$BIN/pg_config" --version 2>/dev/null | sed -E 's/^PostgreSQL ([0-9]+).*/\1/' || true)"
    if [[ -f "$DATA/PG_VERSION" ]]; then
        # Reuse the initialized data dir unless it was made by another major version.
        [[ -z "$major" || "$(cat "$DATA/PG_VERSION")" == "$major" ]] && return 0
        log "data dir is from PostgreSQL $(cat "$DATA/PG_VERSION"), binaries are $major: re-initializing"
    fi
    as_pg rm -rf "$DATA"
    log "initializing $DATA"
    as_pg "$BIN/initdb" -D "$DATA" -U "$DB_USER" -A trust -E UTF8 --locale=C --no-sync \
        >"$BASE/initdb.log" 2>&1 || { cat "$BASE/initdb.log" >&2; die "initdb failed"; }
    # Our per-start settings live in yuqing_test.conf, included from postgresql.conf.
    as_pg sh -c "printf \"\\ninclude_if_exists = 'yuqing_test.conf'\\n\" >> '$DATA/postgresql.conf'"
}

write_conf() {  # $1 = port
    as_pg sh -c "cat > '$DATA/yuqing_test.conf'" <<EOF
# Written by scripts/pg.sh on every start — throwaway test server, durability off for speed.
port = $1
listen_addresses = '127.0.0.1'
unix_socket_directories = '$SOCK'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
log_min_messages = warning
EOF
}

cmd_start() {
    need_bindir install || die "PostgreSQL binaries still not found after installation"
    prepare_base
    init_cluster

    if server_alive; then
        PORT="$(running_port)"
        wait_ready "$PORT" || die "server (pid $(recorded_pid)) is running but not accepting connections"
        log "reusing running server on port $PORT"
    else
        if [[ -f "$DATA/postmaster.pid" ]]; then
            log "removing stale postmaster.pid (pid $(recorded_pid) is not our server)"
            as_pg rm -f "$DATA/postmaster.pid"
        fi
        as_pg sh -c "rm -f '$SOCK'/.s.PGSQL.*"
        local preferred="$DEFAULT_PORT" _
        for _ in 1 2 3 4 5; do
            PORT="$(pick_port "$preferred")"
            write_conf "$PORT"
            if as_pg "$BIN/pg_ctl" -D "$DATA" -l "$LOGFILE" -w -t 60 start >/dev/null 2>&1; then
                break
            fi
            # Lost a race for the port? Try the next one; otherwise report the server log.
            if tail -n 20 "$LOGFILE" 2>/dev/null | grep -qiE 'could not bind|address already in use'; then
                preferred=$((PORT + 1))
                continue
            fi
            tail -n 20 "$LOGFILE" >&2 || true
            die "pg_ctl start failed (log: $LOGFILE)"
        done
        server_alive || die "could not start PostgreSQL (log: $LOGFILE)"
        wait_ready "$PORT" || die "server did not become ready (log: $LOGFILE)"
        printf '%s\n' "$PORT" >"$PORTFILE" 2>/dev/null || as_pg sh -c "echo $PORT > '$PORTFILE'"
        log "started PostgreSQL ($(basename "$(dirname "$BIN")")) on 127.0.0.1:$PORT"
    fi

    if [[ "$(psql_admin -tA -c "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]]; then
        psql_admin -c "CREATE DATABASE $DB_NAME" >/dev/null
        log "created database $DB_NAME"
    fi
    printf 'export YUQING_TEST_PG_URL=postgresql+psycopg://%s@127.0.0.1:%s/%s\n' "$DB_USER" "$PORT" "$DB_NAME"
}

cmd_stop() {
    locate_base
    if [[ ! -f "$DATA/postmaster.pid" ]]; then
        log "not running"
        return 0
    fi
    need_bindir || { log "not running (no PostgreSQL binaries)"; return 0; }
    if server_alive; then
        as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w -t 60 stop >/dev/null
        log "stopped"
    else
        as_pg rm -f "$DATA/postmaster.pid"
        log "not running (removed stale postmaster.pid)"
    fi
}

cmd_status() {
    locate_base
    need_bindir || { echo "not running"; return 1; }
    if server_alive; then
        echo "running on 127.0.0.1:$(running_port) (data: $DATA)"
    else
        echo "not running"
        return 1
    fi
}

cmd_url() {
    locate_base
    if ! need_bindir || ! server_alive; then
        log "not running"
        return 1
    fi
    printf 'postgresql+psycopg://%s@127.0.0.1:%s/%s\n' "$DB_USER" "$(running_port)" "$DB_NAME"
}

cmd_psql() {
    locate_base
    if ! need_bindir || ! server_alive; then
        die "not running (run: scripts/pg.sh start)"
    fi
    exec "$BIN/psql" -h 127.0.0.1 -p "$(running_port)" -U "$DB_USER" -d "$DB_NAME" "$@"
}

cmd_destroy() {
    cmd_stop
    locate_base
    rm -rf "$BASE"
    [[ -L "$LINK" ]] && rm -f "$LINK"
    log "removed $BASE"
}

PORT=""
case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    url) cmd_url ;;
    psql) shift; cmd_psql "$@" ;;
    destroy) cmd_destroy ;;
    *) printf 'usage: %s start|stop|status|url|psql|destroy\n' "$0" >&2; exit 2 ;;
esac
