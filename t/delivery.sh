# SPDX-License-Identifier: ISC
# A real SMTP client (swaks) hands ternd a message for a local user; it
# must end up in the user's Maildir new/, with nothing left in tmp/, and
# the log must say status=sent.

. "${TERN_SRCDIR:-$(dirname "$0")/..}/t/testlib.sh"

SWAKS=$(command -v swaks) || skip "swaks is not installed (apt-get install swaks)"

tern_setup
tern_start || { fail "ternd did not start"; tern_finish; }
ok "ternd started"

MD=$T/mail/user
echo "checking that swaks delivers to user@localhost"
"$SWAKS" --server "127.0.0.1:$PORT" --from a@example.org --to user@localhost \
    --helo client.example.org --header "Subject: delivery test" \
    --body "delivery test body" >"$T/swaks.out" 2>&1
status=$?
if [ "$status" -eq 0 ]; then
    ok "swaks exits 0"
else
    fail "swaks exits $status:"
    sed 's/^/    /' "$T/swaks.out"
fi
QID=$(sed -n 's/.*<-  250 2\.0\.0 Ok: queued as \([0-9A-Za-z]\{10\}\).*/\1/p' \
    "$T/swaks.out")
check "swaks saw \"250 2.0.0 Ok: queued as ID\" (ID \"$QID\")" [ -n "$QID" ]

no_cr() {
    ! grep -q "$(printf '\r')" "$1"
}
one_new() {
    [ "$(ls "$MD/new" 2>/dev/null | wc -l)" -eq 1 ]
}
sent_logged() {
    grep -q "tern/local\[[0-9]*\]: $QID: to=<user@localhost>, relay=local, \
.*dsn=2\.0\.0, status=sent" "$T/log"
}

if tern_wait_for one_new; then
    ok "one message in $MD/new"
else
    fail "no message in $MD/new within ${TERN_TIMEOUT}s"
fi
check "$MD/tmp exists" [ -d "$MD/tmp" ]
check "$MD/cur exists" [ -d "$MD/cur" ]
check "$MD/tmp is empty" [ -z "$(ls -A "$MD/tmp" 2>/dev/null)" ]
FILE=$(ls "$MD/new" 2>/dev/null | head -n 1)
if [ -n "$FILE" ]; then
    MSG=$MD/new/$FILE
    check "file name does not start with a dot" [ "${FILE#.}" = "$FILE" ]
    check "Return-Path: <a@example.org> is the first line" \
        [ "$(head -n 1 "$MSG")" = "Return-Path: <a@example.org>" ]
    check "Delivered-To: user@localhost" \
        grep -q -x "Delivered-To: user@localhost" "$MSG"
    check "Subject kept" grep -q -x "Subject: delivery test" "$MSG"
    check "body kept" grep -q -x "delivery test body" "$MSG"
    check "Received: names the queue ID" \
        grep -q "by mx\.example\.test (tern) with ESMTP id $QID" "$MSG"
    check "no CR in the file (LF line endings)" no_cr "$MSG"
fi
if tern_wait_for sent_logged; then
    ok "log: $QID: to=<user@localhost>, relay=local, ..., status=sent"
else
    fail "log has no status=sent line for $QID"
fi

echo "checking that ternd stops cleanly"
tern_stop
check "SIGTERM: exit status 0 (got $TERN_STATUS)" [ "$TERN_STATUS" = 0 ]

tern_finish
