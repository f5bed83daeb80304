/* SPDX-License-Identifier: ISC */
/*
 * fuzz_cleanup_checks: one header or body line, as a client sent it,
 * through cleanup_checks_apply with a table whose result is the action
 * the input names.  Input: a flags byte (bit 0: a body line rather than
 * a header; bit 1: the result comes from a pcre rule that captures the
 * whole line as $1, newlines included, rather than a static: table),
 * then the action up to the first newline ("REJECT $1", "PREPEND X: y",
 * ...), then the line.
 *
 * What must hold: the verdict is one of the three; a REPLACE gives
 * text; every PREPEND line ends in a newline; a reject has a 4xx or 5xx
 * code and its reply holds no control character, whatever the line
 * brought along through $1 (a newline there would let a client write
 * its own SMTP replies); once stopped, nothing more is acted on.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "lib/mem.h"
#include "lib/table.h"
#include "queue/cleanup_checks.h"
#include "queue/envelope.h"
#include "t/fuzz/fuzz.h"

static envelope_t *fuzz_env;

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    fuzz_env = envelope_new();
    strcpy(fuzz_env->id, "0FUZZ00001");
    envelope_set(&fuzz_env->sender, "alice@example.org");
    envelope_set(&fuzz_env->client_name, "client.example.org");
    envelope_set(&fuzz_env->client_addr, "192.0.2.1");
    envelope_add_rcpt(fuzz_env, "bob@example.com");
    return 0;
}

static table_t *
fuzz_table(const char *action, int pcre)
{
    table_t *t;
    buf_t err;
    char *spec;

    buf_init(&err);
    if (pcre) {
        char *rules = mem_printf("/^(.*)$/s %s\n", action);

        spec = mem_printf("pcre:%s", fuzz_file(rules, strlen(rules)));
        free(rules);
    } else {
        spec = mem_printf("static:%s", action);
    }
    t = table_open(spec, &err);
    free(spec);
    buf_free(&err);
    return t;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    enum cleanup_checks_verdict v;
    cleanup_checks_t cc;
    table_t *maps[2] = {NULL, NULL};
    const uint8_t *nl;
    const char *cls;
    const char *line;
    size_t llen;
    size_t before;
    buf_t prepend;
    buf_t replace;
    char reply[1024];
    char *action;
    char *p;

    if (size < 1)
        return 0;
    cls = data[0] & 1 ? "body" : "header";
    nl = memchr(data + 1, '\n', size - 1);
    if (nl == NULL)
        return 0;
    action = fuzz_strndup(data + 1, (size_t)(nl - data) - 1);
    line = (const char *)nl + 1;
    llen = size - (size_t)(nl + 1 - data);
    maps[0] = fuzz_table(action, data[0] & 2);
    free(action);
    if (maps[0] == NULL)
        return 0;

    buf_init(&prepend);
    buf_init(&replace);
    cleanup_checks_init(&cc, fuzz_env);
    before = prepend.len;
    v = cleanup_checks_apply(&cc, maps, "header_checks", cls, line, llen,
                             &prepend, &replace);
    FUZZ_CHECK(v == CLEANUP_CHECKS_KEEP || v == CLEANUP_CHECKS_DROP ||
               v == CLEANUP_CHECKS_REPLACE);
    if (v == CLEANUP_CHECKS_REPLACE)
        FUZZ_CHECK(replace.len > 0);
    if (prepend.len > before)
        FUZZ_CHECK(prepend.data[prepend.len - 1] == '\n');
    if (cc.reject) {
        FUZZ_CHECK(cc.stop);
        FUZZ_CHECK(cc.code >= 400 && cc.code <= 599);
        cleanup_checks_reply(&cc, reply, sizeof(reply));
        FUZZ_CHECK(reply[0] == '4' || reply[0] == '5');
        for (p = reply; *p; p++)
            FUZZ_CHECK((unsigned char)*p >= 32 && *p != 127);
    }
    if (cc.redirect)
        FUZZ_CHECK(strchr(cc.redirect, '@') != NULL);
    if (cc.stop) {
        buf_reset(&prepend);
        buf_reset(&replace);
        v = cleanup_checks_apply(&cc, maps, "header_checks", cls, line,
                                 llen, &prepend, &replace);
        FUZZ_CHECK(v == CLEANUP_CHECKS_KEEP);
        FUZZ_CHECK(prepend.len == 0 && replace.len == 0);
    }
    cleanup_checks_free(&cc);
    table_free(&maps[0]);
    buf_free(&prepend);
    buf_free(&replace);
    return 0;
}
