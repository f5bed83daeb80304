# SPDX-License-Identifier: ISC
# "ternctl map" reads lookup tables as ternd does, with no daemon: query
# prints a key's value (exit 1 when it is missing), hash: names the
# source file postmap would compile, and build reports a bad line with
# file:line.

. "${TERN_SRCDIR:-$(dirname "$0")/..}/t/testlib.sh"

TERNCTL=$(dirname "$TERND")/ternctl
T=$(mktemp -d "${TMPDIR:-/tmp}/tern-test-XXXXXX") || exit 1
trap 'rm -rf "$T"' EXIT
fails=0
check() {
    if [ "$1" = 0 ]; then
        echo "ok: $2"
    else
        echo "FAIL: $2"
        fails=$((fails + 1))
    fi
}

printf '# local users\nalice  yes\nBob    mailbox/bob\n' >"$T/users"
out=$("$TERNCTL" map query "hash:$T/users" bob alice)
[ "$out" = "mailbox/bob
yes" ]
check $? "query hash: finds keys in any case ($out)"
"$TERNCTL" map query "texthash:$T/users" carol >/dev/null
[ $? = 1 ]
check $? "a missing key exits 1"
out=$("$TERNCTL" map build "hash:$T/users")
[ "$out" = "hash:$T/users: ok" ]
check $? "build accepts a good table"
printf '/^(ab/ REJECT\n' >"$T/bad.pcre"
err=$("$TERNCTL" map build "pcre:$T/bad.pcre" 2>&1)
st=$?
[ $st = 1 ] && echo "$err" | grep -q "$T/bad.pcre:1: missing closing parenthesis"
check $? "build names file:line and the PCRE2 error ($err)"
printf '/^user(\\+.*)?@/ OK $1\n' >"$T/ok.pcre"
out=$("$TERNCTL" map query "pcre:$T/ok.pcre" user+x@example.org)
[ "$out" = "OK +x" ]
check $? "query pcre: substitutes captures ($out)"
[ $fails = 0 ] || { echo "$fails check(s) failed"; exit 1; }
echo "all checks passed"
