/* SPDX-License-Identifier: ISC */
/*
 * sendmail_rcpt: address lists in headers and arguments.
 *
 * Flow: sendmail hands each recipient argument, and with -t the header
 * block of the message, to this module and writes what comes back into
 * the maildrop file.  Nothing here touches the disk.
 *
 * Addresses are found by lib/hdr_addr, the scanner cleanup uses, so
 * that sendmail and cleanup agree on what a header names: display
 * names, groups, comments and source routes are left out, and a
 * mailbox it cannot make out is skipped, as Postfix skips it.
 *
 * Threads: no shared state.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/hdr_addr.h"
#include "lib/mem.h"
#include "server/sendmail_rcpt.h"

void
sendmail_rcpt_add(sendmail_rcpt_list_t *list, const char *addr)
{
    size_t i;

    /* An address that comes out empty (a NUL inside <>) is no address. */
    if (*addr == '\0')
        return;
    for (i = 0; i < list->n; i++)
        if (strcasecmp(list->v[i], addr) == 0)
            return;
    if (list->n == list->cap) {
        list->cap = list->cap ? list->cap * 2 : 8;
        list->v = mem_reallocarray(list->v, list->cap, sizeof(char *));
    }
    list->v[list->n++] = mem_strdup(addr);
}

void
sendmail_rcpt_free(sendmail_rcpt_list_t *list)
{
    size_t i;

    for (i = 0; i < list->n; i++)
        free(list->v[i]);
    free(list->v);
    list->v = NULL;
    list->n = list->cap = 0;
}

struct sendmail_rcpt_found {
    const char *text;
    sendmail_rcpt_list_t *list;
};

static void
sendmail_rcpt_one(void *arg, size_t off, size_t len)
{
    struct sendmail_rcpt_found *f = arg;
    char *addr = mem_strndup(f->text + off, len);

    sendmail_rcpt_add(f->list, addr);
    free(addr);
}

size_t
sendmail_rcpt_parse(const char *text, size_t len, sendmail_rcpt_list_t *list)
{
    struct sendmail_rcpt_found f = {text, list};

    return hdr_addr_scan(text, len, sendmail_rcpt_one, &f);
}

/* The header names that hold recipients. */
static int
sendmail_rcpt_header(const char *line, size_t nlen, int resent, int *bcc)
{
    const char *name = line;

    if (resent) {
        if (nlen < 7 || strncasecmp(name, "Resent-", 7) != 0)
            return 0;
        name += 7;
        nlen -= 7;
    }
    *bcc = nlen == 3 && strncasecmp(name, "Bcc", 3) == 0;
    return *bcc || (nlen == 2 && strncasecmp(name, "To", 2) == 0) ||
           (nlen == 2 && strncasecmp(name, "Cc", 2) == 0);
}

/* Length of the header field name at line, or 0 if line is not the
 * first line of a header field. */
static size_t
sendmail_rcpt_name_len(const char *line, size_t llen)
{
    size_t i;

    for (i = 0; i < llen && line[i] != ':'; i++)
        if ((unsigned char)line[i] <= 32 || (unsigned char)line[i] >= 127)
            return 0;
    return i < llen && i > 0 ? i : 0;
}

/* Length of the header field at pos (its first line and continuation
 * lines, newlines included). */
static size_t
sendmail_rcpt_field_len(const char *data, size_t len, size_t pos)
{
    size_t start = pos;

    for (;;) {
        const char *nl = memchr(data + pos, '\n', len - pos);

        pos = nl ? (size_t)(nl - data) + 1 : len;
        if (pos >= len || (data[pos] != ' ' && data[pos] != '\t'))
            return pos - start;
    }
}

/* Walk the header block: with collect unset, only say whether a Resent-
 * recipient header is there; with it set, take the addresses and drop
 * the Bcc fields. */
static int
sendmail_rcpt_walk(buf_t *msg, int resent, int collect,
                   sendmail_rcpt_list_t *list)
{
    size_t pos = 0;

    while (pos < msg->len && msg->data[pos] != '\n') {
        const char *line = msg->data + pos;
        size_t flen = sendmail_rcpt_field_len(msg->data, msg->len, pos);
        size_t nlen = sendmail_rcpt_name_len(line, flen);
        int bcc;

        if (nlen == 0)
            break; /* not a header: the body starts here */
        if (!sendmail_rcpt_header(line, nlen, resent, &bcc)) {
            pos += flen;
            continue;
        }
        if (!collect)
            return 1;
        sendmail_rcpt_parse(line + nlen + 1, flen - nlen - 1, list);
        if (bcc) {
            memmove(msg->data + pos, msg->data + pos + flen,
                    msg->len - pos - flen);
            msg->len -= flen;
            msg->data[msg->len] = '\0';
            continue;
        }
        pos += flen;
    }
    return 0;
}

void
sendmail_rcpt_extract(buf_t *msg, sendmail_rcpt_list_t *list)
{
    int resent;

    if (msg->len == 0)
        return;
    resent = sendmail_rcpt_walk(msg, 1, 0, list);
    sendmail_rcpt_walk(msg, resent, 1, list);
}
