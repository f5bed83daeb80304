/* SPDX-License-Identifier: ISC */
/*
 * fuzz_sendmail_rcpt: the bytes as a message that "sendmail -t" reads
 * its recipients from, and as one address list.  Whatever the headers
 * hold, the addresses found are non-empty and listed once each (without
 * regard to case), the count returned covers them, and taking the Bcc:
 * headers out only ever makes the message shorter and leaves its body
 * as it was.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/buf.h"
#include "server/sendmail_rcpt.h"
#include "t/fuzz/fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

static void
fuzz_list_ok(const sendmail_rcpt_list_t *list)
{
    size_t i;
    size_t j;

    FUZZ_CHECK(list->n <= list->cap || list->n == 0);
    for (i = 0; i < list->n; i++) {
        FUZZ_CHECK(list->v[i] != NULL && list->v[i][0] != '\0');
        /* Quadratic, but lists from fuzz inputs are short. */
        for (j = 0; j < i && j < 256; j++)
            FUZZ_CHECK(strcasecmp(list->v[i], list->v[j]) != 0);
    }
}

/* Offset of the body: after the first empty line, or the end. */
static size_t
fuzz_body(const char *p, size_t len)
{
    size_t i;

    if (len > 0 && p[0] == '\n')
        return 1;
    for (i = 1; i < len; i++)
        if (p[i] == '\n' && p[i - 1] == '\n')
            return i + 1;
    return len;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sendmail_rcpt_list_t list = {0};
    buf_t msg;
    size_t found;
    size_t body;
    size_t body_len;

    found = sendmail_rcpt_parse((const char *)data, size, &list);
    FUZZ_CHECK(found >= list.n);
    fuzz_list_ok(&list);
    sendmail_rcpt_free(&list);
    FUZZ_CHECK(list.n == 0);

    buf_init(&msg);
    buf_append(&msg, data, size);
    body = fuzz_body((const char *)data, size);
    body_len = size - body;
    sendmail_rcpt_extract(&msg, &list);
    fuzz_list_ok(&list);
    FUZZ_CHECK(msg.len <= size);
    FUZZ_CHECK(msg.len >= body_len);
    FUZZ_CHECK(body_len == 0 ||
               memcmp(msg.data + msg.len - body_len, data + body,
                      body_len) == 0);
    sendmail_rcpt_free(&list);
    buf_free(&msg);
    return 0;
}
