/* SPDX-License-Identifier: ISC */
/*
 * fuzz_admin_filter: the criteria of an admin API queue listing or bulk
 * operation, as "name=value" lines (the query string's pairs, decoded),
 * through filter_set, and the filter against a few envelopes.  A value
 * is either refused with a reason or taken; a filter with nothing set
 * matches every message; a plain sender substring matches a sender that
 * holds it; matching a record that does not decode never crashes.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "admin/filter.h"
#include "lib/mem.h"
#include "queue/envelope.h"
#include "t/fuzz/fuzz.h"

#define FUZZ_NOW_US (1700000000LL * 1000000)

static envelope_t *fuzz_envs[3];

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    envelope_t *e;
    rcpt_t *r;

    fuzz_quiet();
    e = fuzz_envs[0] = envelope_new();
    strcpy(e->id, "0FUZZ00001");
    envelope_set(&e->sender, "alice@example.org");
    e->arrival_us = FUZZ_NOW_US - 3600LL * 1000000;
    envelope_add_rcpt(e, "bob@example.com");
    r = envelope_add_rcpt(e, "carol@example.net");
    r->state = RCPT_SENT;

    e = fuzz_envs[1] = envelope_new();
    strcpy(e->id, "0FUZZ00002");
    e->state = QS_DEFERRED;
    e->arrival_us = FUZZ_NOW_US - 86400LL * 30 * 1000000;
    envelope_add_rcpt(e, "\xc3\xa9l\xc3\xa8ve@exemple.fr");

    e = fuzz_envs[2] = envelope_new();
    strcpy(e->id, "0FUZZ00003");
    e->state = QS_HOLD;
    envelope_set(&e->sender, "x\xff\xfe@bad-utf8.example");
    e->arrival_us = FUZZ_NOW_US;
    envelope_add_rcpt(e, "postmaster");
    return 0;
}

static void
fuzz_match_all(const filter_t *f)
{
    size_t i;

    for (i = 0; i < sizeof(fuzz_envs) / sizeof(fuzz_envs[0]); i++) {
        int m = filter_match(f, fuzz_envs[i], FUZZ_NOW_US);

        FUZZ_CHECK(m == 0 || m == 1);
        if (filter_empty(f))
            FUZZ_CHECK(m);
    }
    if (filter_empty(f))
        FUZZ_CHECK(filter_match(f, NULL, FUZZ_NOW_US));
    else
        (void)filter_match(f, NULL, FUZZ_NOW_US);
}

/* A plain sender substring finds a sender that holds it. */
static void
fuzz_substring(const char *value)
{
    filter_t *f;
    envelope_t *e;
    char *why = NULL;
    char *sender;

    if (strncmp(value, "re:", 3) == 0 || value[0] == '\0')
        return;
    f = filter_new();
    FUZZ_CHECK(filter_set(f, "sender", value, &why) == 0);
    e = envelope_new();
    strcpy(e->id, "0FUZZ00004");
    sender = mem_printf("pre%spost", value);
    envelope_set(&e->sender, sender);
    envelope_add_rcpt(e, "bob@example.com");
    FUZZ_CHECK(filter_match(f, e, FUZZ_NOW_US));
    free(sender);
    envelope_free(&e);
    filter_free(&f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = fuzz_strndup(data, size);
    char *save = NULL;
    char *line;
    filter_t *f = filter_new();
    int n = 0;

    fuzz_match_all(f);
    for (line = strtok_r(text, "\n", &save); line && n < 8;
         line = strtok_r(NULL, "\n", &save), n++) {
        char *eq = strchr(line, '=');
        char *why = NULL;
        int rc;

        if (eq == NULL)
            continue;
        *eq = '\0';
        if (!filter_known(line))
            continue;
        rc = filter_set(f, line, eq + 1, &why);
        FUZZ_CHECK(rc == 0 || rc == -1);
        FUZZ_CHECK((rc == 0) == (why == NULL));
        free(why);
        fuzz_match_all(f);
        if (strcmp(line, "sender") == 0)
            fuzz_substring(eq + 1);
    }
    filter_free(&f);
    FUZZ_CHECK(f == NULL);
    free(text);
    return 0;
}
