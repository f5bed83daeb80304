# SPDX-License-Identifier: ISC
# Configuration parsing as ternd's users see it: bad values stop ternd
# before it listens and name file:line, unknown names only warn, -n
# prints the raw changed parameters in name order, -o wins over the file,
# TERN_CONFIG names the file when there is no -c, and $name expansion
# with its ${name?text} and ${name:text} forms.

. "${TERN_SRCDIR:-$(dirname "$0")/..}/t/testlib.sh"

tern_setup
CONF=$T/tern.conf

# expect_bad NAME VALUE TEXT: a file setting NAME = VALUE on its last line
# makes ternd exit 1 with "FILE:LINE: TEXT" on stderr.
expect_bad() {
    tern_write_conf
    echo "$1 = $2" >>"$CONF"
    _line=$(wc -l <"$CONF" | tr -d ' ')
    timeout 20 "$TERND" -f -c "$CONF" </dev/null >"$T/out" 2>"$T/err"
    _status=$?
    _what="$1 = $2 exits 1 naming $CONF:$_line"
    if [ "$_status" -ne 1 ]; then
        fail "$_what (exit status $_status)"
        sed 's/^/    /' "$T/err"
        return
    fi
    if grep -F -q -e "$CONF:$_line: $3" "$T/err"; then
        ok "$_what"
    else
        fail "$_what: no \"$CONF:$_line: $3\" in stderr:"
        sed 's/^/    /' "$T/err"
    fi
}

echo "checking that bad values stop ternd with file:line"
expect_bad smtpd_timeout abc "bad value for smtpd_timeout"
expect_bad message_size_limit -5 "bad value for message_size_limit"
expect_bad message_size_limit 10x "bad value for message_size_limit"
expect_bad smtp_listen 127.0.0.1:70000 "bad value for smtp_listen"
expect_bad smtp_listen no-port "bad value for smtp_listen"
expect_bad local_recipient_maps texthash:/nonexistent \
    "bad value for local_recipient_maps: /nonexistent: cannot open: "
expect_bad cleanup_threads 0 "bad value for cleanup_threads"
expect_bad milter_default_action bogus \
    "bad value for milter_default_action: \"bogus\" is not accept, reject"
expect_bad home_mailbox ../x "bad value for home_mailbox"
expect_bad relay_domains /nonexistent/list "bad value for relay_domains"
expect_bad content_filter nosuch:[127.0.0.1]:10024 \
    "bad value for content_filter"

echo "checking that a line without '=' stops ternd"
tern_write_conf
echo "smtpd_timeout 30s" >>"$CONF"
line=$(wc -l <"$CONF" | tr -d ' ')
timeout 20 "$TERND" -f -c "$CONF" </dev/null >"$T/out" 2>"$T/err"
status=$?
if [ "$status" -eq 1 ] &&
    grep -F -q -e "$CONF:$line: missing '=' after parameter name" "$T/err"
then
    ok "line without '=' exits 1 with $CONF:$line: missing '='"
else
    fail "line without '=': exit status $status, stderr:"
    sed 's/^/    /' "$T/err"
fi

echo "checking that a bad -o value stops ternd and names the option"
tern_write_conf
timeout 20 "$TERND" -f -c "$CONF" -o smtpd_timeout=abc </dev/null \
    >"$T/out" 2>"$T/err"
status=$?
if [ "$status" -eq 1 ] &&
    grep -F -q -e "-o smtpd_timeout: bad value for smtpd_timeout" "$T/err"
then
    ok "-o smtpd_timeout=abc exits 1 with \"-o smtpd_timeout: ...\""
else
    fail "-o smtpd_timeout=abc: exit status $status, stderr:"
    sed 's/^/    /' "$T/err"
fi

echo "checking that an unknown parameter warns with file:line and ternd runs"
tern_write_conf
echo "no_such_parameter = 1" >>"$CONF"
line=$(wc -l <"$CONF" | tr -d ' ')
: >"$T/log"
if tern_start; then
    ok "ternd starts with an unknown parameter in the file"
    check "warning names $CONF:$line and the parameter" \
        tern_log_has "warning: $CONF:$line: unknown parameter no_such_parameter"
    check "startup line names the configuration file" \
        tern_log_has "daemon started -- version 0.1.0, configuration $CONF"
    tern_stop
    check "SIGTERM: exit status 0 (got $TERN_STATUS)" \
        [ "$TERN_STATUS" = 0 ]
else
    fail "ternd does not start with an unknown parameter in the file"
fi

echo "checking -n: raw changed parameters in name order"
cat >"$CONF" <<EOF
# A comment line, then parameters out of order.
smtpd_timeout = 30s
myhostname = mx.example.test
queue_directory = $T/queue
data_directory = $T/data
mail_spool_directory = $T/mail/
smtp_listen = 127.0.0.1:$PORT
admin_listen = 127.0.0.1:$ADMIN_PORT
smtpd_banner = \$myhostname ESMTP
    test banner
# syslog_name is set to its default: -n leaves it out.
syslog_name = tern
mydomain = example.test
myorigin = \${mydomain}
EOF
cat >"$T/expect" <<EOF
admin_listen = 127.0.0.1:$ADMIN_PORT
data_directory = $T/data
mail_spool_directory = $T/mail/
mydomain = example.test
myhostname = mx.example.test
myorigin = \${mydomain}
queue_directory = $T/queue
smtp_listen = 127.0.0.1:$PORT
smtpd_banner = \$myhostname ESMTP test banner
smtpd_timeout = 30s
EOF
timeout 20 "$TERND" -c "$CONF" -n </dev/null >"$T/out" 2>"$T/err"
status=$?
check "-n exits 0 (got $status)" [ "$status" = 0 ]
if cmp -s "$T/expect" "$T/out"; then
    ok "-n prints exactly the changed parameters, raw, in name order"
else
    fail "-n output differs from the expected (- expected, + got):"
    diff -u "$T/expect" "$T/out" | sed 's/^/    /'
fi

echo "checking that -o wins over the file"
sed -e 's/^smtpd_timeout = 30s$/smtpd_timeout = 60s/' "$T/expect" \
    >"$T/expect-o"
timeout 20 "$TERND" -c "$CONF" -o smtpd_timeout=60s \
    -o message_size_limit=10240000 -n </dev/null >"$T/out" 2>"$T/err"
if cmp -s "$T/expect-o" "$T/out"; then
    ok "-n with -o shows the -o value; a default-valued -o is left out"
else
    fail "-n with -o differs from the expected (- expected, + got):"
    diff -u "$T/expect-o" "$T/out" | sed 's/^/    /'
fi

echo "checking that TERN_CONFIG names the file when there is no -c"
TERN_CONFIG=$CONF timeout 20 "$TERND" -n </dev/null >"$T/out" 2>"$T/err"
status=$?
if [ "$status" = 0 ] && cmp -s "$T/expect" "$T/out"; then
    ok "TERN_CONFIG=FILE ternd -n prints FILE's parameters"
else
    fail "TERN_CONFIG=FILE ternd -n: exit status $status, output:"
    diff -u "$T/expect" "$T/out" | sed 's/^/    /'
    sed 's/^/    /' "$T/err"
fi

echo "checking that a running ternd uses -o over the file"
PORT2=$(tern_free_port)
while [ "$PORT2" = "$PORT" ] || [ "$PORT2" = "$ADMIN_PORT" ]; do
    PORT2=$(tern_free_port)
done
tern_write_conf
TERN_PORT=$PORT2
if tern_start -o "smtp_listen=127.0.0.1:$PORT2"; then
    ok "ternd listens on the -o smtp_listen port"
    banner=$(tern_banner "$PORT")
    check "nothing answers on the file's smtp_listen port" [ -z "$banner" ]
    tern_stop
else
    fail "ternd did not listen on the -o smtp_listen port"
    tern_stop
fi
TERN_PORT=

echo "checking \$name expansion in a running ternd"
# shellcheck disable=SC2016
tern_write_conf - <<'EOF'
smtpd_banner = ${myhostname?set-host} $(mail_name)
    ${recipient_delimiter:no-delim}${recipient_delimiter?never} $$5
    ${mydomain} ESMTP
mydomain = example.test
EOF
: >"$T/log"
if tern_start; then
    banner=$(tern_banner "$PORT")
    expect="220 set-host tern no-delim \$5 example.test ESMTP"
    check "banner is \"$expect\" (got \"$banner\")" [ "$banner" = "$expect" ]
    tern_stop
else
    fail "ternd did not start with expansions in smtpd_banner"
fi

echo "checking that a continued line is joined in a running ternd"
tern_write_conf - <<'EOF'
smtpd_banner = $myhostname ESMTP
	continued
EOF
if tern_start; then
    banner=$(tern_banner "$PORT")
    expect="220 mx.example.test ESMTP continued"
    check "banner is \"$expect\" (got \"$banner\")" [ "$banner" = "$expect" ]
    tern_stop
else
    fail "ternd did not start with a continued line"
fi

echo "checking maillog_file and syslog_name"
tern_write_conf - <<EOF
maillog_file = $T/maillog
syslog_name = tern-test
EOF
: >"$T/log"
maillog_has() {
    grep -F -q -e "$1" "$T/maillog" 2>/dev/null
}
if tern_start; then
    check "the startup line goes to maillog_file, tagged tern-test/master" \
        maillog_has "tern-test/master[$TERN_PID]: daemon started -- version"
    check "nothing is logged to stderr" [ ! -s "$T/log" ]
    tern_stop
    check "SIGTERM: exit status 0 (got $TERN_STATUS)" [ "$TERN_STATUS" = 0 ]
else
    fail "ternd did not start with maillog_file set"
fi

tern_finish
