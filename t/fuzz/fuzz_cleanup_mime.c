/* SPDX-License-Identifier: ISC */
/*
 * fuzz_cleanup_mime: the bytes as a message, line by line, through the
 * MIME state machine as cleanup drives it: header blocks (continuation
 * lines joined) to cleanup_mime_header and cleanup_mime_headers_end,
 * the other lines to cleanup_mime_body_line.  The nesting never passes
 * its limit, and a boundary line is reported only while a level is
 * open.
 */
#include "autoconf.h"

#include <stdlib.h>
#include <string.h>

#include "lib/buf.h"
#include "queue/cleanup_mime.h"
#include "t/fuzz/fuzz.h"

#define FUZZ_MIME_LIMIT 8

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_quiet();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *msg = (const char *)data;
    cleanup_mime_t m;
    size_t pos = 0;
    buf_t hdr;

    cleanup_mime_init(&m, FUZZ_MIME_LIMIT);
    buf_init(&hdr);
    while (pos < size && !m.too_deep) {
        const char *line = msg + pos;
        const char *nl = memchr(line, '\n', size - pos);
        size_t len = nl ? (size_t)(nl - line) : size - pos;

        pos += len + (nl != NULL);
        if (m.in_headers) {
            if (hdr.len > 0 && len > 0 && (line[0] == ' ' || line[0] == '\t')) {
                buf_putc(&hdr, '\n');
                buf_append(&hdr, line, len);
                continue;
            }
            if (hdr.len > 0) {
                cleanup_mime_header(&m, hdr.data, hdr.len);
                buf_reset(&hdr);
            }
            if (len == 0 || memchr(line, ':', len) == NULL) {
                cleanup_mime_headers_end(&m);
                FUZZ_CHECK(m.nbounds <= FUZZ_MIME_LIMIT);
                if (len == 0)
                    continue;
            } else {
                buf_append(&hdr, line, len);
                continue;
            }
        }
        {
            size_t open = m.nbounds;
            int b = cleanup_mime_body_line(&m, line, len);

            FUZZ_CHECK(!b || open > 0);
            FUZZ_CHECK(m.nbounds <= open);
        }
    }
    buf_free(&hdr);
    cleanup_mime_free(&m);
    return 0;
}
