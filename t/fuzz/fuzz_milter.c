/* SPDX-License-Identifier: ISC */
/*
 * fuzz_milter: the reader and parser of Milter replies.  The first byte
 * picks the size of the pieces the rest arrives in.  Checked for every
 * input: taken whole and in pieces, the packets found are the same and
 * end at the same place; each packet is at most SMTPD_MILTER_PACKET_MAX
 * bytes; a parsed reply's strings lie inside its packet and end there
 * with a NUL, and a REPLYCODE is a 4xx or 5xx reply.
 */
#include "autoconf.h"

#include <string.h>

#include "lib/buf.h"
#include "server/smtpd_milter.h"
#include "t/fuzz/fuzz.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_quiet();
    return 0;
}

/* A string of a reply lies inside data and its NUL does too. */
static void
fuzz_inside(const char *s, const buf_t *data)
{
    if (s == NULL)
        return;
    FUZZ_CHECK(s >= data->data && s < data->data + data->len);
    FUZZ_CHECK(memchr(s, '\0', (size_t)(data->data + data->len - s)) !=
               NULL);
}

/* Take and parse every packet of p fed in pieces of step; the commands
 * and parse results go to trace.  Returns the bytes left over, or -1
 * when the stream was refused. */
static long
fuzz_run(const char *p, size_t len, size_t step, buf_t *trace)
{
    buf_t in;
    buf_t data;
    size_t off = 0;
    long left = 0;

    buf_init(&in);
    buf_init(&data);
    while (off < len || in.len > 0) {
        struct smtpd_milter_reply r;
        const char *why = NULL;
        int cmd = 0;
        int rc;

        if (off < len) {
            size_t n = len - off < step ? len - off : step;

            buf_append(&in, p + off, n);
            off += n;
        }
        rc = smtpd_milter_take(&in, &cmd, &data, &why);
        if (rc < 0) {
            FUZZ_CHECK(why != NULL);
            left = -1;
            break;
        }
        if (rc == 0) {
            if (off >= len)
                break;
            continue;
        }
        FUZZ_CHECK(data.len < SMTPD_MILTER_PACKET_MAX);
        rc = smtpd_milter_parse(cmd, data.data, data.len, &r, &why);
        buf_putc(trace, cmd);
        buf_putc(trace, rc == 0 ? '+' : '-');
        if (rc < 0) {
            FUZZ_CHECK(why != NULL);
            continue;
        }
        fuzz_inside(r.name, &data);
        fuzz_inside(r.value, &data);
        fuzz_inside(r.text, &data);
        if (r.text)
            FUZZ_CHECK(r.text[0] == '4' || r.text[0] == '5');
        if (r.body)
            FUZZ_CHECK(r.body == data.data && r.body_len == data.len);
    }
    if (left == 0)
        left = (long)in.len;
    buf_free(&in);
    buf_free(&data);
    return left;
}

int
LLVMFuzzerTestOneInput(const unsigned char *raw, size_t rawsize)
{
    const char *data = (const char *)raw + 1;
    buf_t t1;
    buf_t t2;
    long l1;
    long l2;

    if (rawsize < 1)
        return 0;
    buf_init(&t1);
    buf_init(&t2);
    l1 = fuzz_run(data, rawsize - 1, rawsize, &t1);
    l2 = fuzz_run(data, rawsize - 1, raw[0] % 16 + 1, &t2);
    FUZZ_CHECK(l1 == l2);
    FUZZ_CHECK(t1.len == t2.len &&
               (t1.len == 0 || memcmp(t1.data, t2.data, t1.len) == 0));
    buf_free(&t1);
    buf_free(&t2);
    return 0;
}
