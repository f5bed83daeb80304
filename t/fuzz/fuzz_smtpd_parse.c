/* SPDX-License-Identifier: ISC */
/*
 * fuzz_smtpd_parse: one SMTP command line, as the session hands it to
 * the parser (line ending removed), through every parser it would reach:
 * the verb split, the MAIL and RCPT paths with their ESMTP parameters,
 * xtext values, NOTIFY lists and the BDAT size.  Whatever the input,
 * each parser either refuses it or returns something that obeys its
 * grammar, which the checks below hold it to.
 */
#include "autoconf.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/addr.h"
#include "lib/buf.h"
#include "queue/envelope.h"
#include "server/smtpd_parse.h"
#include "t/fuzz/fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static void
fuzz_xtext(const char *value)
{
    buf_t out;

    buf_init(&out);
    if (smtpd_parse_xtext(value, &out) == 0)
        FUZZ_CHECK(out.len <= strlen(value));
    buf_free(&out);
}

static void
fuzz_notify(const char *value)
{
    int bits = smtpd_parse_notify(value);

    FUZZ_CHECK(bits == -1 || (bits > 0 && bits <= 15));
    /* NEVER stands alone (RFC 3461 section 4.1). */
    FUZZ_CHECK(bits == -1 || !(bits & DSN_NOTIFY_NEVER) ||
               bits == DSN_NOTIFY_NEVER);
}

/* What a path that parsed must look like. */
static void
fuzz_path_result(const struct smtp_path *path, int null_ok)
{
    size_t len = strlen(path->addr);
    size_t i;
    char *local;
    char *mbox;
    const char *q;

    FUZZ_CHECK(len <= 254);
    FUZZ_CHECK(len > 0 || null_ok);
    FUZZ_CHECK(len == 0 || smtpd_valid_mailbox(path->addr, len) ||
               strcasecmp(path->addr, "postmaster") == 0);
    FUZZ_CHECK(path->nparams <= SMTP_PARAMS_MAX);
    for (i = 0; i < path->nparams; i++) {
        const struct smtp_param *prm = &path->params[i];

        FUZZ_CHECK(prm->key[0] != '\0');
        for (q = prm->key; *q; q++)
            FUZZ_CHECK(isdigit((unsigned char)*q) ||
                       isupper((unsigned char)*q) || *q == '-');
        if (prm->value == NULL)
            continue;
        FUZZ_CHECK(strchr(prm->value, ' ') == NULL);
        if (strcmp(prm->key, "NOTIFY") == 0)
            fuzz_notify(prm->value);
        else if (strcmp(prm->key, "ORCPT") == 0 ||
                 strcmp(prm->key, "ENVID") == 0 ||
                 strcmp(prm->key, "AUTH") == 0)
            fuzz_xtext(strchr(prm->value, ';') ? strchr(prm->value, ';') + 1
                                               : prm->value);
    }

    /* What later stages do with an accepted address. */
    (void)addr_domain(path->addr);
    local = addr_localpart(path->addr);
    FUZZ_CHECK(strlen(local) <= len);
    free(local);
    mbox = addr_mailbox_name(path->addr, "+");
    if (mbox != NULL) {
        FUZZ_CHECK(mbox[0] != '\0' && mbox[0] != '.');
        FUZZ_CHECK(strchr(mbox, '/') == NULL);
        free(mbox);
    }
}

static void
fuzz_command(char *line)
{
    struct smtp_cmd cmd;
    struct smtp_path path;
    const char *why = NULL;
    size_t alen;
    long long size = -1;
    int last = -1;

    FUZZ_CHECK(smtpd_parse_command(line, &cmd) == 0);
    FUZZ_CHECK(cmd.name != NULL && cmd.arg != NULL);
    FUZZ_CHECK(smtpd_verb_name(cmd.verb) != NULL);
    FUZZ_CHECK((cmd.verb == SMTP_UNKNOWN) == (cmd.name[0] == '\0'));
    if (cmd.verb != SMTP_UNKNOWN)
        FUZZ_CHECK(strcasecmp(line, cmd.name) == 0);
    alen = strlen(cmd.arg);
    FUZZ_CHECK(alen == 0 || cmd.arg[alen - 1] != ' ');

    switch (cmd.verb) {
    case SMTP_MAIL:
    case SMTP_RCPT: {
        int null_ok = cmd.verb == SMTP_MAIL;

        if (smtpd_parse_path(cmd.arg, null_ok ? "FROM:" : "TO:", null_ok,
                             &path, &why) == 0)
            fuzz_path_result(&path, null_ok);
        else
            FUZZ_CHECK(why != NULL && why[0] != '\0');
        break;
    }
    case SMTP_BDAT:
        if (smtpd_parse_bdat(cmd.arg, &size, &last) == 0)
            FUZZ_CHECK(size >= 0 && (last == 0 || last == 1));
        break;
    default:
        break;
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *line = fuzz_strndup(data, size);
    char *copy;
    long long n;
    int last;

    /* The same text once more as a bare argument for the parsers the
     * command did not reach. */
    copy = fuzz_strndup(data, size);
    fuzz_xtext(copy);
    fuzz_notify(copy);
    if (smtpd_parse_bdat(copy, &n, &last) == 0)
        FUZZ_CHECK(n >= 0);
    (void)smtpd_valid_mailbox(copy, strlen(copy));
    free(copy);

    fuzz_command(line);
    free(line);
    return 0;
}
