# SPDX-License-Identifier: ISC
# Harness for the shell integration tests (POSIX sh).  Source it:
#
#     . "$TERN_SRCDIR/t/testlib.sh"
#     tern_setup                  # scratch dir $T, ports, $T/tern.conf
#     tern_start                  # run ternd, wait for its 220 banner
#     ... checks with ok / fail ...
#     tern_stop                   # SIGTERM, exit status in $TERN_STATUS
#     tern_finish                 # exit 0, or 1 if a check failed
#
# Nothing here sleeps a fixed time to wait for an event: tern_wait_for
# polls with a bound.  Only the ternd this script started is signalled.

TERN_PY=/usr/bin/python3
TERN_FAILED=0
TERN_PID=
TERN_TIMEOUT=${TERN_TIMEOUT:-20}

if [ -z "$TERN_SRCDIR" ]; then
    TERN_SRCDIR=$(cd "$(dirname "$0")/.." && pwd)
fi
if [ -z "$TERND" ]; then
    TERND=$(pwd)/ternd
fi

ok() {
    echo "ok: $*"
}

fail() {
    echo "FAIL: $*"
    TERN_FAILED=$((TERN_FAILED + 1))
}

# check DESCRIPTION COMMAND...: ok if the command succeeds.
check() {
    _what=$1
    shift
    if "$@"; then ok "$_what"; else fail "$_what"; fi
}

skip() {
    echo "SKIP: $*"
    exit 77
}

# A TCP port on 127.0.0.1 that nobody listens on (the kernel picks it).
tern_free_port() {
    "$TERN_PY" -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])'
}

# tern_wait_for COMMAND...: run COMMAND every 50 ms until it succeeds or
# TERN_TIMEOUT seconds pass; returns its last status.
tern_wait_for() {
    _tries=$((TERN_TIMEOUT * 20))
    while :; do
        if "$@"; then
            return 0
        fi
        _tries=$((_tries - 1))
        if [ "$_tries" -le 0 ]; then
            return 1
        fi
        sleep 0.05
    done
}

# tern_banner PORT: print the first reply line the SMTP server on PORT
# sends (empty if none), after sending QUIT.
tern_banner() {
    "$TERN_PY" -c 'import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=5)
    f = s.makefile("rb")
    line = f.readline().decode("utf-8", "replace").rstrip("\r\n")
    if line.startswith("220 "):
        s.sendall(b"QUIT\r\n")
        f.readline()
    print(line)
except OSError:
    pass' "$1"
}

tern_banner_ready() {
    case $(tern_banner "$1") in
    "220 "*) return 0 ;;
    esac
    return 1
}

# Write the basic test config to $T/tern.conf, then the lines of stdin if
# given a "-" argument.
tern_write_conf() {
    {
        echo "# test instance"
        echo "myhostname = mx.example.test"
        echo "queue_directory = $T/queue"
        echo "data_directory = $T/data"
        echo "mail_spool_directory = $T/mail/"
        echo "smtp_listen = 127.0.0.1:$PORT"
        echo "admin_listen = 127.0.0.1:$ADMIN_PORT"
        # The host's resolver is not the test's.
        echo "smtpd_peername_lookup = no"
        if [ "$1" = - ]; then
            cat
        fi
    } >"$T/tern.conf"
}

tern_cleanup() {
    if [ -n "$TERN_PID" ] && kill -0 "$TERN_PID" 2>/dev/null; then
        kill -KILL "$TERN_PID" 2>/dev/null
        wait "$TERN_PID" 2>/dev/null
    fi
    TERN_PID=
    if [ -n "$T" ] && [ -d "$T" ]; then
        if [ -n "$TERN_KEEP_TESTDIR" ]; then
            echo "test directory kept: $T"
        else
            rm -rf "$T"
        fi
    fi
}

# Make the scratch directory $T, pick $PORT and $ADMIN_PORT, write the
# config.  Removes everything at exit.
tern_setup() {
    if [ ! -x "$TERND" ]; then
        echo "FAIL: $TERND is not an executable"
        exit 1
    fi
    T=$(mktemp -d "${TMPDIR:-/tmp}/tern-test-XXXXXX") || exit 1
    trap tern_cleanup EXIT
    trap 'exit 1' INT TERM
    PORT=$(tern_free_port)
    ADMIN_PORT=$(tern_free_port)
    while [ "$ADMIN_PORT" = "$PORT" ]; do
        ADMIN_PORT=$(tern_free_port)
    done
    tern_write_conf
}

# tern_start [ARGS...]: start "$TERND -f -c $T/tern.conf ARGS" with its
# output appended to $T/log; wait until $TERN_PORT (default $PORT) sends
# a 220 banner.  Returns 1 (with the log shown) if it does not.  A port
# from tern_free_port is in the kernel's ephemeral range, where another
# program's outgoing connection may hold it for a moment: if ternd exits
# saying "Address already in use", it is started again (a bounded number
# of times).
tern_start() {
    # Started as root, ternd runs as mail_owner, which must reach $T.
    if [ "$(id -u)" = 0 ]; then
        chmod 755 "$T"
    fi
    _tries=20
    while :; do
        : >>"$T/log"
        _mark=$(wc -c <"$T/log")
        "$TERND" -f -c "$T/tern.conf" "$@" </dev/null >>"$T/log" 2>&1 &
        TERN_PID=$!
        if tern_wait_for tern_started "${TERN_PORT:-$PORT}" &&
            ! tern_exited; then
            return 0
        fi
        if ! tern_exited; then
            kill -KILL "$TERN_PID" 2>/dev/null
        fi
        wait "$TERN_PID" 2>/dev/null
        _tries=$((_tries - 1))
        if [ "$_tries" -gt 0 ] &&
            tail -c +"$((_mark + 1))" "$T/log" |
            grep -q "Address already in use"; then
            echo "a listening port is busy; starting ternd again"
            sleep 0.2
            continue
        fi
        TERN_PID=
        echo "ternd did not become ready; log:"
        cat "$T/log"
        return 1
    done
}

# Ready, or gone (then there is nothing to wait for).
tern_started() {
    tern_exited && return 0
    tern_banner_ready "$1"
}

# tern_stop: SIGTERM the ternd we started and wait; its exit status is
# left in TERN_STATUS (and returned).
tern_stop() {
    TERN_STATUS=
    if [ -z "$TERN_PID" ]; then
        return 1
    fi
    kill -TERM "$TERN_PID" 2>/dev/null
    if tern_wait_for tern_exited; then
        wait "$TERN_PID"
        TERN_STATUS=$?
    else
        echo "ternd did not exit within ${TERN_TIMEOUT}s of SIGTERM"
        kill -KILL "$TERN_PID" 2>/dev/null
        wait "$TERN_PID" 2>/dev/null
        TERN_STATUS=137
    fi
    TERN_PID=
    return "$TERN_STATUS"
}

tern_exited() {
    ! kill -0 "$TERN_PID" 2>/dev/null && return 0
    # A zombie (exited, not yet waited for) still answers kill -0.
    if [ -r "/proc/$TERN_PID/stat" ]; then
        _state=$(sed 's/.*) //' "/proc/$TERN_PID/stat" 2>/dev/null)
    else
        _state=$(ps -o stat= -p "$TERN_PID" 2>/dev/null)
    fi
    case $_state in
    Z*) return 0 ;;
    esac
    return 1
}

# tern_log_has FIXED-STRING: the log contains the text.
tern_log_has() {
    grep -F -q -e "$1" "$T/log" 2>/dev/null
}

tern_finish() {
    if [ "$TERN_FAILED" -ne 0 ]; then
        echo "$TERN_FAILED check(s) failed"
        if [ -n "$T" ] && [ -f "$T/log" ]; then
            echo "--- ternd log"
            cat "$T/log"
        fi
        exit 1
    fi
    echo "all checks passed"
    exit 0
}
